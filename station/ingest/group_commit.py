"""Group commit: the batches several runs of one process have ready for a vault, named and
committed in one turn at the vault's writer lock, in one catalog transaction.

Eight docks finishing together would otherwise take eight turns at the writer lock, each with
its own folder flushes and catalog commit (``synchronous=FULL``: an fsync of the WAL each). Here
the first run to arrive leads: it takes the writer lock (DESIGN.md invariant 8), then every
batch queued by then — its own first — and runs each one's locked work on its own catalog
connection, inside one ``BEGIN IMMEDIATE`` transaction, each batch in its own savepoint, in the
order they arrived; then one ``COMMIT``. The others wait for their batch's outcome; whoever is
waiting when the turn ends leads the next one.

Each batch stays its own: its rows and audit entries carry its own session, actor and files
(the audit log is appended in the group's order, one chain). A batch whose work fails is
rolled back to its savepoint and takes back the names it linked (``Job.undo``); the others in
the group commit without it. When the commit itself fails (a full disk), or a failure took
the whole transaction with it, every batch already run is taken back and gets that error;
those not yet run wait for the next turn. A batch is committed exactly when its ``done``
reports no error: only then may its names count as stored (DESIGN.md invariant 2, R7).

Processes do not share a group: two processes on one vault still take turns at the writer
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
    """One run's batch for a turn: ``work(db)`` names and writes its rows on the leader's
    connection, inside the group's transaction, and returns the folders that gained a name
    (flushed by the turn before its commit); ``undo()`` takes back what ``work`` linked in
    the vault when its rows are not committed after all."""

    def __init__(
        self, work: Callable[[sqlite_utils.Database], set[Path]], undo: Callable[[], None]
    ) -> None:
        self.work = work
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
        """One turn: the writer lock, every batch queued by then, one transaction."""
        jobs: list[Job] = []
        ran: list[Job] = []
        dirs: set[Path] = set()
        with after_commit_deferred(db) as hooks:
            try:
                with WriterLock(self.vault):  # invariant 8: one writer names and commits
                    with self._cond:  # everything that queued while the lock was awaited
                        jobs, self._queue = self._queue[:GROUP_MAX], self._queue[GROUP_MAX:]
                    with write_txn(db):
                        for i, job in enumerate(jobs):
                            if not db.conn.in_transaction:
                                # a batch's failure ended the whole transaction: what ran is
                                # lost with it; the batches not run yet wait for the next turn
                                with self._cond:
                                    self._queue[:0] = jobs[i:]
                                jobs = jobs[:i]
                                raise _TurnLost()
                            try:
                                with write_txn(db):  # a savepoint: this batch alone
                                    gained = job.work(db)
                            except BaseException as exc:
                                job.error = (
                                    vault_full(db, exc)
                                    if isinstance(exc, OSError | sqlite3.Error)
                                    and is_disk_full(exc)
                                    else exc
                                )
                                _undo(job)
                            else:
                                ran.append(job)
                                dirs |= gained
                        # the new names durable before the rows that claim them commit
                        flush_dirs(self.vault, dirs)
            except BaseException as exc:
                # nothing of this turn was committed: every batch that ran is taken back
                error = _turn_lost(self.vault) if isinstance(exc, _TurnLost) else exc
                for job in ran:
                    job.error = error
                    _undo(job)
                if not jobs:  # the lock or the transaction could not even be begun
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
    """The group's transaction ended under it (a savepoint's failure rolled it all back)."""


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
