"""R4: device states with dates, and damaged devices not handed in for repair within 24 h in
the device report. Real commands on a real catalog."""

from __future__ import annotations

import datetime as dt
import json

import sqlite_utils
from click.testing import CliRunner

from station.cli import main
from station.usb_dock import registry
from station.vault import Vault


def run(vault: Vault, *args: str) -> str:
    res = CliRunner().invoke(main, ["--home", str(vault.home), "--user", "信息中心", *args])
    assert res.exit_code == 0, res.output
    return res.stdout


def ago(hours: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)).isoformat()


def test_damaged_devices_not_handed_in_within_24_hours(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    for dev in ("ZFY0001", "ZFY0002", "ZFY0003", "ZFY0004"):
        registry.enrol(db, dev, officer_id="3301020001", unit_id="110101000001", actor="admin")
    # ZFY0001: damaged 30 h ago, still not handed in — late.
    run(vault, "devices", "damaged", "ZFY0001", "--at", ago(30), "--note", "无法开机")
    # ZFY0002: damaged 40 h ago, handed in 10 h later — in time.
    run(vault, "devices", "damaged", "ZFY0002", "--at", ago(40), "--note", "镜头进水")
    run(vault, "devices", "state", "ZFY0002", "in-repair", "--at", ago(30))
    # ZFY0003: damaged 60 h ago, handed in after 36 h — late.
    run(vault, "devices", "damaged", "ZFY0003", "--at", ago(60), "--note", "电池鼓包")
    run(vault, "devices", "state", "ZFY0003", "in-repair", "--at", ago(24))
    # ZFY0004: damaged 2 h ago — still within the 24 hours.
    run(vault, "devices", "damaged", "ZFY0004", "--at", ago(2), "--note", "按键失灵")
    rep = json.loads(run(vault, "report", "devices", "--json"))
    (late,) = [s for s in rep["sections"] if s["key"] == "late_repairs"]
    rows = {r["device"]: r for r in late["rows"]}
    assert set(rows) == {"ZFY0001", "ZFY0003"}
    assert rows["ZFY0001"]["handed_in_at"] is None and "未送修" in rows["ZFY0001"]["status"]
    assert rows["ZFY0003"]["hours"] == 36.0
    (devs,) = [s for s in rep["sections"] if s["key"] == "devices"]
    states = {r["device"]: (r["state"], r["health"]) for r in devs["rows"]}
    assert states["ZFY0002"][0].startswith("送修") and "送修中" in states["ZFY0002"][1]
    assert "24 小时" in states["ZFY0001"][1]
    listed = json.loads(run(vault, "devices", "list", "--json"))
    assert {d["device_id"]: d["service_state"] for d in listed}["ZFY0003"] == "in_repair"
    events = [r[0] for r in db.execute("select event from audit_log where subject = 'ZFY0003'")]
    assert events[-2:] == ["device.damaged", "device.in_repair"]


def test_inspections_are_recorded_and_overdue_ones_named(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    """R4: devices are inspected from time to time. An inspection is recorded with its result;
    a fault found is damage (its 24 hours run); a device enrolled long ago and never inspected
    for 90 days is named in the device report."""
    for dev in ("ZFY0011", "ZFY0012", "ZFY0013"):
        registry.enrol(db, dev, officer_id="3301020001", unit_id="110101000001", actor="admin")
    long_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=200)).strftime("%Y-%m-%dT%H:%M:%SZ")
    db.execute("update devices set enrolled_at = ?", [long_ago])
    db.conn.commit()
    out = run(
        vault, "devices", "inspect", "ZFY0011", "--result", "ok", "--note", "外观、录像、时钟"
    )
    assert "已记录检查" in out and "正常" in out
    fault = json.loads(
        run(vault, "devices", "inspect", "ZFY0012", "--result", "fault", "--note", "电池鼓包",
            "--at", ago(30), "--json")
    )  # fmt: skip
    assert fault["result"] == "fault" and fault["event"] == "damaged"
    rep = json.loads(run(vault, "report", "devices", "--json"))
    (devs,) = [s for s in rep["sections"] if s["key"] == "devices"]
    rows = {r["device"]: r for r in devs["rows"]}
    assert rows["ZFY0011"]["inspected"] and "未检查" not in rows["ZFY0011"]["health"]
    assert "超过 90 天未检查" in rows["ZFY0013"]["health"] and rows["ZFY0013"]["inspected"] is None
    (late,) = [s for s in rep["sections"] if s["key"] == "late_repairs"]
    assert [r["device"] for r in late["rows"]] == ["ZFY0012"]  # the fault found 30 h ago
    events = [r[0] for r in db.execute("select event from audit_log where subject = 'ZFY0012'")]
    assert events[-2:] == ["device.inspected", "device.damaged"]
