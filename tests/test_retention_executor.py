"""The retention executor on a real vault and catalog: dry run, pending-purge with a grace
period, restore, purge with tombstones, and every way it can go wrong (R9, R10, R11)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils
from helpers_retention import add_derivative, add_recording, audit_events

from station.cases import store, tags
from station.catalog import open_catalog
from station.config import Settings
from station.errors import StationError
from station.retention import approval, executor
from station.retention.runtypes import NowInPastError, Problem, RetentionError
from station.vault import Vault

OLD = "2026-01-10T02:00:00.000000Z"  # routine footage: expired from 2026-07-10 (R9)
NEW = "2026-12-20T02:00:00.000000Z"  # not expired on the dates below
JAN = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
S = Settings()  # grace 7 days


def go(vault: Vault, db: sqlite_utils.Database, now: dt.datetime, **kw: object):  # type: ignore[no-untyped-def]
    """A real run, then a supervisor approving the whole proposed list at the same time (R9:
    the run itself only proposes; see test_retention_approval for the approval alone)."""
    rep = executor.run(vault, db, S, now=now, actor="sup", wall_now=now, **kw)  # type: ignore[arg-type]
    if rep.aborted is None and approval.open_proposals(db):
        out = approval.approve(
            vault, db, S, [], actor="boss", reason="无保存意义", all_open=True, now=now
        )
        rep.pended += out.approved
        rep.problems += [Problem(p["sha256"], p["kind"], "", p["detail"]) for p in out.problems]
    return rep


def state(db: sqlite_utils.Database, sha: str) -> str:
    return str(db.execute("select state from recordings where sha256 = ?", [sha]).fetchone()[0])


def snapshot(vault: Vault) -> dict[str, bytes]:
    """Every original and derivative in the vault, with its bytes."""
    return {
        str(p.relative_to(vault.home)): p.read_bytes()
        for root in (vault.originals, vault.archival)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def world(vault: Vault, db: sqlite_utils.Database) -> dict[str, str]:
    """One recording per rule; only 'routine' (and its derivative) may ever go."""
    w = {
        name: add_recording(vault, db, recorded_at=OLD)
        for name in (
            "routine",
            "case_open",
            "case_closed",
            "long_term",
            "held",
            "important",
            "rec_lt",
        )
    }
    w["fresh"] = add_recording(vault, db, recorded_at=NEW)
    add_derivative(vault, db, w["routine"])
    store.create_case(db, "开放 1", name="n", actor="c")
    store.link(db, "开放 1", [w["case_open"]], actor="c")
    store.create_case(
        db, "结案 2", name="n", actor="c", opened_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    )
    store.link(db, "结案 2", [w["case_closed"]], actor="c")
    store.close_case(db, "结案 2", actor="c", closed_at=dt.datetime(2026, 2, 1, tzinfo=dt.UTC))
    store.create_case(db, "长期 3", name="n", actor="c")
    store.link(db, "长期 3", [w["long_term"]], actor="c")
    store.mark_long_term(db, "长期 3", reason=2, actor="c")
    tags.hold(db, [w["held"]], reason="诉讼 / lawsuit", actor="c")
    db.execute("update recordings set important = 1 where sha256 = ?", [w["important"]])
    db.conn.commit()
    tags.mark_long_term(db, [w["rec_lt"]], reason=4, actor="c")
    return w


def test_dry_run_lists_and_changes_nothing(
    vault: Vault, db: sqlite_utils.Database, world: dict[str, str]
) -> None:
    before, audit_before = snapshot(vault), audit_events(db)
    rep = go(vault, db, JAN, dry_run=True)
    assert [i.sha256 for i in rep.pend] == [world["routine"]]
    item = rep.pend[0]
    assert item.rule == "R9" and "6 months" in item.reason
    assert item.keep_until == "2026-07-10T02:00:00.000000Z"
    assert snapshot(vault) == before and audit_events(db) == audit_before
    assert db["retention_runs"].count == 0


def test_grace_then_purge_with_tombstone(
    vault: Vault, db: sqlite_utils.Database, world: dict[str, str]
) -> None:
    sha = world["routine"]
    orig = vault.home / db["recordings"].get(sha)["vault_path"]
    deriv = vault.home / db.execute("select vault_path from derivatives").fetchone()[0]
    rep = go(vault, db, JAN)
    assert rep.pended == [sha] and rep.problems == []
    # Pending purge is a state: the files stay in place, read-only, until the grace is over.
    assert orig.is_file() and deriv.is_file() and orig.stat().st_mode & 0o777 == 0o444
    assert state(db, sha) == "pending_purge"
    # Within the grace period nothing is deleted.
    rep = go(vault, db, JAN + dt.timedelta(days=6))
    assert rep.purged == [] and rep.waiting == 1
    rep = go(vault, db, JAN + dt.timedelta(days=7))
    assert rep.purged == [sha] and rep.problems == []
    assert not orig.exists() and not deriv.exists()
    assert state(db, sha) == "purged"
    assert db.execute("select state from derivatives").fetchone()[0] == "purged"
    tomb = db["tombstones"].get(sha)
    assert (tomb["rule"], tomb["purged_by"], tomb["size"]) == ("R9", "sup", 256)
    assert tomb["pending_at"] == "2027-01-01T00:00:00.000000Z"
    assert '"officer_id": "100001"' in tomb["tags"]
    assert audit_events(db, sha)[-3:] == [
        "retention.pending",
        "retention.proposal_pended",
        "retention.purged",
    ]
    # Tombstones are kept forever.
    with pytest.raises(sqlite3.IntegrityError, match="kept forever"):
        db.execute("delete from tombstones")
    with pytest.raises(sqlite3.IntegrityError, match="kept forever"):
        db.execute("update tombstones set rule = 'x'")
    # Everything else survives, years later too (R10 open case, R11, hold, important marker).
    rep = go(vault, db, dt.datetime(2031, 3, 1, tzinfo=dt.UTC))
    assert set(rep.pended) == {world["case_closed"], world["fresh"]}
    for name in ("case_open", "long_term", "held", "important", "rec_lt"):
        assert state(db, world[name]) == "stored", name


def test_restore_and_rule_change_during_grace(
    vault: Vault, db: sqlite_utils.Database, world: dict[str, str]
) -> None:
    sha = world["routine"]
    go(vault, db, JAN)
    rep = executor.restore(vault, db, [sha], actor="sup", note="误删 / mistake")
    assert rep.restored == [sha] and state(db, sha) == "stored"
    with pytest.raises(RetentionError, match="not pending purge"):
        executor.restore(vault, db, [sha], actor="sup")
    # Still expired: pended again; a hold placed during grace brings it back on the next run.
    go(vault, db, JAN + dt.timedelta(days=1))
    assert state(db, sha) == "pending_purge"
    tags.hold(db, [sha], reason="复议 / review", actor="c")
    rep = go(vault, db, JAN + dt.timedelta(days=30))
    assert rep.restored == [sha] and rep.purged == [] and state(db, sha) == "stored"
    assert db["tombstones"].count == 0


def test_restore_refuses_purged(
    vault: Vault, db: sqlite_utils.Database, world: dict[str, str]
) -> None:
    sha = world["routine"]
    go(vault, db, JAN)
    go(vault, db, JAN + dt.timedelta(days=8))
    with pytest.raises(RetentionError, match="tombstone"):
        executor.restore(vault, db, [sha], actor="sup")
    with pytest.raises(StationError, match="no such recording"):
        executor.restore(vault, db, ["0" * 64], actor="sup")


def test_missing_original_is_reported_not_skipped(
    vault: Vault, db: sqlite_utils.Database, world: dict[str, str]
) -> None:
    sha = world["routine"]
    path = vault.home / db["recordings"].get(sha)["vault_path"]
    path.unlink()
    rep = go(vault, db, JAN)
    assert rep.pended == []
    assert [(p.sha256, p.kind) for p in rep.problems] == [(sha, "missing")]
    assert state(db, sha) == "stored"
    assert "retention.file_missing" in audit_events(db, sha)
    # The derivative stays where it was.
    assert (vault.home / db.execute("select vault_path from derivatives").fetchone()[0]).is_file()


def test_changed_file_is_not_deleted(
    vault: Vault, db: sqlite_utils.Database, world: dict[str, str]
) -> None:
    sha = world["routine"]
    go(vault, db, JAN)
    pend = vault.home / db["recordings"].get(sha)["vault_path"]
    pend.chmod(0o644)
    data = bytearray(pend.read_bytes())
    data[0] ^= 0xFF  # same size, different bytes: only the re-hash catches it
    pend.write_bytes(bytes(data))
    rep = go(vault, db, JAN + dt.timedelta(days=8))
    assert rep.purged == [] and [p.kind for p in rep.problems] == ["changed"]
    assert pend.is_file() and state(db, sha) == "pending_purge"
    assert db["tombstones"].count == 0
    assert "changed" in db["retention_items"].get(sha)["problem"]
    # Missing while pending: reported too, nothing tombstoned.
    pend.unlink()
    rep = go(vault, db, JAN + dt.timedelta(days=9))
    assert [p.kind for p in rep.problems] == ["missing"] and db["tombstones"].count == 0


class Crash(BaseException):
    """Stands for the process dying: no except-Exception handler runs."""


def test_purge_interrupted_half_way_resumes(vault: Vault, db: sqlite_utils.Database) -> None:
    shas = sorted(add_recording(vault, db, recorded_at=OLD) for _ in range(6))
    go(vault, db, JAN)
    seen: list[str] = []

    def crash(step: str, sha: str) -> None:
        if step == "purge.committed":
            seen.append(sha)
            if len(seen) == 3:  # third purge committed, its files not yet removed
                raise Crash

    order = [i.sha256 for i in executor.make_plan(db, S, JAN + dt.timedelta(days=8)).purge]
    with pytest.raises(Crash):
        go(vault, db, JAN + dt.timedelta(days=8), on_step=crash)
    assert db["tombstones"].count == 3
    leftover = vault.home / db["recordings"].get(order[2])["vault_path"]
    assert leftover.is_file()  # committed but not removed yet
    # The crashed run is recorded as interrupted; a new run resumes its work.
    rep = go(vault, db, JAN + dt.timedelta(days=9))
    assert order[2] in rep.recovered and not leftover.exists()
    assert sorted(rep.purged) == sorted(order[3:])
    assert db["tombstones"].count == 6
    assert sorted(r[0] for r in db.execute("select sha256 from tombstones")) == shas
    assert audit_events(db).count("retention.purged") == 6  # nothing purged twice
    assert not [p for p in vault.originals.rglob("*") if p.is_file()]


def test_crash_before_commit_loses_nothing(vault: Vault, db: sqlite_utils.Database) -> None:
    sha = add_recording(vault, db, recorded_at=OLD)
    add_derivative(vault, db, sha)

    def crash(step: str, s: str) -> None:
        if step == "pend.checked":
            raise Crash  # checked, nothing committed

    before = snapshot(vault)
    executor.run(vault, db, S, now=JAN, actor="sup", wall_now=JAN)
    with pytest.raises(Crash):
        approval.approve(
            vault, db, S, [sha], actor="boss", reason="无保存意义", now=JAN, on_step=crash
        )
    assert state(db, sha) == "stored" and snapshot(vault) == before
    # The approval stands; the next run pends what the crash left approved but not pended.
    rep = go(vault, db, JAN + dt.timedelta(hours=1))
    assert rep.pended == [sha]
    # Crash on the purge before its commit: the files stay; the next run purges once.
    with pytest.raises(Crash):
        go(
            vault,
            db,
            JAN + dt.timedelta(days=9),
            on_step=lambda st, s: _raise(st == "purge.verified"),
        )
    assert db["tombstones"].count == 0 and state(db, sha) == "pending_purge"
    assert go(vault, db, JAN + dt.timedelta(days=9)).purged == [sha]


def _raise(cond: bool) -> None:
    if cond:
        raise Crash


def test_now_in_the_past_refused(
    vault: Vault, db: sqlite_utils.Database, world: dict[str, str]
) -> None:
    go(vault, db, JAN)
    with pytest.raises(NowInPastError, match="before the retention run"):
        go(vault, db, JAN - dt.timedelta(days=1))
    # A dry run may look at the past, with a warning.
    rep = go(vault, db, JAN - dt.timedelta(days=1), dry_run=True)
    assert rep.warnings and "before the retention run" in rep.warnings[0]
    # A real run may not look ahead of the station clock (R9: nothing goes before its time).
    with pytest.raises(RetentionError, match="after the station clock"):
        executor.run(vault, db, S, now=JAN + dt.timedelta(days=30), actor="sup", wall_now=JAN)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 3 MB file system (tmpfs) for the vault: a real ENOSPC, not a simulated one."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


@pytest.mark.root
def test_disk_full_reported_and_files_back(small_disk: Path) -> None:
    vault = Vault(small_disk / "home")
    vault.init()
    db = open_catalog(vault.catalog_path)
    try:
        shas = [add_recording(vault, db, recorded_at=OLD) for _ in range(3)]
        before = snapshot(vault)
        ballast = small_disk / "ballast"

        def fill(step: str, sha: str) -> None:
            # The disk fills up between the move and the catalog commit.
            with ballast.open("wb") as f, contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()

        executor.run(vault, db, S, now=JAN, actor="sup", wall_now=JAN)  # proposes (R9)
        out = approval.approve(
            vault,
            db,
            S,
            [],
            actor="boss",
            reason="无保存意义",
            all_open=True,
            now=JAN,
            on_step=fill,
        )
        assert [p["kind"] for p in out.problems] == ["disk-full"]
        assert "disk full" in out.problems[0]["detail"]
        assert out.approved == [] and all(state(db, s) == "stored" for s in shas)
        ballast.unlink()
        assert snapshot(vault) == before  # no file touched, none lost
        # With space again the next run pends what was approved.
        assert sorted(go(vault, db, JAN).pended) == sorted(shas)
    finally:
        db.close()


def test_stop_event_interrupts_and_resumes(vault: Vault, db: sqlite_utils.Database) -> None:
    for _ in range(3):
        add_recording(vault, db, recorded_at=OLD)
    stop = threading.Event()

    def stopper(step: str, sha: str) -> None:
        stop.set()

    assert len(go(vault, db, JAN).pended) == 3
    later = JAN + dt.timedelta(days=9)
    rep = go(vault, db, later, stop=stop, on_step=stopper)
    assert rep.aborted and len(rep.purged) == 1
    assert db.execute("select state from retention_runs order by id desc").fetchone()[0] == (
        "interrupted"
    )
    assert len(go(vault, db, later).purged) == 2


def test_derivative_made_during_grace_goes_too(vault: Vault, db: sqlite_utils.Database) -> None:
    sha = add_recording(vault, db, recorded_at=OLD)
    go(vault, db, JAN)
    # The transcoder finishes a derivative during the grace period, and queues another.
    _, path = add_derivative(vault, db, sha)
    with db.conn:
        db.execute(
            "insert into derivatives (original_sha256, profile, state, created_at)"
            " values (?, 'ffv1-mkv', 'queued', ?)",
            [sha, "2027-01-02T00:00:00.000000Z"],
        )
    rep = go(vault, db, JAN + dt.timedelta(days=8))
    assert rep.purged == [] and rep.problems == [] and state(db, sha) == "pending_purge"
    with db.conn:
        db.execute("update derivatives set state = 'failed' where profile = 'ffv1-mkv'")
    rep = go(vault, db, JAN + dt.timedelta(days=9))
    assert rep.purged == [sha] and not path.exists()
    tomb = db["tombstones"].get(sha)
    assert '"rel": "archival/' in tomb["derivatives"]


def test_one_run_at_a_time_and_dead_runs_marked(vault: Vault, db: sqlite_utils.Database) -> None:
    add_recording(vault, db, recorded_at=OLD)
    # Another process holds the lock (a real second process, not this one).
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            "f = open(sys.argv[1], 'a+')\n"
            "fcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
            str(vault.run / "retention.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(RetentionError, match="another retention run"):
            go(vault, db, JAN)
        assert go(vault, db, JAN, dry_run=True).pend  # a dry run needs no lock
    finally:
        holder.kill()
        holder.wait()
    # A run stopped by an exception (or a signal) records itself as interrupted.
    go(vault, db, JAN)
    with pytest.raises(Crash):
        go(vault, db, JAN + dt.timedelta(days=9), on_step=lambda st, s: _raise(True))
    # One killed outright leaves its row "running"; the next run (holding the lock) marks it.
    with db.conn:
        db.execute(
            "insert into retention_runs (as_of, started_at, actor, state)"
            " values (?, ?, 'sup', 'running')",
            ["2027-01-01T00:00:00.000000Z", "2027-01-01T00:00:00.000000Z"],
        )
    go(vault, db, JAN + dt.timedelta(days=9))
    rows = db.execute("select state, message from retention_runs order by id").fetchall()
    assert [r[0] for r in rows] == ["done", "interrupted", "interrupted", "done"]
    assert "Crash" in rows[1][1] and "ended before finishing" in rows[2][1]
