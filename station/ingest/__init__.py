"""The ingest engine: enumerate, copy+hash, verify from disk, store, commit (R1, R5, R7)."""

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
