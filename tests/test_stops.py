"""R18: an officer writes why a recorder was stopped (002 附件1 第十六条); the head approves;
the note is shown beside the officer's footage and in the compliance report."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils
from click.testing import CliRunner

from station.access.users import create_user
from station.catalog import write_txn
from station.cli import main
from station.vault import Vault

SH = ZoneInfo("Asia/Shanghai")


def run(vault: Vault, user: str, password: str, *args: str) -> tuple[int, str]:
    env = {"STATION_USER": user, "STATION_PASSWORD": password}
    res = CliRunner().invoke(main, ["--home", str(vault.home), *args], env=env)
    return res.exit_code, res.output


def js(vault: Vault, user: str, password: str, *args: str) -> Any:
    code, out = run(vault, user, password, *args, "--json")
    assert code == 0, out
    return json.loads(out)


def test_stop_note_written_approved_and_shown(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    volume = tmp_path / "vol"
    # The footage, the stop and the resumption on one Beijing date, all in the past (a stop note
    # is shown beside the officer's footage of that day): before 04:00 they go to yesterday.
    now = dt.datetime.now(SH)
    if now.hour < 4:
        now = now.replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(minutes=1)
    start = (now - dt.timedelta(hours=3)).replace(tzinfo=None, microsecond=0)
    code, out = run(vault, "x", "x", "sim", "volume", str(volume), "--device", "DSJ0001",
                    "--officer", "3301020001", "--clips", "1", "--seconds", "1",
                    "--size", "160x120", "--start", start.isoformat())  # fmt: skip
    assert code == 0, out
    (sha,) = [f["sha256"] for f in js(vault, "x", "x", "ingest", str(volume))["files_detail"]]
    with write_txn(db):
        create_user(db, "admin1", "admin", "admin-pass-1", actor="setup")
        create_user(db, "3301020001", "officer", "officer-pass-1", actor="admin1")
        create_user(db, "head", "supervisor", "head-pass-1", actor="admin1")
    stopped = (now - dt.timedelta(hours=2)).isoformat()
    resumed = (now - dt.timedelta(hours=1, minutes=40)).isoformat()
    # A situation outside 第十六条 is refused, with the four in the hint.
    code, out = run(vault, "3301020001", "officer-pass-1", "stops", "add",
                    "--officer", "3301020001", "--stopped", stopped,
                    "--situation", "7", "--reason", "x")  # fmt: skip
    assert code != 0 and "第十六条" in out and "涉及个人隐私" in out
    note = js(vault, "3301020001", "officer-pass-1", "stops", "add", "--officer", "3301020001",
              "--device", "DSJ0001", "--stopped", stopped, "--resumed", resumed,
              "--situation", "1", "--reason", "进入当事人住宅内部，涉及个人隐私")  # fmt: skip
    assert note["state"] == "submitted"
    assert note["situation_text"].startswith("第十六条第（一）项：涉及个人隐私及商业秘密的")
    # The officer cannot approve their own note; the head can, once.
    code, out = run(vault, "3301020001", "officer-pass-1", "stops", "approve", str(note["id"]))
    assert code == 10
    done = js(vault, "head", "head-pass-1", "stops", "approve", str(note["id"]), "--note", "属实")
    assert done["state"] == "approved" and done["decided_by"] == "head"
    code, out = run(vault, "head", "head-pass-1", "stops", "approve", str(note["id"]))
    assert code != 0 and "decided already" in out
    # Beside the officer's footage of that day …
    shown = js(vault, "x", "x", "recordings", "show", sha)
    assert [n["id"] for n in shown["stop_notes"]] == [note["id"]]
    code, text = run(vault, "x", "x", "stops", "show", str(note["id"]))
    assert code == 0 and "涉及个人隐私" in text and "head" in text
    # … and in the compliance report.
    rep = js(vault, "x", "x", "report", "compliance")
    (sec,) = [s for s in rep["sections"] if s["key"] == "stops"]
    assert [r["id"] for r in sec["rows"]] == [note["id"]]
    assert sec["rows"][0]["state"].startswith("已审核同意")
    events = [r[0] for r in db.execute("select event from audit_log where subject like 'stop:%'")]
    assert events == ["stop.recorded", "stop.approved"]
