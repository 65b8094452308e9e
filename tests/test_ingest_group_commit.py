"""Group commit (``station.ingest.group_commit``): the batches several runs of one process have
ready are named and committed in one turn at the vault's writer lock, one catalog transaction,
each batch in its own savepoint — and each run's rows, audit entries and report stay its own.

Real ingest runs (threads, each on its own catalog connection, as the daemon's dock sessions
are), a real SQLite catalog, and faults injected into that catalog with triggers: a batch whose
rows fail (``RAISE(ABORT)``), a commit that fails (a deferred foreign key), a failure that ends
the whole transaction (``RAISE(ROLLBACK)``). Whatever fails, a file is reported verified exactly
when its name is in ``originals/`` and its rows are committed (DESIGN.md invariant 2, R7); the
audit chain stays whole; no run's rows carry another run's session.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from pathlib import Path

import sqlite_utils
from custody_support import wait_for
from structlog.testing import capture_logs

from station.audit.tree import check_chain
from station.catalog import open_catalog
from station.config import Settings
from station.custody import WriterLock
from station.errors import CatalogError
from station.ingest import IngestContext, IngestReport, ingest_volume
from station.ingest.group_commit import for_vault
from station.vault import Vault


def _volume(folder: Path, device: str, n: int = 2, size: int = 200_000) -> set[str]:
    """A recorder's folder with ``n`` clips of random content; their hashes."""
    day = folder / "DCIM" / "20261121"
    day.mkdir(parents=True)
    out = set()
    for i in range(1, n + 1):
        data = os.urandom(size)
        (day / f"{device}_100001_20261121{8 + i:02d}0000_{i:04d}.MP4").write_bytes(data)
        out.add(hashlib.sha256(data).hexdigest())
    return out


class _Runs:
    """Ingest runs in threads, each with its own catalog connection; each run's report or
    the error it raised."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.threads: list[threading.Thread] = []
        self.out: dict[int, IngestReport | BaseException] = {}

    def start(self, i: int, volume: Path) -> None:
        def run() -> None:
            db = open_catalog(self.vault.catalog_path)
            try:
                self.out[i] = ingest_volume(
                    self.vault, db, Settings(), volume, IngestContext(kind="cli"), actor=f"run{i}"
                )
            except BaseException as exc:
                self.out[i] = exc
            finally:
                db.close()

        t = threading.Thread(target=run, name=f"run{i}")
        self.threads.append(t)
        t.start()

    def join(self) -> None:
        for t in self.threads:
            t.join(120)
            assert not t.is_alive()


def _queued_in_order(vault: Vault, tmp: Path, shas: dict[int, set[str]], n: int) -> _Runs:
    """``n`` runs (one batch each) queued, in order, while the writer lock is held here;
    the lock is let go once all of them wait, so one turn takes them all."""
    runs = _Runs(vault)
    group = for_vault(vault)
    with WriterLock(vault):
        for i in range(n):
            shas[i] = _volume(tmp / f"vol{i}", f"ZFY{i:04d}")
            runs.start(i, tmp / f"vol{i}")
            wait_for(f"run {i} to queue its batch", lambda i=i: group.waiting() == i + 1)
    runs.join()
    return runs


def _stored(vault: Vault) -> set[str]:
    return {p.name.split(".")[0] for p in vault.originals.rglob("*") if p.is_file()}


def _check_custody(vault: Vault, runs: _Runs, shas: dict[int, set[str]]) -> None:
    """Each run: reported verified exactly what is named in originals/ and committed, under
    its own session and actor; a run that failed left no name and no row; the chain is whole;
    staging is empty."""
    db: sqlite_utils.Database = open_catalog(vault.catalog_path)
    try:
        stored = _stored(vault)
        for i, result in runs.out.items():
            if isinstance(result, BaseException):
                assert not (shas[i] & stored), f"run {i} failed but left names"
                rows = {r[0] for r in db.execute("select sha256 from recordings")}
                assert not (shas[i] & rows), f"run {i} failed but left rows"
                continue
            sid = result.session_id
            assert {(f.sha256, f.outcome, f.verified) for f in result.files} == {
                (sha, "new", True) for sha in shas[i]
            }
            assert shas[i] <= stored
            rows = db.execute(
                "select sha256, first_session_id from recordings where first_session_id = ?",
                [sid],
            ).fetchall()
            assert {r[0] for r in rows} == shas[i]
            seen = db.execute(
                "select sha256, outcome from sightings where session_id = ?", [sid]
            ).fetchall()
            assert set(seen) == {(sha, "new") for sha in shas[i]}
            ingested = db.execute(
                "select subject, actor from audit_log where event = 'recording.ingested'"
                " and actor = ?",
                [f"run{i}"],
            ).fetchall()
            assert set(ingested) == {(sha, f"run{i}") for sha in shas[i]}
        assert check_chain(db).problems == []
    finally:
        db.close()
    assert list(vault.staging.iterdir()) == []


def _home(tmp: Path) -> Vault:
    vault = Vault(tmp / "home")
    vault.init()
    open_catalog(vault.catalog_path).close()
    return vault


def test_batches_waiting_at_the_writer_lock_commit_in_one_turn(tmp_path: Path) -> None:
    """Three runs wait at the writer lock: one turn names and commits all three batches, each
    with its own session's rows and audit entries."""
    vault = _home(tmp_path)
    shas: dict[int, set[str]] = {}
    with capture_logs() as logs:
        runs = _queued_in_order(vault, tmp_path, shas, 3)
    assert all(isinstance(r, IngestReport) for r in runs.out.values())
    committed = [e for e in logs if e["event"] == "ingest.batch_committed"]
    assert [e["group"] for e in committed] == [3, 3, 3]
    assert len({e["session_id"] for e in committed}) == 3
    _check_custody(vault, runs, shas)


def _trigger(vault: Vault, sql: str) -> None:
    db = sqlite3.connect(vault.catalog_path)
    try:
        db.executescript(sql)
    finally:
        db.close()


def test_a_batch_whose_rows_fail_leaves_the_others_of_its_turn_committed(
    tmp_path: Path,
) -> None:
    """The middle batch of a turn fails writing its rows: it is rolled back to its savepoint
    and takes back its names; the batches before and after it commit, each its own."""
    vault = _home(tmp_path)
    shas: dict[int, set[str]] = {}
    _trigger(
        vault,
        "create trigger fault before insert on sightings"
        " when new.source_path like '%ZFY0001_%'"
        " begin select raise(abort, 'injected fault'); end;",
    )
    runs = _queued_in_order(vault, tmp_path, shas, 3)
    failed = runs.out[1]
    assert isinstance(failed, sqlite3.IntegrityError) and "injected fault" in str(failed)
    assert isinstance(runs.out[0], IngestReport) and isinstance(runs.out[2], IngestReport)
    assert not (shas[1] & _stored(vault))
    _check_custody(vault, runs, shas)


def test_a_turn_whose_commit_fails_takes_back_every_batch(tmp_path: Path) -> None:
    """The turn's COMMIT fails (a deferred foreign key, checked only then): no batch of the
    turn is committed, every name is taken back, no run reports a file verified."""
    vault = _home(tmp_path)
    shas: dict[int, set[str]] = {}
    _trigger(
        vault,
        "create table fault_parent (id integer primary key);"
        "create table fault_child (pid integer references fault_parent (id)"
        " deferrable initially deferred);"
        "create trigger fault after insert on sightings"
        " when new.source_path like '%ZFY0001_%' begin insert into fault_child values (9); end;",
    )
    runs = _queued_in_order(vault, tmp_path, shas, 3)
    assert all(isinstance(r, sqlite3.IntegrityError) for r in runs.out.values()), runs.out
    assert _stored(vault) == set()
    _check_custody(vault, runs, shas)


def test_a_failure_that_ends_the_transaction_claims_nothing(tmp_path: Path) -> None:
    """The middle batch's failure rolls the whole transaction back (``RAISE(ROLLBACK)``):
    the batch before it, lost with the transaction, and the batch after it fail with a
    catalog error and take back their names — none is reported verified, none left a row;
    the next run's batch commits in a turn of its own."""
    vault = _home(tmp_path)
    shas: dict[int, set[str]] = {}
    _trigger(
        vault,
        "create trigger fault before insert on sightings"
        " when new.source_path like '%ZFY0001_%'"
        " begin select raise(rollback, 'injected fault'); end;",
    )
    runs = _queued_in_order(vault, tmp_path, shas, 3)
    assert isinstance(runs.out[0], CatalogError)
    assert isinstance(runs.out[1], sqlite3.IntegrityError)
    assert isinstance(runs.out[2], CatalogError)
    assert _stored(vault) == set()
    _check_custody(vault, runs, shas)
    # the catalog is usable at once: a later run commits
    shas[3] = _volume(tmp_path / "vol3", "ZFY0003")
    later = _Runs(vault)
    later.start(3, tmp_path / "vol3")
    later.join()
    assert isinstance(later.out[3], IngestReport)
    _check_custody(vault, later, shas)


def test_a_second_thread_begins_its_transaction_when_the_first_commits(tmp_path: Path) -> None:
    """Two threads of one process, each on its own connection to one catalog: while the first
    holds a write transaction, the second has not begun its own (it queues in this process,
    not in SQLite's busy handler); once the first commits, the second's commits too, after it.
    The first's after-commit hook runs once the queue is let go."""
    from station import audit
    from station.catalog import write_txn

    vault = _home(tmp_path)
    first = open_catalog(vault.catalog_path)
    second = open_catalog(vault.catalog_path)
    begun: list[str] = []
    second.conn.set_trace_callback(begun.append)
    inside, leave, done = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        with write_txn(first):
            audit.append(first, "test.first", actor="t")
            inside.set()
            assert leave.wait(60)

    def follow() -> None:
        with write_txn(second):
            audit.append(second, "test.second", actor="t")
        done.set()

    try:
        a = threading.Thread(target=hold, name="hold")
        a.start()
        assert inside.wait(60)
        b = threading.Thread(target=follow, name="follow")
        b.start()
        wait_for("the second thread to reach the queue", lambda: b.is_alive())
        assert not done.wait(0.5)
        assert not [s for s in begun if s.startswith("BEGIN")]  # not begun, not polling
        leave.set()
        a.join(60)
        b.join(60)
        assert done.is_set()
        events = [r[0] for r in first.execute("select event from audit_log order by seq")]
        assert events[-2:] == ["test.first", "test.second"]
    finally:
        leave.set()
        for t in threading.enumerate():
            if t.name in ("hold", "follow"):
                t.join(60)
        first.close()
        second.close()
