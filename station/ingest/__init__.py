"""The ingest engine: enumerate, copy+hash, verify from disk, store, commit (R1, R5, R7).

The engine's names are loaded on first use (PEP 562), so that importing one small module of the
package (``station.ingest.timing``, which the transcode worker uses) does not load the engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from station.ingest.engine import (
        FileResult,
        IngestContext,
        IngestProgress,
        IngestReport,
        ingest_files,
        ingest_volume,
        recover_at_startup,
    )

__all__ = [
    "FileResult",
    "IngestContext",
    "IngestProgress",
    "IngestReport",
    "ingest_files",
    "ingest_volume",
    "recover_at_startup",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("station.ingest.engine"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
