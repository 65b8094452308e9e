"""Opening the catalog and writing to it in transactions."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import sqlite_utils

from station.catalog import migrations
from station.errors import CatalogBusyError, CatalogError, VaultFullError, is_disk_full


def open_catalog(path: Path | str, *, migrate: bool = True) -> sqlite_utils.Database:
    """Open (and by default migrate) the catalog at ``path``.

    WAL with ``synchronous=FULL``: a committed catalog row survives a power cut, which matters
    because a recorder may be cleared once its rows are committed (DESIGN.md invariant 2).
    """
    busy_s = busy_timeout_s()
    try:
        if str(path) != ":memory:" and not Path(path).exists():
            # created owner-only: SQLite gives the -wal and -shm files the catalog's own mode
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise CatalogError(f"cannot create the catalog: {exc}", where=str(path)) from exc
    try:
        conn = sqlite3.connect(str(path), timeout=busy_s, check_same_thread=False)
        _wal(conn, busy_s)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={int(busy_s * 1000)}")
    except sqlite3.Error as exc:
        raise CatalogError(f"cannot open the catalog: {exc}", where=str(path)) from exc
    # no sqlite-utils plugins: loading them scans every installed distribution's entry points
    # on each open (tens of ms, hundreds from a cold cache) for hooks the station never uses
    db = sqlite_utils.Database(conn, execute_plugins=False)
    if migrate:
        migrations.apply(db)
    return db


def busy_timeout_s() -> float:
    """How long a command waits for another process's write lock on the catalog before it
    gives up with CatalogBusyError: 30 s, or ``STATION_CATALOG_BUSY_S`` seconds."""
    try:
        value = float(os.environ.get("STATION_CATALOG_BUSY_S", "30"))
    except ValueError:
        return 30.0
    return value if 0 < value <= 3600 else 30.0


def _catalog_file(db: sqlite_utils.Database) -> str:
    row = db.conn.execute("PRAGMA database_list").fetchone()
    return str(row[2]) if row and row[2] else "catalog"


def busy_error(db: sqlite_utils.Database) -> CatalogBusyError:
    return CatalogBusyError(
        "目录数据库被其他进程占用 / the catalog is locked by another process",
        where=_catalog_file(db),
        hint=f"waited {busy_timeout_s():g} s; try again when the other station command ends",
    )


def _wal(conn: sqlite3.Connection, patience_s: float = 30.0) -> None:
    """Switch to WAL. Two processes opening a new catalog at once (the daemon and a command)
    can find it locked while the other sets it up; SQLite does not always wait for that, so we
    retry for a while instead of failing."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def vault_full(db: sqlite_utils.Database, exc: BaseException) -> VaultFullError:
    """The one VaultFullError for a disk that filled up under a catalog write."""
    return VaultFullError(
        f"磁盘已满，目录无法写入 / disk full: the catalog cannot be written ({exc})",
        where=_catalog_file(db),
        hint="free space in the station's home; nothing of this change was kept",
    )


@contextlib.contextmanager
def write_txn(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One write transaction (``BEGIN IMMEDIATE``), nested calls become savepoints.

    Every change to evidence and its audit entry go through one of these together
    (DESIGN.md invariant 3). A full disk met while beginning, writing or committing (SQLite's
    ``SQLITE_FULL``, ``ENOSPC``, ``EDQUOT``: ``is_disk_full``) is rolled back and leaves as
    :class:`VaultFullError`; every other error passes unchanged.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    try:
        db.conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise busy_error(db) from exc
        if is_disk_full(exc):
            raise vault_full(db, exc) from exc
        raise
    setattr(db, "_station_audited", False)  # noqa: B010 - set by audit.append
    try:
        yield db
        db.conn.execute("COMMIT")
    except BaseException as exc:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        setattr(db, "_station_audited", False)  # noqa: B010
        if isinstance(exc, OSError | sqlite3.Error) and is_disk_full(exc):
            raise vault_full(db, exc) from exc
        raise
    if getattr(db, "_station_audited", False):
        # The log's head and the clock anchor, outside the catalog (station.audit.head).
        setattr(db, "_station_audited", False)  # noqa: B010
        from station.audit.head import after_commit

        after_commit(db)
