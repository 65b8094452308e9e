"""Numbered, transactional migrations.

Each module here is named ``m<NNNN>_<name>.py`` and defines ``up(db)``. They run in number order,
each in its own transaction together with its row in ``_migrations``; a failed migration leaves
the catalog as it was. Numbers are grouped by the part of the station that owns them:
0001–0009 core catalog, 0010–0019 audit, 0020–0029 dock, 0030–0039 transcode,
0040–0049 cases/retention, 0050–0059 discs, 0060–0069 access/integrity, 0070–0079 inbox,
0110–0119 fleet (central store and catalog).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass

import sqlite_utils

from station.errors import CatalogError

_NAME = re.compile(r"^m(\d{4})_(\w+)$")


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    up: Callable[[sqlite_utils.Database], None]


def discover() -> list[Migration]:
    found: list[Migration] = []
    for info in pkgutil.iter_modules(__path__):
        m = _NAME.match(info.name)
        if not m:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.append(Migration(int(m.group(1)), m.group(2), module.up))
    found.sort(key=lambda mig: mig.number)
    numbers = [mig.number for mig in found]
    if len(numbers) != len(set(numbers)):
        raise CatalogError(f"two migrations share a number: {numbers}")
    return found


def applied(db: sqlite_utils.Database) -> set[int]:
    if "_migrations" not in db.table_names():
        return set()
    return {row["number"] for row in db.query("select number from _migrations")}


def apply(db: sqlite_utils.Database) -> list[Migration]:
    """Apply every migration not applied yet; return those applied now."""
    from station.catalog.db import write_txn

    db.execute(
        "create table if not exists _migrations (number integer primary key, name text not null,"
        " applied_at text not null default (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"
    )
    ran: list[Migration] = []
    pending = [m for m in discover() if m.number not in applied(db)]
    for mig in pending:
        try:
            with write_txn(db):
                # re-read under the write lock: another process may have just applied it
                if db.execute(
                    "select 1 from _migrations where number = ?", [mig.number]
                ).fetchone():
                    continue
                mig.up(db)
                db.execute(
                    "insert into _migrations (number, name) values (?, ?)", [mig.number, mig.name]
                )
        except Exception as exc:
            raise CatalogError(f"migration {mig.number:04d}_{mig.name} failed: {exc}") from exc
        ran.append(mig)
    return ran


def execute_script(db: sqlite_utils.Database, sql: str) -> None:
    """Run several statements inside the current transaction (``executescript`` would commit)."""
    import sqlite3

    buf = ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                db.execute(buf)
            buf = ""
    if buf.strip():
        raise CatalogError(f"incomplete SQL statement at the end of a migration: {buf[:80]!r}")
