"""The daemon under umockdev-wrapper: the same recorder docked twice quickly, and an unknown USB
stick in another slot (DESIGN.md invariants 2, 5, 7)."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from dock_support import (
    DockBed,
    exfat_loop,
    files_of,
    make_recorder_volume,
    read_loop,
    sim_recorder,
)

from station.catalog import open_catalog
from station.recorder.simulator import SimConfig
from station.usb_dock import registry
from station.vault import Vault

pytestmark = [
    pytest.mark.root,  # loop devices and mounts
    pytest.mark.slow,
]

SECRET = bytes(range(32))


def test_redock_quickly_and_unknown_stick(tmp_path: Path) -> None:
    vault = Vault(tmp_path / "home")
    vault.init()
    db = open_catalog(vault.catalog_path)
    registry.enrol(
        db, "ZFY0001", officer_id="100001", unit_id="110101000001", actor="admin", secret=SECRET
    )
    vol = make_recorder_volume(tmp_path / "vol", "ZFY0001", "100001", clips=3)
    stick_content = tmp_path / "stick"
    stick_content.mkdir()
    (stick_content / "合同.pdf").write_bytes(b"%PDF-1.4 private")
    with ExitStack() as stack:
        loop = stack.enter_context(exfat_loop(tmp_path, vol))
        stick = stack.enter_context(exfat_loop(tmp_path, stick_content))
        _rec, pty = stack.enter_context(sim_recorder(SimConfig(serial="ZFY0001", secret=SECRET)))
        bed = DockBed(vault.home, tmp_path)
        stack.callback(bed.close)
        bed.start()
        bed.notifications("READY=1")
        usb = bed.dock(1, pty, loop, usb_serial="ZFY0001")
        bed.undock(usb)  # pulled straight back out …
        bed.dock(1, pty, loop, usb_serial="ZFY0001")  # … and docked again
        bed.dock(4, None, stick, usb_serial="4C530001", recorder=False)

        def settled(st: dict[str, Any]) -> bool:
            slots = {s["slot"]: s for s in st.get("slots", [])}
            return (
                slots.get("1-1", {}).get("phase") == "done"
                and slots.get("1-4", {}).get("phase") == "refused"
            )

        st = bed.wait_status(settled)
        slots = {s["slot"]: s for s in st["slots"]}  # type: ignore[attr-defined]
        assert slots["1-4"]["flags"][0]["code"] == "unknown_device"
        assert slots["1-1"]["safe_to_undock"] and slots["1-4"]["safe_to_undock"]
        assert read_loop(loop, tmp_path) == {}
        assert read_loop(stick, tmp_path) == files_of(stick_content)  # never touched
        assert bed.stop_daemon() == 0
    rows = list(db.query("select sha256 from recordings"))
    assert len(rows) == 3  # each file once, whatever the first session got to
    states = [
        r[0]
        for r in db.execute("select state from sessions where device_id = 'ZFY0001' order by id")
    ]
    assert states[-1] == "done" and "failed" not in states
    assert set(states[:-1]) <= {"interrupted", "done"}
    alerts = registry.list_alerts(db)
    assert [a["code"] for a in alerts] == ["unknown_device"] and alerts[0]["slot"] == "1-4"
    mounts = Path("/proc/self/mounts").read_text()
    assert stick not in mounts and loop not in mounts
    db.close()


def test_recorder_docked_before_start_is_picked_up(tmp_path: Path) -> None:
    """Start-up resumes: a recorder already docked when the daemon starts (coldplug)."""
    vault = Vault(tmp_path / "home")
    vault.init()
    db = open_catalog(vault.catalog_path)
    registry.enrol(
        db, "ZFY0001", officer_id="100001", unit_id="110101000001", actor="admin", secret=SECRET
    )
    vol = make_recorder_volume(tmp_path / "vol", "ZFY0001", "100001", clips=2)
    with ExitStack() as stack:
        loop = stack.enter_context(exfat_loop(tmp_path, vol))
        _rec, pty = stack.enter_context(sim_recorder(SimConfig(serial="ZFY0001", secret=SECRET)))
        bed = DockBed(vault.home, tmp_path)
        stack.callback(bed.close)
        bed.start_testbed_only()
        bed.dock(1, pty, loop, usb_serial="ZFY0001")  # nobody listening yet
        bed.send(op="start")
        st = bed.wait_status(lambda s: any(x.get("phase") == "done" for x in s.get("slots", [])))
        assert st["slots"][0]["files_done"] == 2  # type: ignore[index]
        assert read_loop(loop, tmp_path) == {}
        assert bed.stop_daemon() == 0
    assert db.execute("select count(*) from recordings").fetchone()[0] == 2
    db.close()
