"""The daemon under umockdev-wrapper with a slow (cgroup-throttled: v1 ``blkio`` or v2 ``io.max``)
recorder: a second recorder
claiming the same device id while the first is copying, then the first pulled out mid-copy and
docked again (DESIGN.md invariants 2, 7)."""

from __future__ import annotations

import contextlib
import os
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from dock_support import DockBed, exfat_loop, files_of, is_root, read_loop, sim_recorder

from station.catalog import open_catalog
from station.recorder.simconfig import SimConfig
from station.usb_dock import registry
from station.vault import Vault
from station_testbed import throttle

pytestmark = [
    pytest.mark.root,  # loop devices, mounts, cgroups
    pytest.mark.skipif(
        not is_root() or throttle.backend() is None, reason="needs root and a cgroup io throttle"
    ),
    pytest.mark.slow,
]
SECRET = bytes(range(32))
RATE = 4_000_000  # bytes/s: 20 MB take ~5 s


def throttled(name: str, device: str) -> contextlib.AbstractContextManager[Path]:
    return throttle.throttled(name, device, RATE)


def noise_volume(root: Path, device: str, officer: str, files: int, mb: int) -> Path:
    day = root / "DCIM" / "20261121"
    day.mkdir(parents=True)
    for i in range(1, files + 1):
        (day / f"{device}_{officer}_20261121{8 + i:02d}0000_{i:04d}.MP4").write_bytes(
            os.urandom(mb * 1_000_000)
        )
    return root


def wait_row(db: Any, sql: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = db.execute(sql).fetchone()
        if row is not None:
            return row
        time.sleep(0.1)
    raise AssertionError(f"no row for {sql}")


def slot(st: dict[str, Any], name: str) -> dict[str, Any]:
    return next((s for s in st.get("slots", []) if s["slot"] == name), {})


def test_duplicate_id_and_pulled_out_mid_copy(tmp_path: Path) -> None:
    vault = Vault(tmp_path / "home")
    vault.init()
    db = open_catalog(vault.catalog_path)
    registry.enrol(
        db, "ZFY0001", officer_id="100001", unit_id="110101000001", actor="admin", secret=SECRET
    )
    vol = noise_volume(tmp_path / "a", "ZFY0001", "100001", files=4, mb=5)
    clone_vol = noise_volume(tmp_path / "b", "ZFY0001", "100001", files=1, mb=1)
    with ExitStack() as stack:
        loop = stack.enter_context(exfat_loop(tmp_path, vol, size_mb=64))
        clone_loop = stack.enter_context(exfat_loop(tmp_path, clone_vol))
        procs = stack.enter_context(throttled(f"station-test-{os.getpid()}", loop))
        _r1, pty = stack.enter_context(sim_recorder(SimConfig(serial="ZFY0001", secret=SECRET)))
        _r2, pty2 = stack.enter_context(sim_recorder(SimConfig(serial="ZFY0001", secret=SECRET)))
        bed = DockBed(vault.home, tmp_path)
        stack.callback(bed.close)
        procs.write_text(str(bed.proc.pid))  # daemon + FUSE helpers read the loop slowly
        bed.start()
        bed.notifications("READY=1")
        usb = bed.dock(1, pty, loop, usb_serial="ZFY0001")
        bed.wait_status(lambda s: slot(s, "1-1").get("bytes_done", 0) > 0)
        # A second recorder claiming the same id while the first is copying.
        bed.dock(2, pty2, clone_loop, usb_serial="ZFY0001")
        st = bed.wait_status(lambda s: slot(s, "1-2").get("phase") == "refused")
        assert slot(st, "1-2")["flags"][0]["code"] == "duplicate_id"
        assert "1-1" in slot(st, "1-2")["flags"][0]["message"]
        assert not slot(st, "1-1").get("safe_to_undock")  # still copying
        # Pulled out mid-copy.
        bed.undock(usb)
        bed.wait_status(lambda s: not slot(s, "1-1"))
        row = wait_row(
            db,
            "select state, cleared, flags from sessions where slot = '1-1'"
            " and state != 'running' order by id desc",
        )
        assert row[0] == "interrupted" and row[1] == 0 and "interrupted" in row[2]
        assert read_loop(loop, tmp_path) == files_of(vol)  # nothing cleared
        assert read_loop(clone_loop, tmp_path) == files_of(clone_vol)
        stored = db.execute("select count(*) from recordings").fetchone()[0]
        assert stored < 4
        # Docked again: it resumes and finishes; the station kept serving throughout.
        bed.dock(1, pty, loop, usb_serial="ZFY0001")
        st = bed.wait_status(lambda s: slot(s, "1-1").get("phase") == "done")
        assert slot(st, "1-1")["cleared"] == 4 and read_loop(loop, tmp_path) == {}
        assert bed.stop_daemon() == 0
    assert db.execute("select count(*) from recordings").fetchone()[0] == 4
    codes = [a["code"] for a in registry.list_alerts(db)]
    assert codes == ["duplicate_id"]
    db.close()
