"""Opening the catalog: created owner-only, WAL, migrated. Transactions: ``catalog.txn``."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import sqlite_utils

from station.catalog import migrations
from station.catalog.txn import busy_error as busy_error  # re-exported
from station.catalog.txn import busy_timeout_s, catalog_path
from station.catalog.txn import vault_full as vault_full  # re-exported
from station.catalog.txn import write_txn as write_txn
from station.errors import CatalogError


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


def read_ahead(db: sqlite_utils.Database, *, share_of_memory: float = 0.25) -> bool:
    """Ask the kernel to read the catalog's files into the page cache in the background
    (``POSIX_FADV_WILLNEED``), before a command that reads the whole catalog starts: its disk
    reads then overlap the command's own work instead of stalling each step of the scan. Only
    when the files fit in ``share_of_memory`` of the memory available, so a catalog larger than
    memory never pushes everything else out of the cache. True when advised."""
    from station.hashing.copy import prefetch  # only the whole-catalog commands need it

    try:
        main = catalog_path(db)
        if not main:
            return False  # an in-memory catalog
        paths = [Path(p) for p in (main, main + "-wal") if os.path.exists(p)]
        if sum(p.stat().st_size for p in paths) > share_of_memory * _available_bytes():
            return False
    except (OSError, sqlite3.Error):
        return False  # only advice: the command reads the catalog either way
    for p in paths:
        prefetch(p)
    return True


def _available_bytes() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


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
