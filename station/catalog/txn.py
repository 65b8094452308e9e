"""Write transactions on the catalog.

``write_txn`` is one ``BEGIN IMMEDIATE`` transaction; nested calls become savepoints. Code that
must act once the outermost transaction has committed (the audit log moves its head file and the
clock anchor) registers a hook with :func:`after_commit`; it runs after ``COMMIT`` and is dropped
on rollback, so nothing outside the catalog ever moves for a change that was not committed.

Threads of one process writing one catalog (the daemon's dock sessions, each on its own
connection) queue for it on a lock of this process before ``BEGIN IMMEDIATE``: the next writer
starts the moment the last one commits. SQLite's own busy handler, which still orders writers
of different processes, polls with sleeps of 1–100 ms, so eight sessions starting together lost
up to half a second each between other sessions' commits.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator

import sqlite_utils

from station.errors import CatalogBusyError, VaultFullError, is_disk_full

AFTER_COMMIT = "_station_after_commit"
DEFERRED = "_station_after_commit_deferred"


def after_commit(db: sqlite_utils.Database, hook: Callable[[sqlite_utils.Database], None]) -> None:
    """Run ``hook(db)`` once the current outermost write transaction has committed."""
    setattr(db, AFTER_COMMIT, hook)


@contextlib.contextmanager
def after_commit_deferred(
    db: sqlite_utils.Database,
) -> Iterator[list[Callable[[sqlite_utils.Database], None]]]:
    """Inside this block a committed transaction's hook is not run but kept, in commit order,
    in the list this yields: the caller runs them once it has let go of what it held during the
    commit (the ingest's writer lock; the audit head only ever moves forward, under its own
    lock). A transaction rolled back leaves no hook."""
    kept: list[Callable[[sqlite_utils.Database], None]] = []
    setattr(db, DEFERRED, kept)
    try:
        yield kept
    finally:
        setattr(db, DEFERRED, None)


def busy_timeout_s() -> float:
    """How long a command waits for another process's write lock on the catalog before it
    gives up with CatalogBusyError: 30 s, or ``STATION_CATALOG_BUSY_S`` seconds."""
    try:
        value = float(os.environ.get("STATION_CATALOG_BUSY_S", "30"))
    except ValueError:
        return 30.0
    return value if 0 < value <= 3600 else 30.0


def catalog_path(db: sqlite_utils.Database) -> str:
    """The file of ``db``'s main database; "" for an in-memory catalog."""
    row = db.conn.execute("PRAGMA database_list").fetchone()
    return str(row[2]) if row and row[2] else ""


def _catalog_file(db: sqlite_utils.Database) -> str:
    return catalog_path(db) or "catalog"


def busy_error(db: sqlite_utils.Database) -> CatalogBusyError:
    return CatalogBusyError(
        "目录数据库被其他进程占用 / the catalog is locked by another process",
        where=_catalog_file(db),
        hint=f"waited {busy_timeout_s():g} s; try again when the other station command ends",
    )


def vault_full(db: sqlite_utils.Database, exc: BaseException) -> VaultFullError:
    """The one VaultFullError for a disk that filled up under a catalog write."""
    return VaultFullError(
        f"磁盘已满，目录无法写入 / disk full: the catalog cannot be written ({exc})",
        where=_catalog_file(db),
        hint="free space in the station's home; nothing of this change was kept",
    )


_writers: dict[str, threading.RLock] = {}
_writers_lock = threading.Lock()
WRITER = "_station_writer_lock"


def _writer(db: sqlite_utils.Database) -> threading.RLock | None:
    """This process's queue for writing ``db``'s catalog file (None for an in-memory one).
    Re-entrant: a thread that holds it and opens a second connection's transaction meets
    SQLite's own lock and busy timeout, as before."""
    if hasattr(db, WRITER):
        cached: threading.RLock | None = getattr(db, WRITER)
        return cached
    path = catalog_path(db)
    lock: threading.RLock | None = None
    if path:
        key = os.path.realpath(path)
        with _writers_lock:
            lock = _writers.setdefault(key, threading.RLock())
    setattr(db, WRITER, lock)
    return lock


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
    queue = _writer(db)
    if queue is not None and not queue.acquire(timeout=busy_timeout_s()):
        raise busy_error(db)
    try:
        try:
            db.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise busy_error(db) from exc
            if is_disk_full(exc):
                raise vault_full(db, exc) from exc
            raise
        setattr(db, AFTER_COMMIT, None)
        try:
            yield db
            db.conn.execute("COMMIT")
        except BaseException as exc:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
            setattr(db, AFTER_COMMIT, None)
            if isinstance(exc, OSError | sqlite3.Error) and is_disk_full(exc):
                raise vault_full(db, exc) from exc
            raise
        hook = getattr(db, AFTER_COMMIT, None)
        setattr(db, AFTER_COMMIT, None)
    finally:
        if queue is not None:
            queue.release()  # the next writer of this process begins now
    if hook is not None:
        # e.g. the audit log's head and the clock anchor, outside the catalog
        # (station.audit.head), moved once the entries are committed.
        kept = getattr(db, DEFERRED, None)
        if kept is not None:
            kept.append(hook)
        else:
            hook(db)
