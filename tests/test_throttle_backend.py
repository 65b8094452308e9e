"""Which cgroup throttles the slow recorder of the mid-copy test, and what it writes: v1
``blkio`` where mounted, else v2 ``io.max`` (Debian 12's default unified hierarchy). Checked on a
stand-in tree of real files; the mid-copy test uses the same code on the real /sys/fs/cgroup."""

from __future__ import annotations

import os
from pathlib import Path

from station_testbed import throttle

DEVICE = "/dev/null"  # any device node: only its numbers are written


def numbers() -> str:
    st = os.stat(DEVICE)
    return f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"


def test_cgroup_v2_io_max(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("cpu\n")
    found = throttle.backend(tmp_path)
    assert found == throttle.Backend("v2-io", tmp_path)
    with throttle.throttled("slow", DEVICE, 4_000_000, root=tmp_path) as procs:
        assert procs == tmp_path / "slow" / "cgroup.procs"
        assert (tmp_path / "slow" / "io.max").read_text() == f"{numbers()} rbps=4000000\n"
        assert (tmp_path / "cgroup.subtree_control").read_text() == "+io\n"
        (tmp_path / "slow" / "io.max").unlink()  # a real cgroupfs removes its own files
    assert not (tmp_path / "slow").exists()


def test_hybrid_host_uses_the_unified_mount(tmp_path: Path) -> None:
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("io\n")
    assert throttle.backend(tmp_path) == throttle.Backend("v2-io", tmp_path / "unified")


def test_cgroup_v1_blkio_first(tmp_path: Path) -> None:
    (tmp_path / "blkio").mkdir()
    (tmp_path / "cgroup.controllers").write_text("io\n")
    assert throttle.backend(tmp_path) == throttle.Backend("v1-blkio", tmp_path / "blkio")
    with throttle.throttled("slow", DEVICE, 1000, root=tmp_path):
        text = (tmp_path / "blkio" / "slow" / "blkio.throttle.read_bps_device").read_text()
        assert text == f"{numbers()} 1000\n"
        (tmp_path / "blkio" / "slow" / "blkio.throttle.read_bps_device").unlink()


def test_no_io_controller_no_throttle(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")
    assert throttle.backend(tmp_path) is None
