"""Optical drives found through udev (``ID_CDROM*`` properties), with real udev device records
in a umockdev testbed and the real ``station`` command as a child process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from station.vault import Vault

PROBE = Path(__file__).with_name("disc_udev_probe.py")
BD_WRITER = {
    "DEVTYPE": "disk",
    "ID_CDROM": "1",
    "ID_CDROM_BD_R": "1",
    "ID_CDROM_DVD_PLUS_R": "1",
    "ID_CDROM_MEDIA": "1",
    "ID_CDROM_MEDIA_BD_R": "1",
    "ID_CDROM_MEDIA_STATE": "blank",
    "ID_MODEL": "BD-RE_BH16NS55",
}
DISK = {"DEVTYPE": "disk", "ID_TYPE": "disk", "ID_MODEL": "QEMU_HARDDISK"}


def probe(vault: Vault, devices: dict[str, dict[str, str]], *args: str) -> dict[str, Any]:
    if not shutil.which("umockdev-wrapper"):
        pytest.skip("umockdev-wrapper not installed")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    out = subprocess.run(
        ["umockdev-wrapper", sys.executable, str(PROBE), json.dumps(devices),
         "--home", str(vault.home), "disc", *args],
        capture_output=True, text=True, env=env, timeout=120, check=True,
    ).stdout  # fmt: skip
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def test_a_bd_writer_is_found(vault: Vault) -> None:
    res = probe(vault, {"sda": DISK, "sr0": BD_WRITER}, "drives", "--json")
    assert res["rc"] == 0, res["stderr"]
    assert json.loads(res["stdout"]) == [
        {"device": "/dev/sr0", "model": "BD-RE BH16NS55", "media": "BD_R", "blank": True,
         "writes": ["BD_R", "DVD_PLUS_R"]}
    ]  # fmt: skip


def test_no_drive_among_the_devices(vault: Vault) -> None:
    res = probe(vault, {"sda": DISK}, "drives")
    assert res["rc"] == 0 and "no drive found" in res["stdout"]


def test_burn_with_no_drive_or_two_drives(vault: Vault, db: Any) -> None:
    # a verified job to burn: built through the real pipeline on small files
    from station.config import Settings
    from station.disc_burn import jobs
    from tests.disc_helpers import add_case, add_recording, data, label_settings

    sha = add_recording(vault, db, data(1, 5000))
    add_case(db, "2026-0001", "案", [sha])
    job_id, _ = jobs.build_job(vault, db, label_settings(Settings()), ["2026-0001"],
                               media_key="dvd", out_dir=None, actor="tester")  # fmt: skip
    res = probe(vault, {"sda": DISK}, "burn", str(job_id), "--copy", "A")
    assert res["rc"] == 27 and "no drive found" in res["stderr"] and "mark-burned" in res["stderr"]
    # the message once for the person; the logged event in the home's log file, not on stderr
    assert "disc.no_drive" not in res["stderr"]
    assert "disc.no_drive" in (vault.home / "log" / "station-cli.log").read_text("utf-8")
    res = probe(vault, {"sr0": BD_WRITER, "sr1": BD_WRITER}, "burn", str(job_id), "--copy", "A")
    assert res["rc"] == 27 and "--device" in res["stderr"] and "/dev/sr1" in res["stderr"]
    states = [r[0] for r in db.execute("select state from disc_images order by copy")]
    assert states == ["verified", "verified"]  # nothing recorded as burned
