"""Custody of in-flight work: any number of ingests on one vault at once (DESIGN.md invariant 8,
R7). Real `station` processes, races widened with strace (HARNESS.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
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

pytestmark = pytest.mark.slow


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
