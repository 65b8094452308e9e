"""Device health report from real sessions rows (R3, R4)."""

from __future__ import annotations

import datetime as dt
import json

import sqlite_utils

from station.config import Settings
from station.reports.devices_report import build_devices

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def _session(db: sqlite_utils.Database, device: str, days_ago: float, **kw: object) -> None:
    t = (NOW - dt.timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    row = {"kind": "dock", "device_id": device, "started_at": t, "state": "done", **kw}
    if "flags" in row:
        row["flags"] = json.dumps(row["flags"])
    with db.conn:
        db["sessions"].insert(row)


def test_device_health(db: sqlite_utils.Database) -> None:
    with db.conn:
        db["devices"].insert_all(
            [
                {"device_id": "GOOD001", "model": "DSJ-X1", "enrolled": 1},
                {"device_id": "DRIFT01", "model": "DSJ-X1", "enrolled": 1},
                {"device_id": "FAIL001", "model": "DSJ-X2", "enrolled": 1},
                {"device_id": "IDLE001", "model": "DSJ-X2", "enrolled": 1},
            ]
        )
    for i in range(5):
        _session(db, "GOOD001", i, battery_pct=80 - i, drift_s=0.5)
        _session(
            db,
            "DRIFT01",
            i,
            battery_pct=15,
            drift_s=10.0 + i,
            flags=[{"code": "drift", "message": "clock off"}],
        )
    _session(db, "FAIL001", 1, state="failed", battery_pct=60)
    _session(db, "FAIL001", 2, state="interrupted", battery_pct=61)
    _session(db, "STRANGE", 1, state="refused")  # never enrolled
    _session(db, "GOOD001", 200, battery_pct=1, drift_s=999.0)  # outside the 90-day window
    rep = build_devices(db, Settings(), now=NOW, days=90)
    rows = {r["device"]: r for r in rep.section("devices").rows}
    assert rows["GOOD001"]["health"] == "正常 / OK"
    assert (rows["GOOD001"]["sessions"], rows["GOOD001"]["battery"]) == (5, 80)
    assert rows["GOOD001"]["max_drift"] == 0.5
    d = rows["DRIFT01"]
    assert "repeated drift" in d["health"] and "low battery history" in d["health"]
    assert (d["drift"], d["max_drift"], d["drift_over"], d["low_battery"]) == (10.0, 14.0, 5, 5)
    assert d["flags"] == "drift×5"
    assert "failing reads" in rows["FAIL001"]["health"] and rows["FAIL001"]["failed"] == 2
    assert "unknown device" in rows["STRANGE"]["health"]
    assert rows["IDLE001"]["sessions"] == 0 and rows["IDLE001"]["last_seen"] is None
    assert dict(rep.summary)["需关注 / need attention (R4)"] == 3
    # Drift history as a small chart per device (oldest first).
    assert rep.section("devices").sparks["DRIFT01"].values == [14.0, 13.0, 12.0, 11.0, 10.0]
    # Healthy devices listed after those needing attention.
    assert list(rows)[-2:] == ["GOOD001", "IDLE001"]
