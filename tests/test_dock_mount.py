"""Mounting recorder storage for real: exFAT over FUSE on a loop device, read-only bind mounts."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from dock_support import exfat_loop, read_loop

from station.errors import DeviceError
from station.usb_dock.mount import is_mountpoint, mount_volume

pytestmark = pytest.mark.root  # loop devices and mounts


def _content(tmp: Path) -> Path:
    src = tmp / "src"
    (src / "DCIM" / "100").mkdir(parents=True)
    (src / "DCIM" / "100" / "A.MP4").write_bytes(b"a" * 5000)
    (src / "DCIM" / "100" / "B.MP4").write_bytes(b"b" * 7000)
    (src / "执法记录.MP4").write_bytes(b"c" * 3000)
    return src


def _options(mp: Path) -> set[str]:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        parts = line.split()
        if parts[4] == str(mp):
            return set(parts[5].split(","))
    raise AssertionError(f"{mp} not mounted")


def test_exfat_read_only_and_clear_only_verified(tmp_path: Path) -> None:
    with exfat_loop(tmp_path, _content(tmp_path)) as loop:
        mp = tmp_path / "run" / "mnt" / "slot1"
        vol = mount_volume(loop, "exfat", mp)
        try:
            assert vol.how == "exfat-fuse"
            assert {"ro", "nosuid", "nodev", "noexec"} <= _options(mp)
            assert (mp / "执法记录.MP4").read_bytes() == b"c" * 3000
            with pytest.raises(OSError) as e:
                (mp / "new.txt").write_bytes(b"x")
            assert e.value.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
            verified = {mp / "DCIM/100/A.MP4": 5000, mp / "执法记录.MP4": 3000}
            # B.MP4 was not verified; a size mismatch protects against a changed file.
            verified[mp / "DCIM/100/B.MP4"] = 1
            cleared = vol.clear(verified)
        finally:
            vol.unmount()
        assert sorted(cleared) == ["DCIM/100/A.MP4", "执法记录.MP4"]
        assert not is_mountpoint(mp)
        assert read_loop(loop, tmp_path) == {"DCIM/100/B.MP4": 7000}


def test_directory_is_bind_mounted_read_only(tmp_path: Path) -> None:
    src = _content(tmp_path)
    mp = tmp_path / "mnt"
    vol = mount_volume(str(src), None, mp)
    try:
        assert vol.how == "bind" and {"ro", "nosuid", "nodev", "noexec"} <= _options(mp)
        with pytest.raises(OSError):
            (mp / "x").write_bytes(b"x")
        vol.clear({mp / "DCIM/100/B.MP4": 7000})
    finally:
        vol.unmount()
    assert not (src / "DCIM/100/B.MP4").exists() and (src / "DCIM/100/A.MP4").exists()


def test_no_file_system_is_refused(tmp_path: Path) -> None:
    blank = tmp_path / "blank"
    blank.write_bytes(b"")
    with pytest.raises(DeviceError, match="no recognised file system"):
        mount_volume(str(blank), None, tmp_path / "mnt")
    assert not (tmp_path / "mnt").exists()
