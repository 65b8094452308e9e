"""Custody of in-flight work: any number of ingests on one vault at once (DESIGN.md invariant 8,
R7). Real `station` processes, races widened with strace (HARNESS.md)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlite_utils
from custody_support import (
    SLOW,
    errors_of,
    kill9,
    make_clips,
    need_strace,
    query,
    run_station,
    station,
    stored_files,
    verify,
    wait_for,
)

from station.catalog import open_catalog
from station.config import Settings
from station.errors import IngestIncompleteError, VaultFullError
from station.ingest import IngestContext, ingest_volume
from station.vault import Vault
from station.verify.run import run_verify


@pytest.mark.slow
def test_two_cli_ingests_at_once_keep_every_file(tmp_path: Path) -> None:
    """Invariant 8: the second run's start-up recovery must not reap the first run's staging nor
    close its session; neither run may unlink an original the other committed (R7)."""
    need_strace()
    home = tmp_path / "home"
    clips = make_clips(tmp_path / "clips", 20)
    assert run_station(home, "init")[0] == 0
    first = station(home, "ingest", str(tmp_path / "clips"), "--json", strace=SLOW)
    wait_for(
        "the first run to stage a copy",
        lambda: (
            any((home / "staging").rglob("*.part"))
            and bool(query(home, "select 1 from sessions where state = 'running'"))
        ),
        proc=first,
    )
    second = station(home, "ingest", str(tmp_path / "clips"), "--json", strace=SLOW)
    _, err2 = second.communicate(timeout=300)
    _, err1 = first.communicate(timeout=300)
    assert "Traceback" not in err1 + err2, err1 + err2
    assert (first.returncode, second.returncode) == (0, 0), err1 + err2
    states = [r[0] for r in query(home, "select state from sessions order by id")]
    assert states == ["done", "done"]
    assert not query(home, "select 1 from audit_log where event = 'session.interrupted'")
    # each file stored once, each catalogued, each whole
    assert len(stored_files(home)) == 20
    assert {r[0] for r in query(home, "select sha256 from recordings")} == set(clips.values())
    report = verify(home)
    assert errors_of(report) == [], report["counts"]
    assert list((home / "staging").rglob("*.part")) == []


def _flip_byte(path: Path, at: int = 100) -> None:
    """Damage a stored original the way a bad disk or a person would: one byte changed."""
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ 0xFF]))
    path.chmod(0o444)


def test_rotten_vault_copy_is_repaired_never_trusted(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, volume: Path
) -> None:
    """DESIGN.md invariant 2: a file already held counts as verified only once the vault's copy
    was re-hashed in this run; a rotten copy is replaced by the verified one, never the other
    way round, and a person sees it (R7)."""
    ingest_volume(vault, db, settings, volume, IngestContext(kind="cli"), actor="t")
    sha, rel = db.execute("select sha256, vault_path from recordings limit 1").fetchone()
    stored = vault.home / rel
    _flip_byte(stored)
    before = run_verify(vault, db, settings)
    assert before.counts().get("file.changed") == 1

    again = ingest_volume(vault, db, settings, volume, IngestContext(kind="cli"), actor="t")
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha  # the good bytes are back
    assert again.count("held") == 3 and again.count("new") == 0
    fixed = [f for f in again.files if f.sha256 == sha]
    assert len(fixed) == 1 and fixed[0].repaired and fixed[0].verified
    assert len(again.verified_sources()) == 3
    assert stat.S_IMODE(stored.stat().st_mode) == 0o444
    kept = list((vault.home / "quarantine").iterdir())
    assert len(kept) == 1 and hashlib.sha256(kept[0].read_bytes()).hexdigest() != sha
    events = [r[0] for r in db.execute("select event from audit_log where subject = ?", [sha])]
    assert "vault.repaired" in events
    assert [r[0] for r in db.execute("select code from alerts")] == ["vault_repaired"]
    after = run_verify(vault, db, settings)
    assert after.ok and after.counts().get("file.changed") is None
    assert after.counts()["vault.repaired"] == 1
    assert list(vault.staging.iterdir()) == []


def _staged(home: Path) -> bool:
    return any((home / "staging").rglob("*.part"))


def _linked_uncommitted(home: Path) -> bool:
    return bool(stored_files(home)) and not query(home, "select 1 from recordings")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("step", "reached"),
    [("copying", _staged), ("named, not committed", _linked_uncommitted)],
)
def test_kill9_during_ingest_then_ingest_again(
    tmp_path: Path, step: str, reached: Callable[[Path], bool]
) -> None:
    """kill -9 at each step of an ingest (strace holds each rename and flush, HARNESS.md); the
    next run reaps what the dead owner left, closes its session as interrupted and stores every
    file once: `station verify` is clean (invariant 8, R7)."""
    need_strace()
    home = tmp_path / "home"
    clips = make_clips(tmp_path / "clips", 8)
    assert run_station(home, "init")[0] == 0
    p = station(home, "ingest", str(tmp_path / "clips"), "--json", strace=SLOW)
    try:
        wait_for(step, lambda: reached(home), proc=p)
    finally:
        kill9(p)
    # the next start-up (any `station ingest`) reaps what the dead owner left: staging, and
    # files it named in the vault but never committed — verify is clean before any re-ingest
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_station(home, "ingest", str(empty), "--json")[0] == 0
    assert list((home / "staging").iterdir()) == []
    report = verify(home)
    assert errors_of(report) == [], report["counts"]
    code, _out, err = run_station(home, "ingest", str(tmp_path / "clips"), "--json")
    assert code == 0 and "Traceback" not in err, err
    states = [r[0] for r in query(home, "select state from sessions order by id")]
    assert states == ["interrupted", "done", "done"]
    assert list((home / "staging").iterdir()) == []
    assert {r[0] for r in query(home, "select sha256 from recordings")} == set(clips.values())
    assert len(stored_files(home)) == 8
    report = verify(home)
    assert errors_of(report) == [], report["counts"]


@pytest.mark.root
def test_sparse_50gb_file_refused_before_a_byte_is_copied(
    small_vault: Vault, settings: Settings, tmp_path: Path
) -> None:
    """A 50 GB sparse file on a 24 MiB vault: refused at once by the free-space check (not
    copied densely until the disk is full); the files that fit are stored and verified."""
    db = open_catalog(small_vault.catalog_path)
    vol = tmp_path / "v"
    vol.mkdir()
    (vol / "A.MP4").write_bytes(os.urandom(100_000))
    with open(vol / "B.MP4", "wb") as f:
        f.truncate(50 * 1000**3)
    (vol / "C.MP4").write_bytes(os.urandom(100_000))
    with pytest.raises(VaultFullError) as e:
        ingest_volume(small_vault, db, settings, vol, IngestContext(kind="cli"), actor="t")
    rep = e.value.report  # type: ignore[attr-defined]
    assert rep.bytes_read == 200_000  # not one byte of the sparse file was read
    by_name = {f.rel: f for f in rep.files}
    assert by_name["B.MP4"].outcome == "failed" and "free space" in (by_name["B.MP4"].error or "")
    assert {by_name["A.MP4"].outcome, by_name["C.MP4"].outcome} == {"new"}
    assert len(rep.verified_sources()) == 2
    assert list(small_vault.staging.iterdir()) == []
    state = db.execute("select state from sessions").fetchone()[0]
    assert state == "failed"
    db.close()


def _child_of(pid: int) -> int:
    """The station process strace started (its only child)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0])


@pytest.mark.slow
def test_sigterm_during_ingest_cleans_staging_and_ends_the_session(tmp_path: Path) -> None:
    """SIGTERM mid-copy: this run's partial copies go, what it verified is committed, and its
    session ends as interrupted — not left running until the next start-up."""
    need_strace()
    home = tmp_path / "home"
    make_clips(tmp_path / "clips", 30, size=100_000)
    assert run_station(home, "init")[0] == 0
    slow_copy = [*SLOW, "-e", "inject=write:delay_exit=50000"]  # every chunk written slowly
    p = station(home, "ingest", str(tmp_path / "clips"), "--json", strace=slow_copy)
    wait_for("a staged copy", lambda: _staged(home), proc=p)
    wait_for("the station under strace", lambda: bool(Path(f"/proc/{p.pid}/task").exists()))
    os.kill(_child_of(p.pid), signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert "Traceback" not in err, err
    assert p.returncode == IngestIncompleteError.exit_code == 18, (out, err)
    assert json.loads(out)["aborted"] == "stopped"
    assert query(home, "select state from sessions") == [("interrupted",)]
    assert list((home / "staging").iterdir()) == []
    report = verify(home)
    assert errors_of(report) == [], report["counts"]


def test_recovery_touches_only_what_a_dead_owner_left(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    """Invariant 8 at the smallest scale: a live owner's staging folder and session survive any
    number of recoveries; once its lock is gone (the process died: here, the descriptor closed
    without the owner's own clean-up) both are reaped."""
    from station.custody import Owner, owner_alive
    from station.ingest import recover_at_startup

    owner = Owner.acquire(vault, "cli")
    part = owner.part()
    part.write_bytes(b"half a copy")
    with db.conn:
        db.execute(
            "insert into sessions (kind, started_at, state, owner)"
            " values ('cli', 'x', 'running', ?)",
            [owner.id],
        )
    for _ in range(2):
        assert recover_at_startup(vault, db) == {"staging_reaped": 0, "sessions_interrupted": 0}
    assert part.exists() and owner_alive(vault, owner.id)
    assert db.execute("select state from sessions").fetchone()[0] == "running"
    os.close(owner._fd)  # type: ignore[arg-type]  # dies without cleaning up
    owner._fd = None
    assert not owner_alive(vault, owner.id)
    assert recover_at_startup(vault, db) == {"staging_reaped": 1, "sessions_interrupted": 1}
    assert not part.exists() and list(vault.staging.iterdir()) == []
    assert db.execute("select state from sessions").fetchone()[0] == "interrupted"
