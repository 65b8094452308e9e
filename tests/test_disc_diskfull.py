"""The output disk fills up in the middle of an image (R12: no half image is ever called
ready). A real small ext4 file system on a loop device, as HARNESS.md suggests; needs root."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from station.config import Settings
from station.disc_burn import jobs
from station.errors import OutputFullError
from station.vault import Vault
from tests.disc_helpers import add_case, add_recording, data, label_settings

pytestmark = pytest.mark.root


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or not shutil.which("losetup") or not shutil.which("mkfs.ext4"):
        pytest.skip("needs root, losetup and mkfs.ext4")
    image = tmp_path / "small.ext4"
    with open(image, "wb") as f:
        f.truncate(16 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-m", "0", str(image)], check=True)
    loop = subprocess.run(["losetup", "-f", "--show", str(image)], capture_output=True, text=True)
    if loop.returncode != 0:
        pytest.skip(f"no loop device: {loop.stderr.strip()}")
    dev = loop.stdout.strip()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        subprocess.run(["mount", dev, str(mnt)], check=True)
        try:
            yield mnt
        finally:
            subprocess.run(["umount", str(mnt)], check=True)
    finally:
        subprocess.run(["losetup", "-d", dev], check=True)


def test_disk_full_mid_image_leaves_no_image_and_fails_the_job(
    vault: Vault, db: sqlite_utils.Database, small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shas = [
        add_recording(
            vault, db, data(i, 6_000_000), name=f"DSJ0001_100001_2026030109{i}000_0001.MP4"
        )
        for i in range(3)
    ]  # 18 MB of recordings, a 16 MiB file system
    add_case(db, "2026-0500", "磁盘已满", shas)
    out = small_disk / "out"
    with pytest.raises(OutputFullError) as err:
        jobs.build_job(vault, db, label_settings(Settings()), ["2026-0500"], media_key="dvd",
                       out_dir=out, actor="tester")  # fmt: skip
    assert "filled up" in err.value.render() and str(out) in err.value.render()
    assert sorted(p.name for p in out.iterdir()) == []  # no image, no partial, no label
    job = db.execute("select state, error from disc_jobs").fetchone()
    assert job[0] == "failed" and "filled up" in job[1]
    states = [r[0] for r in db.execute("select state from disc_images order by copy")]
    assert states == ["failed", "failed"]
    assert "disc.output_full" in capsys.readouterr().out
    events = [r[0] for r in db.execute("select event from audit_log where subject = '2026-0500'")]
    assert "disc.job_failed" in events
    # the retention report still shows the case as not on disc
    from station.disc_burn.records import case_disc_status

    assert case_disc_status(db)[0]["both_verified"] is False
