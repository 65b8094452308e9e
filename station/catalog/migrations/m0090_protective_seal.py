"""Seal the protective facts already in a catalog (R7): one audit entry carrying every row of
cases, case links, holds, marks, retention items, tombstones, accounts and enrolments as found
at the upgrade. From here on every change seals its rows (``station.audit.protect``), and
``station verify`` compares the tables with the replayed log."""

import sqlite_utils


def up(db: sqlite_utils.Database) -> None:
    from station.audit import append
    from station.audit.protect import baseline

    data = baseline(db)
    if data["seal"]:
        append(db, "integrity.sealed_baseline", actor="station", data=data)
