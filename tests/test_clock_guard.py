"""Destruction never runs by a clock that cannot be trusted (R9; DESIGN.md invariant 9), and a
clock that was wrong and is corrected never leaves retention stuck. The wrong clocks are real:
Debian's ``faketime`` moves the station process's wall clock; boot time (``/proc/uptime``) and
the boot id stay true."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlite_utils

from station import clock
from station.cases import tags
from station.catalog import open_catalog
from station.config import Settings
from station.retention import approval, executor
from station.vault import Vault
from station.verify.run import run_verify
from tests.integrity_support import store_recording

R = clock.Reading


@pytest.mark.parametrize(
    ("anchor", "now", "newest", "sync", "state"),
    [
        (None, R(1000, 10, "b1"), None, None, "trusted"),  # nothing to compare with
        (None, R(1000, 10, "b1"), 2000.0, None, "behind"),  # before the newest audit entry
        (R(1000, 10, "b1"), R(1100, 110, "b1"), None, None, "trusted"),  # as boot time went
        (R(1000, 10, "b1"), R(1100 + 30, 110, "b1"), None, None, "trusted"),  # slew
        (R(1000, 10, "b1"), R(1000 + 373 * 86400, 110, "b1"), None, None, "jumped"),
        (R(1000, 10, "b1"), R(1000 + 373 * 86400, 110, "b1"), None, True, "trusted"),  # NTP
        (R(10**9, 10, "b1"), R(10**9 - 86400, 110, "b1"), None, None, "behind"),
        (R(10**9, 10, "b1"), R(10**9 - 86400, 5, "b2"), None, None, "behind"),  # reboot
        (R(10**9, 10, "b1"), R(10**9 + 86400, 5, "b2"), None, None, "trusted"),  # reboot, later
        (R(1000, 10, "b1"), R(1100, 110, "b1"), None, False, "unsynchronised"),
        # a wrong entry dated far ahead does not count once the anchor says the clock is right
        (R(1000, 10, "b1"), R(1100, 110, "b1"), 10.0**10, None, "trusted"),
    ],
)
def test_judge(
    anchor: clock.Reading | None,
    now: clock.Reading,
    newest: float | None,
    sync: bool | None,
    state: str,
) -> None:
    assert clock.judge(anchor, now, newest_audit=newest, synchronised=sync).state == state


def test_jump_tolerance_grows_with_elapsed_time() -> None:
    day = 86400.0
    a = R(0, 0, "b")
    assert clock.judge(a, R(day + 100, day, "b")).state == "trusted"  # 60 s + 86 s
    assert clock.judge(a, R(day + 200, day, "b")).state == "jumped"


def test_kernel_can_be_asked() -> None:
    assert clock.kernel_unsynchronised() in (True, False)


FAKETIME = shutil.which("faketime")
needs_faketime = pytest.mark.skipif(FAKETIME is None, reason="Debian faketime not installed")


def station(vault: Vault, *args: str, fake: str | None = None, **env: str) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "station", "--home", str(vault.home), *args]
    if fake is not None:
        assert FAKETIME is not None
        cmd = [FAKETIME, "-f", fake, *cmd]
    res = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, **env}, check=False
    )
    if "--json" in args and res.returncode == 0:
        return 0, res.stdout  # a warning on stderr (e.g. low disk space) is not the document
    return res.returncode, res.stdout + res.stderr


def states(vault: Vault) -> list[str]:
    db = sqlite_utils.Database(str(vault.catalog_path))
    try:
        return [r[0] for r in db.execute("select state from recordings order by sha256")]
    finally:
        db.close()


def events(vault: Vault, name: str) -> int:
    db = sqlite_utils.Database(str(vault.catalog_path))
    try:
        return int(
            db.execute("select count(*) from audit_log where event = ?", [name]).fetchone()[0]
        )
    finally:
        db.close()


def month_old(vault: Vault, db: sqlite_utils.Database) -> str:
    """A recording of a month ago (routine: kept six months), stored the way ingest does."""
    rec = store_recording(vault, db, os.urandom(500))
    recorded = (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    from station.catalog import write_txn

    with write_txn(db):
        db.execute(
            "update recordings set recorded_at = ?, end_at = ? where sha256 = ?",
            [recorded, recorded, rec["sha256"]],
        )
    tags.tag(db, [rec["sha256"]], category="patrol", actor="li")  # R9: known routine
    return str(rec["sha256"])


@needs_faketime
def test_clock_a_year_ahead_purges_nothing_then_recovers(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    month_old(vault, db)
    db.close()
    # a year ahead: one-month-old footage would expire; the run only proposes
    code, out = station(vault, "--service", "retention", "run", "--json", fake="+373d")
    assert code == 13, out
    report = json.loads(out[out.index("{") : out.rindex("}") + 1])
    assert report["clock"]["state"] == "jumped" and report["dry_run"] is True
    assert len(report["pend"]) == 1  # proposed …
    assert states(vault) == ["stored"]  # … not done
    assert events(vault, "retention.pending") == 0
    assert events(vault, "alert.raised") == 1
    code, out = station(vault, "clock", "status", "--json", fake="+373d")
    assert json.loads(out)["state"] == "jumped"
    # back on the true clock: not stuck
    code, out = station(vault, "--service", "retention", "run")
    assert code == 0, out
    code, out = station(vault, "clock", "status", "--json")
    assert json.loads(out)["state"] == "trusted"
    # and verify says that the audit times went backwards once
    fresh = open_catalog(vault.catalog_path)
    try:
        codes = {f.code for f in run_verify(vault, fresh, Settings()).findings}
    finally:
        fresh.close()
    assert "audit.time_backwards" in codes


@needs_faketime
def test_clock_set_back_is_refused(vault: Vault, db: sqlite_utils.Database) -> None:
    month_old(vault, db)
    db.close()
    code, out = station(vault, "--service", "retention", "run", fake="-40d")
    assert code == 13 and "behind" in out, out
    assert events(vault, "retention.run_started") == 0


def test_a_run_dated_by_a_wrong_clock_does_not_block_later_runs(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    """A run made (before this guard existed, or by a clock nobody could judge) a year ahead:
    on the true clock the next run goes on, says so in the log, and brings back what the wrong
    date had put into pending-purge."""
    sha = month_old(vault, db)
    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(days=373)
    executor.run(vault, db, Settings(), now=ahead, actor="station", wall_now=ahead)
    approval.approve(vault, db, Settings(), [sha], actor="boss", reason="无保存意义", now=ahead)
    assert states(vault) == ["pending_purge"]
    db.close()
    code, out = station(vault, "--service", "retention", "run")
    assert code == 0, out
    assert events(vault, "retention.clock_corrected") == 1
    assert states(vault) == ["stored"], sha
    # an explicit --now before the earlier run is still refused
    code, out = station(vault, "--service", "retention", "run", "--now", "2026-12-01")
    assert code == 13


@needs_faketime
def test_anchor_made_by_a_wrong_clock_needs_a_supervisor(tmp_path: Path) -> None:
    """The very first audited commit was made by a clock a year ahead: the true clock now looks
    'behind' and nothing in the host can say otherwise — a supervisor checks the time and says
    so (audited); then retention runs."""
    vault = Vault(tmp_path / "home")
    env = {"STATION_USER": "admin1", "STATION_NEW_PASSWORD": "admin-pass-1"}
    assert station(vault, "init", fake="+373d", **env)[0] == 0
    assert station(vault, "users", "add", "admin1", "--role", "admin", fake="+373d", **env)[0] == 0
    code, out = station(vault, "--service", "retention", "run")
    assert code == 13 and "behind" in out, out
    code, out = station(
        vault,
        "clock",
        "trust",
        "--note",
        "已与北京时间核对",
        STATION_USER="ghost",
        STATION_PASSWORD="x1234567",
    )
    assert code == 10
    code, out = station(
        vault,
        "clock",
        "trust",
        "--note",
        "已与北京时间核对 / checked",
        STATION_USER="admin1",
        STATION_PASSWORD="admin-pass-1",
    )
    assert code == 0, out
    assert events(vault, "clock.trusted") == 1
    code, out = station(vault, "--service", "retention", "run")
    assert code == 0, out


def test_status_shows_the_clock(vault: Vault, db: sqlite_utils.Database) -> None:
    from station.status import StatusBoard

    StatusBoard(vault.run / "status.json").set_state("running")
    db.close()
    code, out = station(vault, "status", "--json")
    assert code == 0, out
    assert json.loads(out)["clock"]["state"] == "trusted"
    code, out = station(vault, "status")
    assert "时钟 / clock: 可信 / trusted" in out
