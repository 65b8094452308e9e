"""Eight docks committing into one vault at once: what the store stage does so that the runs do
not wait on each other longer than they must, with every custody guarantee kept.

- the commit thread takes every batch waiting in the queue as one (``pipeline`` ``merge``): no
  batch lost, none committed twice, the copy not held up while the vault's writer lock is busy;
- the names a batch will create are written down (``staging/<owner>/naming``, durably) *before*
  the writer lock is taken, so that flush overlaps other runs' turns; the rows still commit
  under the lock and the list goes once they do (DESIGN.md invariant 8);
- a waiter takes the writer lock as soon as its holder lets go (blocking ``flock``, no sleeps);
- a session's progress never waits on another slot's status-file write (``StatusBoard``);
- the staged copy's data is handed to the disk behind the copy (``sync_file_range``), and the
  flush before the re-read is an ``fsync`` of each copy, never a ``syncfs`` of the whole file
  system (which would wait on every other writer) — the re-read from disk still proves every
  copy (invariant 2, R7);
- a large copy is re-read from the device while it is still being written (``ProveBehind``):
  each range once the device holds it, its cached pages dropped first, so the proof of a file
  ends a moment after its last byte; what the device returns is what is compared.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Generator
from pathlib import Path

import pytest
import sqlite_utils
from custody_support import wait_for

from station import audit
from station.audit.head import read_head
from station.catalog import open_catalog, write_txn
from station.config import Settings
from station.custody import NAMING_NAME, WriterLock
from station.hashing.copy import WRITEBACK_STEP, ProveBehind, copy_and_hash_pipelined
from station.ingest import IngestContext, ingest_volume
from station.ingest.pipeline import DEPTH, run_stages
from station.status import StatusBoard, read_status
from station.vault import Vault


class _Ahead:
    """Counts the batches the producer has handed over (their ``put`` returned), so a busy
    consumer can wait until the queue behind it is full."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.handed = 0
        self.made = 0

    def produce(self, n: int) -> Generator[list[int], None, None]:
        for i in range(n):
            self.made = i + 1
            yield [i]
            with self.cond:
                self.handed = i + 1
                self.cond.notify_all()

    def wait_full_behind(self, batch: list[int]) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.handed >= batch[-1] + 1 + DEPTH, 30)


def _merge(items: list[list[int]]) -> list[int]:
    return [x for item in items for x in item]


def test_batches_waiting_for_a_busy_committer_are_committed_together() -> None:
    """While the consumer is busy, the producer runs DEPTH batches ahead; the consumer then
    takes all of them at once. Every item is committed exactly once, in order."""
    ahead = _Ahead()
    calls: list[list[int]] = []

    def consume(batch: list[int]) -> None:
        if not calls:
            ahead.wait_full_behind(batch)
        calls.append(batch)

    produced, consumed = run_stages(
        ahead.produce(6 * DEPTH),
        consume,
        lambda b: pytest.fail(f"discarded {b}"),
        threaded=True,
        merge=_merge,
    )
    assert (produced, consumed) == (None, None)
    assert [x for call in calls for x in call] == list(range(6 * DEPTH))
    assert len(calls[1]) >= DEPTH  # the batches that waited went as one


def test_a_failing_merged_commit_stops_production_and_loses_nothing() -> None:
    ahead = _Ahead()
    committed: list[int] = []
    discarded: list[int] = []
    failed: list[list[int]] = []

    def consume(batch: list[int]) -> None:
        if not committed:
            ahead.wait_full_behind(batch)
            committed.extend(batch)
            return
        failed.append(batch)  # the store stage discards the batch it fails on itself
        raise OSError("vault gone")

    produced, consumed = run_stages(
        ahead.produce(100), consume, discarded.extend, threaded=True, merge=_merge
    )
    assert produced is None and isinstance(consumed, OSError)
    assert len(failed) == 1 and len(failed[0]) >= DEPTH
    made = list(range(ahead.made))
    assert sorted([*committed, *failed[0], *discarded]) == made
    assert len(made) < 100


def _clips(folder: Path, n: int, size: int) -> dict[str, str]:
    day = folder / "DCIM" / "20261121"
    day.mkdir(parents=True)
    out = {}
    for i in range(1, n + 1):
        data = os.urandom(size)
        (day / f"ZFY0001_100001_20261121{8 + i:02d}0000_{i:04d}.MP4").write_bytes(data)
        out[hashlib.sha256(data).hexdigest()] = f"{i}"
    return out


def _ingest_in_thread(
    vault: Vault, db: sqlite_utils.Database, volume: Path, result: list[object]
) -> threading.Thread:
    """A command-line ingest of ``volume``, started in a thread; its report goes to
    ``result``."""
    t = threading.Thread(
        target=lambda: result.append(
            ingest_volume(vault, db, Settings(), volume, IngestContext(kind="cli"), actor="t")
        )
    )
    t.start()
    return t


def _names_lists(vault: Vault) -> list[Path]:
    """The names lists the runs in staging have written (before taking the writer lock)."""
    return list(vault.staging.glob(f"*/{NAMING_NAME}"))


def _free_head(head_lock: int, waiter: threading.Thread, timeout: float) -> None:
    """Let the audit head's file go: ``waiter``, waiting for it, then ends."""
    fcntl.flock(head_lock, fcntl.LOCK_UN)
    waiter.join(timeout)
    assert not waiter.is_alive()


def test_names_are_listed_before_the_writer_lock_and_committed_under_it(tmp_path: Path) -> None:
    """The writer lock is held by someone else: the run copies, proves and writes down the
    names it will create, then waits; nothing is named in originals/ nor committed until the
    lock is free. Once it is, every file is stored, verified, and the list is gone."""
    vault = Vault(tmp_path / "home")
    vault.init()
    clips = _clips(tmp_path / "vol", 3, 300_000)
    db: sqlite_utils.Database = open_catalog(vault.catalog_path)
    result: list[object] = []
    try:
        with WriterLock(vault):
            t = _ingest_in_thread(vault, db, tmp_path / "vol", result)
            wait_for("the run to list its names", lambda: bool(_names_lists(vault)))
            listed = {line for p in _names_lists(vault) for line in p.read_text().split()}
            assert {Path(x).name.split(".")[0] for x in listed} == set(clips)
            assert all(x.startswith("originals/") for x in listed)
            # still waiting for the lock: nothing named, nothing committed
            assert not [p for p in vault.originals.rglob("*") if p.is_file()]
            assert t.is_alive()
        t.join(60)
        assert not t.is_alive()
    finally:
        db.close()
    (report,) = result
    assert sorted((f.sha256, f.outcome, f.verified) for f in report.files) == sorted(  # type: ignore[attr-defined]
        (sha, "new", True) for sha in clips
    )
    assert {str(p.relative_to(vault.home)) for p in vault.originals.rglob("*") if p.is_file()} == (
        listed
    )
    assert list(vault.staging.iterdir()) == []  # list and copies gone with the owner


def test_the_audit_head_moves_after_the_writer_lock_is_let_go(tmp_path: Path) -> None:
    """The audit head's file is busy (its lock held here) when the run commits: the rows and
    their audit entries commit and the writer lock is let go for the next run while the head
    waits; once the head's lock is free the head reaches the log's last entry."""
    vault = Vault(tmp_path / "home")
    vault.init()
    clips = _clips(tmp_path / "vol", 2, 300_000)
    db: sqlite_utils.Database = open_catalog(vault.catalog_path)
    head_lock = os.open(vault.home / ".audit-head.json.lock", os.O_RDWR | os.O_CREAT, 0o600)
    result: list[object] = []
    try:
        with WriterLock(vault):
            t = _ingest_in_thread(vault, db, tmp_path / "vol", result)
            wait_for("the run to wait for the writer lock", lambda: bool(_names_lists(vault)))
            fcntl.flock(head_lock, fcntl.LOCK_EX)  # the head is busy from now on
        reader = open_catalog(vault.catalog_path)
        try:
            wait_for(
                "the rows to commit",
                lambda: reader.execute("select count(*) from recordings").fetchone()[0] == 2,
            )
        finally:
            reader.close()
        got = threading.Event()

        def next_writer() -> None:
            with WriterLock(vault):
                got.set()

        w = threading.Thread(target=next_writer)
        w.start()
        assert got.wait(60)  # the writer lock is free while the head still waits
        w.join(30)
        assert t.is_alive()  # the run waits for the head
        _free_head(head_lock, t, 120)
    finally:
        os.close(head_lock)
    try:
        last = db.execute("select seq, entry_hash from audit_log order by seq desc limit 1")
        seq, entry_hash = last.fetchone()
    finally:
        db.close()
    (report,) = result
    assert sorted((f.sha256, f.verified) for f in report.files) == sorted(  # type: ignore[attr-defined]
        (sha, True) for sha in clips
    )
    head = read_head(vault.home)
    assert head is not None and (head["seq"], head["entry_hash"]) == (seq, entry_hash)


def test_commits_made_while_the_head_is_being_moved_return_at_once(tmp_path: Path) -> None:
    """One thread's commit is moving the audit head (its file busy: the lock held here); three
    other threads commit meanwhile, each on its own connection: they return without waiting,
    their entries committed; once the file is free the head ends at the newest entry."""
    vault = Vault(tmp_path / "home")
    vault.init()
    open_catalog(vault.catalog_path).close()
    head_lock = os.open(vault.home / ".audit-head.json.lock", os.O_RDWR | os.O_CREAT, 0o600)

    def commit(i: int) -> None:
        db = open_catalog(vault.catalog_path)
        try:
            with write_txn(db):
                audit.append(db, "test.entry", actor="t", subject=str(i))
        finally:
            db.close()

    try:
        fcntl.flock(head_lock, fcntl.LOCK_EX)
        first = threading.Thread(target=commit, args=(0,))
        first.start()
        reader = open_catalog(vault.catalog_path)
        try:
            count = lambda: reader.execute("select count(*) from audit_log").fetchone()[0]  # noqa: E731
            wait_for("the first entry", lambda: count() >= 1)
            before = count()
            others = [threading.Thread(target=commit, args=(i,)) for i in (1, 2, 3)]
            for t in others:
                t.start()
            for t in others:
                t.join(60)
                assert not t.is_alive()  # returned while the head's file was still busy
            assert count() == before + 3
        finally:
            reader.close()
        assert first.is_alive()  # the mover waits for the file
        _free_head(head_lock, first, 60)
    finally:
        os.close(head_lock)
    db = open_catalog(vault.catalog_path)
    try:
        seq, entry_hash = db.execute(
            "select seq, entry_hash from audit_log order by seq desc limit 1"
        ).fetchone()
    finally:
        db.close()
    head = read_head(vault.home)
    assert head is not None and (head["seq"], head["entry_hash"]) == (seq, entry_hash)


def test_a_waiter_takes_the_writer_lock_when_its_holder_lets_go(tmp_path: Path) -> None:
    vault = Vault(tmp_path / "home")
    vault.init()
    got = threading.Event()

    def waiter() -> None:
        with WriterLock(vault):
            got.set()

    holder = WriterLock(vault)
    holder.__enter__()
    t = threading.Thread(target=waiter)
    t.start()
    assert not got.wait(0.3)  # held: the waiter waits
    holder.__exit__(None, None, None)
    assert got.wait(30)
    t.join(30)


_STRACED = """
import sys
from pathlib import Path
from station.config import Settings
from station import audit
from station.audit.head import read_head
from station.catalog import open_catalog, write_txn
from station.ingest import IngestContext, ingest_volume
from station.vault import Vault
vault = Vault(Path(sys.argv[1]))
vault.init()
db = open_catalog(vault.catalog_path)
rep = ingest_volume(vault, db, Settings(), Path(sys.argv[2]), IngestContext(kind="cli"), actor="t")
assert all(f.verified for f in rep.files) and len(rep.files) == 2, rep.files
"""


def test_copies_are_flushed_one_by_one_never_the_whole_file_system(tmp_path: Path) -> None:
    """Under strace: writeback is started behind the copy, each staged copy is fsynced and its
    cached pages dropped before the re-read, and no syncfs is made (two large files, each a
    batch of its own, two folders gaining a name)."""
    if shutil.which("strace") is None:
        pytest.skip("needs strace (scripts/setup.sh installs it)")
    _clips(tmp_path / "vol", 2, 12 << 20)
    trace = tmp_path / "trace"
    proc = subprocess.run(
        [
            *("strace", "-f", "-qq", "-o", str(trace)),
            *("-e", "trace=sync_file_range,syncfs,fsync,fadvise64"),
            *(sys.executable, "-c", _STRACED, str(tmp_path / "home"), str(tmp_path / "vol")),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    calls = [line.split(None, 1)[1] for line in trace.read_text().splitlines() if " " in line]
    assert not [c for c in calls if c.startswith("syncfs(")]
    assert len([c for c in calls if c.startswith("sync_file_range(")]) >= 2 * 3  # 12 MiB / 4
    dontneed = [c for c in calls if c.startswith("fadvise64(") and "POSIX_FADV_DONTNEED" in c]
    assert len(dontneed) >= 2  # each copy dropped from the cache before its re-read
    assert len([c for c in calls if c.startswith("fsync(")]) >= 2
    # the re-read behind the copy waits until the device holds each range before dropping it
    waited = [c for c in calls if c.startswith("sync_file_range(") and "WAIT_AFTER" in c]
    assert len(waited) >= 2 * 2  # per 12 MiB copy: one range behind it, then the rest


class _Source:
    """A recorder file in memory, read a MiB at a time; ``at(offset, action)`` runs ``action``
    once the reads have reached ``offset`` (before handing that chunk over)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.actions: list[tuple[int, object]] = []

    def at(self, offset: int, action: object) -> None:
        self.actions.append((offset, action))

    def readinto(self, buffer: memoryview) -> int:
        for offset, action in list(self.actions):
            if self.pos >= offset:
                self.actions.remove((offset, action))
                action()  # type: ignore[operator]
        n = min(len(buffer), len(self.data) - self.pos)
        buffer[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n

    def will_need(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_large_copy_is_proved_from_the_device_while_it_is_still_written(
    tmp_path: Path,
) -> None:
    """The source holds back its last MiBs until the re-read behind the copy has proved the
    first range: the proof advances while the copy is not finished; at the end it covers every
    byte and matches the copy's own hash."""
    data = os.urandom(6 * WRITEBACK_STEP)
    dst = tmp_path / "copy.part"
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    behind = ProveBehind(dst)
    src = _Source(data)
    seen: list[int] = []

    def wait_for_the_proof() -> None:
        wait_for("the first range proved", lambda: behind.proved >= WRITEBACK_STEP)
        seen.append(src.pos)

    src.at(4 * WRITEBACK_STEP, wait_for_the_proof)
    try:
        sha, size = copy_and_hash_pipelined(src, fd, behind=behind)
    finally:
        os.close(fd)
    assert seen and seen[0] < len(data)  # proved while the rest was still to be read
    assert (sha, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert behind.result() == (sha, size)


def test_a_copy_changed_on_disk_before_its_proof_is_not_proved(tmp_path: Path) -> None:
    """Bytes of the copy change on disk after they were hashed on the way in and before the
    re-read reaches them (a range handed on only at the end): the re-read's hash is of what the
    file holds, so it differs from the copy's and the copy is not proved."""
    data = os.urandom(3 * WRITEBACK_STEP)
    dst = tmp_path / "copy.part"
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    behind = ProveBehind(dst)
    src = _Source(data)

    def rot() -> None:
        other = os.open(dst, os.O_WRONLY)
        try:
            os.pwrite(other, b"\x00" * 16, WRITEBACK_STEP + 4096)
        finally:
            os.close(other)

    src.at(3 * WRITEBACK_STEP - (1 << 20), rot)  # written, in the range handed on last
    try:
        sha, size = copy_and_hash_pipelined(src, fd, behind=behind)
    finally:
        os.close(fd)
    assert sha == hashlib.sha256(data).hexdigest()
    again, again_size = behind.result()
    assert again_size == size and again != sha


def test_a_cancelled_copy_leaves_no_proof(tmp_path: Path) -> None:
    """A copy stopped half-way cancels its re-read: no digest is ever returned for it."""
    data = os.urandom(3 * WRITEBACK_STEP)
    dst = tmp_path / "copy.part"
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    behind = ProveBehind(dst)
    src = _Source(data)
    stop = threading.Event()
    src.at(2 * WRITEBACK_STEP, stop.set)
    try:
        with pytest.raises(InterruptedError):
            copy_and_hash_pipelined(src, fd, behind=behind, should_stop=stop.is_set)
    finally:
        os.close(fd)
    with pytest.raises(RuntimeError):
        behind.result()


def test_progress_never_waits_on_another_slots_status_write(tmp_path: Path) -> None:
    """One thread is writing the status file (held in a listener); eight other slots report
    progress meanwhile and return at once; once the writer goes on, the file holds every slot's
    latest state."""
    board = StatusBoard(tmp_path / "run" / "status.json")
    entered, gate = threading.Event(), threading.Event()

    def slow_listener(_: StatusBoard) -> None:
        if not entered.is_set():
            entered.set()
            assert gate.wait(30)

    board.listeners.append(slow_listener)
    writer = threading.Thread(target=board.update, args=("1-1",), kwargs={"files_done": 1})
    writer.start()
    assert entered.wait(30)

    def others() -> None:
        for n in range(1, 4):
            for i in range(2, 10):
                board.update(f"1-{i}", files_done=n)

    t = threading.Thread(target=others)
    t.start()
    t.join(30)
    assert not t.is_alive()  # returned while the file was still being written by another
    assert writer.is_alive()
    gate.set()
    writer.join(30)
    data = read_status(board.path)
    assert data is not None
    assert {s["slot"]: s["files_done"] for s in data["slots"]} == {
        "1-1": 1,
        **{f"1-{i}": 3 for i in range(2, 10)},
    }
