"""Purge proposals as stored (R9): the latest row for a recording, and the approval behind a
pending purge. The run's steps ask here before deleting anything; ``approval`` writes them."""

from __future__ import annotations

from typing import Any

import sqlite_utils


def latest(db: sqlite_utils.Database, sha: str) -> dict[str, Any] | None:
    rows = list(
        db.query("select * from purge_proposals where sha256 = ? order by id desc limit 1", [sha])
    )
    return rows[0] if rows else None


def approval_for(db: sqlite_utils.Database, sha: str) -> dict[str, Any] | None:
    """The approval behind a pending purge, or None: then nothing may be deleted (R9)."""
    row = latest(db, sha)
    if row is None or row["state"] != "pended":
        return None
    return row
