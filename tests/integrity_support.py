"""Helpers for the integrity tests: recordings stored by the ingest engine itself
(tests/recordings.py), derivatives as the transcode worker records them."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from station.vault import Vault
from tests.recordings import mp4
from tests.recordings import store_derivative as recorded_derivative
from tests.recordings import store_recording as store


def store_recording(
    vault: Vault,
    db: sqlite_utils.Database,
    content: bytes,
    *,
    seq: int = 1,
    officer: str = "000123",
    device: str = "DSJ0001",
) -> dict[str, Any]:
    """A recording of ``content`` (as the payload of an MP4) stored by the ingest engine
    (tests/recordings.py); its catalog row."""
    sha = store(
        vault,
        db,
        mp4(content),
        name=f"{device}_{officer}_20261101083000_{seq}.MP4",
        device=device,
        officer=officer,
        unit="320412000000",
        drift_s=1.5,
    )
    return dict(next(db.query("select * from recordings where sha256 = ?", [sha])))


def store_derivative(
    vault: Vault, db: sqlite_utils.Database, original: dict[str, Any], content: bytes
) -> int:
    """The archival derivative of ``original`` recorded as the transcode worker does."""
    return recorded_derivative(vault, db, original["sha256"], content)
