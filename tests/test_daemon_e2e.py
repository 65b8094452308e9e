"""The dock daemon as a real subprocess under umockdev-wrapper: three simulated recorders docked
at once (healthy; 40 s drift + 9 % battery; unenrolled), real ptys, real exFAT loop devices, real
udev events, sd_notify on a real socket (R3, R4; DESIGN.md invariants 2, 4, 5, 7)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from dock_support import (
    UmockdevStation,
    exfat_loop,
    files_of,
    make_recorder_volume,
    read_loop,
    sim_recorder,
)

from station.catalog import open_catalog, write_txn
from station.recorder.simconfig import SimConfig
from station.timeutil import local_naive_to_utc, parse_iso
from station.usb_dock import registry
from station.vault import Vault

pytestmark = [
    pytest.mark.root,  # loop devices and mounts
    pytest.mark.slow,
]

SECRET_A = bytes(range(32))
SECRET_B = bytes(range(1, 33))


@pytest.fixture(scope="module")
def volumes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("e2e")
    return {
        "ZFY0001": make_recorder_volume(base / "a", "ZFY0001", "100001", clips=3),
        "ZFY0002": make_recorder_volume(base / "b", "ZFY0002", "100002", clips=3),
        "ZFY0003": make_recorder_volume(base / "c", "ZFY0003", "100003", clips=2),
    }


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Vault]:
    vault = Vault(tmp_path / "home")
    vault.init()
    db = open_catalog(vault.catalog_path)
    registry.enrol(
        db,
        "ZFY0001",
        officer_id="100001",
        unit_id="110101000001",
        actor="admin",
        officer_name="张三",
        secret=SECRET_A,
    )
    registry.enrol(
        db,
        "ZFY0002",
        officer_id="100002",
        unit_id="110101000001",
        actor="admin",
        officer_name="李四",
        secret=SECRET_B,
    )
    # A session a crash left "running": resumed/closed at start-up.
    with write_txn(db):
        db.execute("insert into sessions (kind, started_at, state) values ('dock', 'x', 'running')")
    db.close()
    yield vault


def all_safe(n: int) -> Any:
    def pred(st: dict[str, Any]) -> bool:
        slots = st.get("slots", [])
        return len(slots) == n and all(s.get("safe_to_undock") for s in slots)

    return pred


def test_three_recorders_docked_at_once(
    home: Vault, tmp_path: Path, volumes: dict[str, Path]
) -> None:
    with ExitStack() as stack:
        loops = {d: stack.enter_context(exfat_loop(tmp_path, v)) for d, v in volumes.items()}
        sims = {}
        for dev, cfg in {
            "ZFY0001": SimConfig(serial="ZFY0001", officer_id="100001", secret=SECRET_A),
            "ZFY0002": SimConfig(
                serial="ZFY0002",
                officer_id="100002",
                officer_name="李四",
                secret=SECRET_B,
                drift_s=40.0,
                battery_pct=9,
            ),
            "ZFY0003": SimConfig(serial="ZFY0003", officer_id="100003", secret=b"k"),
        }.items():
            sims[dev] = stack.enter_context(sim_recorder(cfg))
        tb = UmockdevStation(home.home, tmp_path)
        stack.callback(tb.close)
        tb.start()
        ready = tb.notifications("READY=1")
        assert any("READY=1" in m for m in ready)
        for port, dev in enumerate(volumes, start=1):
            tb.dock(port, sims[dev][1], loops[dev], usb_serial=dev)
        st = tb.wait_status(all_safe(3))
        slots = {s["slot"]: s for s in st["slots"]}  # type: ignore[attr-defined]
        assert slots["1-1"]["phase"] == "done" and slots["1-1"]["flags"] == []
        assert slots["1-1"]["files_done"] == 3
        assert [f["code"] for f in slots["1-2"]["flags"]] == ["battery_low", "clock_drift"]
        assert slots["1-3"]["phase"] == "refused"
        assert slots["1-3"]["flags"][0]["code"] == "unknown_device"

        # Clearing decisions, read back from the devices themselves (invariant 2, 5).
        assert read_loop(loops["ZFY0001"], tmp_path) == {}
        assert read_loop(loops["ZFY0002"], tmp_path) == {}
        assert read_loop(loops["ZFY0003"], tmp_path) == files_of(volumes["ZFY0003"])
        assert sims["ZFY0001"][0].clock_sets and sims["ZFY0002"][0].clock_sets
        assert not sims["ZFY0003"][0].storage_mode and not sims["ZFY0003"][0].clock_sets

        # Undock all three; the slots disappear from the status.
        for port in (1, 2, 3):
            tb.undock(f"/sys/devices/usb1/1-{port}")
        tb.wait_status(lambda s: s.get("slots") == [])
        assert tb.stop_daemon() == 0
        assert "STOPPING=1" in "\n".join(tb.drain())

    db = open_catalog(home.catalog_path)
    try:
        rows = list(db.query("select * from recordings order by device_id, sequence"))
        assert [r["device_id"] for r in rows] == ["ZFY0001"] * 3 + ["ZFY0002"] * 3
        for r in rows:
            name_time = dt.datetime.strptime(r["original_name"].split("_")[2], "%Y%m%d%H%M%S")
            device_utc = local_naive_to_utc(name_time, "Asia/Shanghai")
            shift = (device_utc - parse_iso(r["recorded_at"])).total_seconds()
            if r["device_id"] == "ZFY0002":
                assert abs(r["drift_s"] - 40.0) < 0.5 and abs(shift - 40.0) < 0.5  # corrected
            else:
                assert abs(r["drift_s"]) < 0.5 and abs(shift) < 0.5
        sessions = {
            r["device_id"]: r
            for r in db.query(
                "select * from sessions where kind = 'dock' and device_id is not null"
            )
        }
        assert sessions["ZFY0001"]["state"] == "done" and sessions["ZFY0001"]["cleared"] == 3
        assert sessions["ZFY0002"]["battery_pct"] == 9
        assert sessions["ZFY0003"]["state"] == "refused" and sessions["ZFY0003"]["cleared"] == 0
        flags = json.loads(sessions["ZFY0002"]["flags"])
        assert [f["code"] for f in flags] == ["battery_low", "clock_drift"]
        crashed = db.execute("select state from sessions where started_at = 'x'").fetchone()
        assert crashed[0] == "interrupted"
        alerts = registry.list_alerts(db)
        assert [(a["code"], a["device_id"]) for a in alerts] == [("unknown_device", "ZFY0003")]
    finally:
        db.close()
    log = (tmp_path / "daemon.log").read_text()
    events = [json.loads(x)["event"] for x in log.splitlines() if x.startswith("{")]
    for name in (
        "daemon.ready",
        "dock.added",
        "session.ingested",
        "dock.cleared",
        "session.ended",
        "dock.removed",
        "daemon.stopped",
    ):
        assert name in events, name
