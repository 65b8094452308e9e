"""Mounting a recorder's storage: read-only, ``nosuid,nodev,noexec``, under the run directory.

- exFAT block device: ``mount.exfat-fuse`` (the kernel here has no exfat/vfat driver);
- other block devices: ``mount -t <type>``;
- a directory (a mass-storage volume already presented as a folder, or when mounting is not
  possible): a read-only bind mount as root, else the directory itself.

A dock session gets its mounter injected (:class:`Mounter`): :class:`SystemMounter` in the
daemon (the rules above), :class:`DirectoryMounter` where the recorder's storage is a folder and
no mount is wanted (tests without root, a demo on a laptop) — the session's steps are the same.

Clearing (DESIGN.md invariant 2) remounts read-write only to unlink the files the ingest engine
verified, then unmounts. Helpers run with ``LD_PRELOAD`` removed, so a daemon under
``umockdev-wrapper`` still mounts real devices.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from station.errors import DeviceError
from station.log import get

log = get()

RO_OPTS = "ro,nosuid,nodev,noexec"
RW_OPTS = "rw,nosuid,nodev,noexec"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    return env


def run_helper(args: list[str], where: str) -> None:
    try:
        proc = subprocess.run(args, capture_output=True, text=True, env=_env(), timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DeviceError(f"{args[0]} failed: {exc}", where=where) from exc
    if proc.returncode != 0:
        raise DeviceError(
            f"{' '.join(args[:2])} failed: {(proc.stderr or proc.stdout).strip()[:300]}",
            where=where,
        )


def safe_name(slot: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", slot).strip("_") or "slot"


def is_mountpoint(path: Path) -> bool:
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return os.path.ismount(path)
    target = str(path.resolve())
    return any(line.split()[4] == target for line in text.splitlines() if len(line.split()) > 4)


@dataclass
class MountedVolume:
    source: str
    fstype: str
    mountpoint: Path
    how: str  # exfat-fuse | kernel | bind | direct
    mounted: bool = True
    cleared: list[str] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return Path(self.source) if self.how == "direct" else self.mountpoint

    def _mount(self, opts: str) -> None:
        mp = str(self.mountpoint)
        if self.how == "exfat-fuse":
            run_helper(["mount.exfat-fuse", "-o", opts, self.source, mp], self.source)
            # exfat-fuse drops noexec; a VFS remount adds it back (checked in the tests).
            run_helper(["mount", "-o", f"remount,{opts}", mp], self.source)
        elif self.how == "kernel":
            run_helper(["mount", "-t", self.fstype, "-o", opts, self.source, mp], self.source)
        elif self.how == "bind":
            run_helper(["mount", "--bind", self.source, mp], self.source)
            run_helper(["mount", "-o", f"remount,bind,{opts}", mp], self.source)

    def unmount(self) -> None:
        if not self.mounted:
            return
        self.mounted = False
        if self.how == "direct":
            return
        try:
            run_helper(["umount", str(self.mountpoint)], str(self.mountpoint))
        except DeviceError as exc:
            # The device went away under us: detach lazily so the slot can be reused.
            log.warning("dock.unmount_failed", mountpoint=str(self.mountpoint), error=exc.message)
            run_helper(["umount", "-l", str(self.mountpoint)], str(self.mountpoint))
        try:
            self.mountpoint.rmdir()
        except OSError:
            pass

    def clear(self, verified: dict[Path, int]) -> list[str]:
        """Unlink exactly the verified files (path under ``root`` -> verified size).

        A file whose size changed since it was verified is left alone. Returns the relative
        paths cleared. The volume is unmounted afterwards.
        """
        if self.how in ("exfat-fuse", "kernel", "bind"):
            self.unmount()
            self.mountpoint.mkdir(parents=True, exist_ok=True)
            self._mount(RW_OPTS)
            self.mounted = True
        cleared: list[str] = []
        try:
            for path, size in sorted(verified.items()):
                rel = path.relative_to(self.root)
                target = self.root / rel
                try:
                    st = target.lstat()
                except FileNotFoundError:
                    continue
                if st.st_size != size:
                    log.warning("dock.clear_skipped", file=str(rel), reason="size changed")
                    continue
                target.unlink()
                cleared.append(str(rel))
            os.sync()
        finally:
            self.cleared = cleared
            self.unmount()
        return cleared


def mount_volume(source: str, fstype: str | None, mountpoint: Path) -> MountedVolume:
    """Mount ``source`` read-only at ``mountpoint`` (created), choosing the method by type."""
    src = Path(source)
    if src.is_dir():
        if os.geteuid() != 0:
            return MountedVolume(source, "dir", mountpoint, "direct")
        how = "bind"
    elif fstype == "exfat":
        how = "exfat-fuse"
    elif fstype:
        how = "kernel"
    else:
        raise DeviceError(
            "无法识别存储的文件系统 / the storage has no recognised file system", where=source
        )
    if is_mountpoint(mountpoint):
        raise DeviceError("挂载点被占用 / mount point already in use", where=str(mountpoint))
    mountpoint.mkdir(parents=True, exist_ok=True)
    vol = MountedVolume(source, fstype or "dir", mountpoint, how)
    t0 = time.monotonic()
    try:
        vol._mount(RO_OPTS)
    except DeviceError:
        try:
            mountpoint.rmdir()
        except OSError:
            pass
        raise
    log.info(
        "dock.mounted",
        source=source,
        mountpoint=str(mountpoint),
        how=how,
        seconds=round(time.monotonic() - t0, 3),
    )
    return vol


class Mounter(Protocol):
    """How a dock session reaches a recorder's storage: ``mount`` gives a volume whose ``root``
    is read, whose ``clear`` unlinks only verified files and whose ``unmount`` lets go."""

    def mount(self, source: str, fstype: str | None, mountpoint: Path) -> MountedVolume: ...


class SystemMounter:
    """The daemon's mounter: read-only mounts chosen by file-system type (``mount_volume``)."""

    def mount(self, source: str, fstype: str | None, mountpoint: Path) -> MountedVolume:
        return mount_volume(source, fstype, mountpoint)


class DirectoryMounter:
    """The storage is a folder (``source``): used in place, nothing mounted, no root needed.
    Clearing unlinks the verified files in that folder, with the same size check."""

    def mount(self, source: str, fstype: str | None, mountpoint: Path) -> MountedVolume:
        if not Path(source).is_dir():
            raise DeviceError("存储不是文件夹 / the storage is not a folder", where=source)
        log.info("dock.mounted", source=source, mountpoint=source, how="direct")
        return MountedVolume(source, "dir", mountpoint, "direct")
