"""Numbered, transactional migrations.

Each module here is named ``m<NNNN>_<name>.py`` and defines ``up(db)``. They run in number order,
all pending ones in one transaction together with their rows in ``_migrations``; a failed
migration leaves the catalog as it was. Numbers are grouped by the part of the station that owns
them: 0001–0009 core catalog, 0010–0019 audit, 0020–0029 dock, 0030–0039 transcode,
0040–0049 cases/retention, 0050–0059 discs, 0060–0069 access/integrity, 0070–0079 inbox.
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


def pending(db: sqlite_utils.Database, available: list[Migration] | None = None) -> list[Migration]:
    """The migrations not applied yet, in number order."""
    done = applied(db)
    return [m for m in (discover() if available is None else available) if m.number not in done]


def apply(
    db: sqlite_utils.Database,
    available: list[Migration] | None = None,
    *,
    on_applied: Callable[[sqlite_utils.Database, list[Migration]], None] | None = None,
) -> list[Migration]:
    """Apply every migration not applied yet, all in ONE transaction; return those applied now.

    Either every pending migration is applied with its ``_migrations`` row, or none is: a failure
    rolls the whole upgrade back and the catalog stays at its old schema, readable by the old
    version of the station. ``available`` replaces the discovered modules (tests);
    ``on_applied`` runs inside the same transaction after the last one (an audit entry).
    """
    from station.catalog.db import write_txn

    db.execute(
        "create table if not exists _migrations (number integer primary key, name text not null,"
        " applied_at text not null default (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"
    )
    if not pending(db, available):
        return []
    ran: list[Migration] = []
    mig: Migration | None = None
    try:
        with write_txn(db):
            # re-read under the write lock: another process may have just applied some
            for mig in pending(db, available):
                mig.up(db)
                db.execute(
                    "insert into _migrations (number, name) values (?, ?)", [mig.number, mig.name]
                )
                ran.append(mig)
            if ran and on_applied is not None:
                on_applied(db, ran)
    except Exception as exc:
        name = f"{mig.number:04d}_{mig.name}" if mig is not None else "?"
        raise CatalogError(
            f"数据库迁移失败，目录未作任何改动 / migration {name} failed, nothing was changed: "
            f"{exc}",
            hint="the catalog is still at its old schema; the previous version of the station "
            "can keep using it",
        ) from exc
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
