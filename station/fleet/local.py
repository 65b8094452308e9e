"""Which vault files live only in the central store now (freed locally by the fleet pass).

``station verify`` and the retention executor ask this: a freed file is not "missing" — its
confirmed central copy stands for it, and ``station fleet fetch`` brings it back verified.
"""

from __future__ import annotations

import sqlite_utils


def freed_paths(db: sqlite_utils.Database, recording: str | None = None) -> set[str]:
    """Vault-relative paths whose only copy is the confirmed central one (of one recording's
    files when ``recording`` is given)."""
    if "fleet_objects" not in db.table_names():
        return set()
    sql = (
        "select rel from fleet_objects where freed_at is not null and state = 'confirmed'"
        " and rel is not null"
    )
    args: list[str] = []
    if recording is not None:
        sql += " and recording = ?"
        args.append(recording)
    return {r[0] for r in db.execute(sql, args)}
