"""Real stand-ins for dock tests: exFAT images on loop devices, simulated recorders on ptys."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from station.recorder.simulator import SimConfig, SimRecorder, open_pty, serve


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    return env


def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, env=_env()).stdout


def is_root() -> bool:
    return os.geteuid() == 0


@contextmanager
def exfat_loop(tmp: Path, content: Path | None, size_mb: int = 48) -> Iterator[str]:
    """An exFAT image filled with ``content`` (a folder), attached to a loop device."""
    img = tmp / f"vol{os.getpid()}_{len(list(tmp.iterdir()))}.img"
    with open(img, "wb") as f:
        f.truncate(size_mb * 1024 * 1024)
    sh("mkfs.exfat", "-L", "ZFY", str(img))
    loop = sh("losetup", "-f", "--show", str(img)).strip()
    try:
        if content is not None:
            mnt = tmp / f"fill_{Path(loop).name}"
            mnt.mkdir()
            sh("mount.exfat-fuse", loop, str(mnt))
            try:
                shutil.copytree(content, mnt, dirs_exist_ok=True)
            finally:
                os.sync()
                sh("umount", str(mnt))
                mnt.rmdir()
        yield loop
    finally:
        subprocess.run(["losetup", "-d", loop], check=False, env=_env())
        img.unlink(missing_ok=True)


def read_loop(loop: str, tmp: Path) -> dict[str, int]:
    """The files on an exFAT loop device now (relative path -> size), read back independently."""
    mnt = tmp / f"check_{Path(loop).name}"
    mnt.mkdir(exist_ok=True)
    sh("mount.exfat-fuse", "-o", "ro", loop, str(mnt))
    try:
        return {str(p.relative_to(mnt)): p.stat().st_size for p in mnt.rglob("*") if p.is_file()}
    finally:
        sh("umount", str(mnt))
        mnt.rmdir()


@contextmanager
def sim_recorder(cfg: SimConfig, link: Path | None = None) -> Iterator[tuple[SimRecorder, str]]:
    rec = SimRecorder(cfg)
    master, slave, name = open_pty(link)
    stop = threading.Event()
    t = threading.Thread(target=serve, args=(rec, master, stop), daemon=True)
    t.start()
    try:
        yield rec, name
    finally:
        stop.set()
        t.join(5)
        os.close(master)
        os.close(slave)


def make_recorder_volume(root: Path, device: str, officer: str, clips: int = 3) -> Path:
    """Real H.264/AAC clips named as the recorder ``device`` would name them."""
    from station.sim.volume import make_volume

    make_volume(root, device=device, officer=officer, clips=clips, seconds=1.0, size="160x120")
    return root


def files_of(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}
