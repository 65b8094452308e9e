"""Custody of in-flight work: any number of ingests on one vault at once (DESIGN.md invariant 8,
R7). Real `station` processes, races widened with strace (HARNESS.md)."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
import sqlite_utils
from custody_support import (
    SLOW,
    errors_of,
    make_clips,
    need_strace,
    query,
    run_station,
    station,
    stored_files,
    verify,
    wait_for,
)

from station.config import Settings
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
