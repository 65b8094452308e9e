"""Group commit: the batches several runs of one process have ready for a vault, named and
committed in one turn at the vault's writer lock, in one catalog transaction.

Eight docks finishing together would otherwise take eight turns at the writer lock, each with
its own folder flushes and catalog commit (``synchronous=FULL``: an fsync of the WAL each). Here
the first run to arrive leads: it takes the writer lock (DESIGN.md invariant 8), then every
batch queued by then, in the order they arrived, and

1. names each batch's copies in ``originals/`` (``Job.place``) with no catalog transaction
   open, so the catalog's own write lock stays free for runs that are starting or closing;
   then flushes every folder that gained a name, once;
2. writes each batch's rows and audit entries (``Job.rows``) on its own catalog connection,
   inside one ``BEGIN IMMEDIATE`` transaction, each batch in its own savepoint; then one
   ``COMMIT``.

The others wait for their batch's outcome; whoever is waiting when the turn ends leads the
next one.

Each batch stays its own: its rows and audit entries carry its own session, actor and files
(the audit log is appended in the turn's order, one chain). A batch whose naming or rows fail
is rolled back to its savepoint and takes back the names it linked (``Job.undo``); the others
commit without it. When the flush or the commit fails (a full disk), or a failure took the
whole transaction with it, every batch of the turn is taken back and gets that error. A batch
is committed exactly when its ``done`` reports no error: only then may its names count as
stored (DESIGN.md invariant 2, R7); a batch taken back leaves its files at their source.

Processes do not share a turn: two processes on one vault still take turns at the writer
lock, as before.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from station.catalog import write_txn
from station.catalog.txn import after_commit_deferred, vault_full
from station.custody import WriterLock
from station.errors import CatalogError, is_disk_full
from station.hashing.copy import fsync_dir, syncfs
from station.log import get
from station.vault import Vault

log = get()

GROUP_MAX = 64  # batches in one turn at most
DIR_FSYNCS_MAX = 16  # more folders than this gained names in one turn: one syncfs instead

Hook = Callable[[sqlite_utils.Database], None]


class Job:
    """One run's batch for a turn, in two steps, both under the writer lock: ``place(db)``
    names its copies in the vault and returns the folders that gained a name (flushed by the
    turn); ``rows(db)`` writes its rows and audit entries inside the turn's transaction, on the
    leading run's connection. ``undo()`` takes back the names ``place`` made when its rows are
    not committed after all."""

    def __init__(
        self,
        place: Callable[[sqlite_utils.Database], set[Path]],
        rows: Callable[[sqlite_utils.Database], None],
        undo: Callable[[], None],
    ) -> None:
        self.place = place
        self.rows = rows
        self.undo = undo
        self.done = False
        self.error: BaseException | None = None
        self.group = 0  # how many batches its turn held


class GroupCommit:
    """The group committer of one vault in this process (:func:`for_vault`)."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self._cond = threading.Condition()
        self._queue: list[Job] = []
        self._leading = False

    def waiting(self) -> int:
        """How many batches wait for the next turn."""
        with self._cond:
            return len(self._queue)

    def run(self, db: sqlite_utils.Database, job: Job) -> list[Hook]:
        """Commit ``job`` in this turn or a later one; raise its error if it failed. Returns
        the after-commit hooks of the turns this thread led (the audit head's move), for the
        caller to run now that the writer lock is let go (none when another run led)."""
        hooks: list[Hook] = []
        with self._cond:
            self._queue.append(job)
        while True:
            with self._cond:
                while self._leading and not job.done:
                    self._cond.wait()
                if job.done:
                    break
                self._leading = True
            try:
                hooks += self._lead(db, job)
            finally:
                with self._cond:
                    self._leading = False
                    self._cond.notify_all()
                    if not job.done and job not in self._queue:  # taken by a turn that broke
                        job.error = job.error or _turn_lost(self.vault)
                        job.done = True
        if job.error is not None:
            raise job.error
        return hooks

    def _lead(self, db: sqlite_utils.Database, own: Job) -> list[Hook]:
        """One turn: the writer lock, every batch queued by then; their names, one flush,
        one transaction."""
        jobs: list[Job] = []
        placed: list[Job] = []
        with after_commit_deferred(db) as hooks:
            try:
                with WriterLock(self.vault):  # invariant 8: one writer names and commits
                    with self._cond:  # everything that queued while the lock was awaited
                        jobs, self._queue = self._queue[:GROUP_MAX], self._queue[GROUP_MAX:]
                    # 1. the names, with no catalog transaction open: the catalog's own write
                    # lock stays free meanwhile for the runs that are starting or closing
                    dirs: set[Path] = set()
                    for job in jobs:
                        try:
                            dirs |= job.place(db)
                        except BaseException as exc:
                            job.error = exc
                            _undo(job)
                        else:
                            placed.append(job)
                    flush_dirs(self.vault, dirs)  # the names durable before rows claim them
                    # 2. every batch's rows in one transaction, each in its own savepoint
                    with write_txn(db):
                        for job in list(placed):
                            if not db.conn.in_transaction:
                                raise _TurnLost()  # a batch's failure ended it for all
                            try:
                                with write_txn(db):
                                    job.rows(db)
                            except BaseException as exc:
                                job.error = (
                                    vault_full(db, exc)
                                    if isinstance(exc, OSError | sqlite3.Error)
                                    and is_disk_full(exc)
                                    else exc
                                )
                                _undo(job)
                                placed.remove(job)
                        if not db.conn.in_transaction:
                            raise _TurnLost()
            except BaseException as exc:
                # nothing of this turn was committed: every batch placed is taken back
                error = _turn_lost(self.vault) if isinstance(exc, _TurnLost) else exc
                for job in placed:
                    job.error = error
                    _undo(job)
                if not jobs:  # the lock could not even be taken
                    with self._cond:
                        if own in self._queue:
                            self._queue.remove(own)
                    jobs = [own]
                for job in jobs:
                    job.error = job.error or error
        with self._cond:
            for job in jobs:
                job.group = len(jobs)
                job.done = True
        return list(hooks)


def _turn_lost(vault: Vault) -> CatalogError:
    return CatalogError(
        "目录事务因同组另一批次出错而回滚 / the catalog transaction was rolled back by "
        "another batch's failure",
        where=str(vault.catalog_path),
        hint="nothing of these batches was kept; their files stay at their source",
    )


class _TurnLost(Exception):
    """The turn's transaction ended under it (a batch's failure rolled it all back)."""


def _undo(job: Job) -> None:
    try:
        job.undo()
    except Exception:
        log.exception("ingest.group_undo_failed")


def flush_dirs(vault: Vault, dirs: set[Path]) -> None:
    """Make the names a turn linked durable: an ``fsync`` of each folder that gained one, or
    one ``syncfs`` of the vault when there are many."""
    if len(dirs) > DIR_FSYNCS_MAX:
        syncfs(vault.originals)
        return
    for d in sorted(dirs):
        fsync_dir(d)


_groups: dict[Path, GroupCommit] = {}
_groups_lock = threading.Lock()


def for_vault(vault: Vault) -> GroupCommit:
    """The one group committer of ``vault`` in this process."""
    key = vault.home.resolve()
    with _groups_lock:
        group = _groups.get(key)
        if group is None:
            group = _groups[key] = GroupCommit(vault)
        return group
