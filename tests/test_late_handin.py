"""R1/R2/R21: how late footage was handed in, measured from the end of the recording — its start
(from the recorder's file name) plus its probed duration — never from a file's mtime."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlite_utils
from click.testing import CliRunner

from station.cli import main
from station.config import Settings
from station.ingest.timing import end_and_delay, probe_updates
from station.sim.volume import make_volume
from station.transcode.service import run_once
from station.vault import Vault

SH = ZoneInfo("Asia/Shanghai")


def cli(vault: Vault, *args: str) -> str:
    res = CliRunner().invoke(main, ["--home", str(vault.home), "--user", "科员", *args])
    assert res.exit_code == 0, res.output
    return res.stdout


def compliance(vault: Vault, rule: str) -> dict:  # type: ignore[type-arg]
    vault.settings_path.write_text(f'[reports]\nlate_rule = "{rule}"\n', encoding="utf-8")
    return json.loads(cli(vault, "report", "compliance", "--json"))


def late_shas(rep: dict) -> set[str]:  # type: ignore[type-arg]
    (sec,) = [s for s in rep["sections"] if s["key"] == "late"]
    return {r["sha256"] for r in sec["rows"]}


def _old_clip_with_fresh_mtime(tmp_path: Path, months_back: int) -> Path:
    """A real clip named as the recorder named it ``months_back`` months ago, copied through
    a card reader: its mtime is now."""
    start = (dt.datetime.now(SH) - dt.timedelta(days=30 * months_back)).replace(tzinfo=None)
    root = tmp_path / "card"
    (clip,) = make_volume(
        root,
        device="DSJ0009",
        officer="3301020001",
        clips=1,
        seconds=2.0,
        size="160x120",
        start=start,
    )
    os.utime(clip)  # fresh mtime, as after a copy
    return root


def test_clip_named_seven_months_back_is_late_in_both_rules(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    root = _old_clip_with_fresh_mtime(tmp_path, 7)
    cli(vault, "init")
    cli(vault, "ingest", str(root), "--json")
    (rec,) = db.query("select * from recordings")
    assert rec["time_source"] == "filename"
    end = dt.datetime.fromisoformat(rec["end_at"])
    assert (dt.datetime.now(dt.UTC) - end).days >= 200  # not the fresh mtime
    ingested = dt.datetime.fromisoformat(rec["ingested_at"])
    assert rec["ingest_delay_s"] == pytest.approx((ingested - end).total_seconds(), abs=0.01)
    sha = rec["sha256"]
    # R1 (hours) and R2 (working days) agree: late under each rule, and under both.
    for rule in ("hours", "working-days", "either"):
        assert sha in late_shas(compliance(vault, rule)), rule

    # The probe (the archival transcode) adds the real duration: end = start + 2 s, and the
    # delay is recomputed from the same end.
    run_once(vault, db, Settings())
    (rec,) = db.query("select * from recordings")
    start = dt.datetime.fromisoformat(rec["recorded_at"])
    end = dt.datetime.fromisoformat(rec["end_at"])
    assert (end - start).total_seconds() == pytest.approx(2.0, abs=0.1)
    assert rec["ingest_delay_s"] == pytest.approx((ingested - end).total_seconds(), abs=0.01)
    assert sha in late_shas(compliance(vault, "either"))
    # station verify: the row changed through the station, with a sealed audit entry (R7).
    res = CliRunner().invoke(main, ["--home", str(vault.home), "verify", "--json"])
    assert res.exit_code == 0, res.output


def test_remote_duty_moves_the_deadline_to_24_hours_after_return(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    """R21: footage from remote duty is due 24 h after the officer returned."""
    root = tmp_path / "card"
    start = (dt.datetime.now(SH) - dt.timedelta(days=6)).replace(tzinfo=None)
    make_volume(
        root,
        device="DSJ0009",
        officer="3301020001",
        clips=1,
        seconds=1.0,
        size="160x120",
        start=start,
    )
    cli(vault, "init")
    cli(vault, "ingest", str(root), "--json")
    (sha,) = [r[0] for r in db.execute("select sha256 from recordings")]
    assert sha in late_shas(compliance(vault, "either"))  # 6 days: late under R1 and R2
    back = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=20)).isoformat()
    res = CliRunner().invoke(
        main,
        ["--home", str(vault.home), "duty", "add", "--officer", "3301020001", "--until", back],
    )
    assert res.exit_code != 0 and "--note" in res.output  # a note is required
    cli(
        vault,
        "duty",
        "add",
        "--officer",
        "3301020001",
        "--until",
        back,
        "--kind",
        "remote",
        "--note",
        "赴山区乡镇连续执勤五天",
    )
    for rule in ("hours", "working-days", "either"):
        assert sha not in late_shas(compliance(vault, rule)), rule
    # Returned 30 hours ago instead: more than 24 h after return, late again.
    long_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=30)).isoformat()
    with db.conn:
        db.execute("update duty_notes set until_at = ?", [long_ago.replace("+00:00", "Z")])
    assert sha in late_shas(compliance(vault, "hours"))
    assert "赴山区乡镇" in cli(vault, "duty", "list")


def test_probe_updates_table() -> None:
    t0 = dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.UTC)
    ing = "2026-03-02T02:00:10.000000Z"
    row = {
        "recorded_at": "2026-03-01T02:00:00.000000Z",
        "time_source": "filename",
        "ingested_at": ing,
        "drift_s": 0.0,
    }
    up = probe_updates(row, 10.0, None)
    assert up["end_at"] == "2026-03-01T02:00:10.000000Z" and up["ingest_delay_s"] == 86400.0
    # No name time: the container's creation time (less the drift) gives the start.
    weak = {**row, "time_source": "mtime", "drift_s": 5.0}
    up = probe_updates(weak, 10.0, t0 + dt.timedelta(hours=1))
    assert up["time_source"] == "container" and up["recorded_at"] == "2026-03-01T02:59:55.000000Z"
    # A name time is never replaced by the container's.
    assert "recorded_at" not in probe_updates(row, 10.0, t0 + dt.timedelta(hours=1))
    assert end_and_delay(t0, None, t0 + dt.timedelta(hours=1)) == (
        "2026-03-01T02:00:00.000000Z",
        3600.0,
    )
