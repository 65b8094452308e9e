"""Burning an image with xorrecord and reading the disc back (R12), and recording a burn done
elsewhere. Drives are found through udev (``ID_CDROM*`` properties, pyudev).

A target ``stdio:PATH`` is xorriso's pseudo-drive (a plain file): it takes the same path through
xorrecord and the read-back, which is how the tests and a dry run burn without a drive.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from station.errors import BurnError, NoDriveError, StationError

CHUNK = 1 << 20
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")


@dataclass(frozen=True)
class Drive:
    devnode: str
    model: str
    media: str | None  # e.g. "BD_R", "DVD_PLUS_R", None when no disc
    blank: bool
    writes: list[str]  # media types the drive can write (ID_CDROM_DVD_R, ID_CDROM_BD_R, ...)


def drives_from_properties(devices: list[tuple[str, dict[str, str]]]) -> list[Drive]:
    """Pure: optical drives among block devices described by udev properties."""
    found = []
    for node, props in devices:
        if props.get("ID_CDROM") != "1":
            continue
        media = next(
            (
                k.removeprefix("ID_CDROM_MEDIA_")
                for k in sorted(props)
                if k.startswith("ID_CDROM_MEDIA_")
                and k != "ID_CDROM_MEDIA_STATE"
                and k.removeprefix("ID_CDROM_MEDIA_")
                not in (
                    "SESSION_COUNT",
                    "TRACK_COUNT",
                    "TRACK_COUNT_DATA",
                    "SESSION_NEXT",
                    "TRACK_COUNT_AUDIO",
                )
            ),
            None,
        )
        writes = sorted(
            k.removeprefix("ID_CDROM_")
            for k, v in props.items()
            if v == "1" and re.fullmatch(r"ID_CDROM_(CD|DVD|BD)_(R|RW|PLUS_R|PLUS_RW|R_DL)\w*", k)
        )
        model = props.get("ID_MODEL", "?").replace("_", " ")
        blank = props.get("ID_CDROM_MEDIA_STATE") == "blank"
        found.append(Drive(node, model, media, blank, writes))
    return found


def find_drives() -> list[Drive]:
    """Optical drives the kernel knows, through udev."""
    try:
        import pyudev

        context = pyudev.Context()
        devices = [
            (d.device_node or d.sys_path, dict(d.properties))
            for d in context.list_devices(subsystem="block")
        ]
    except Exception as exc:  # pyudev raises plain OSError/ImportError variants here
        raise NoDriveError(f"cannot ask udev for drives: {exc}") from exc
    return drives_from_properties(devices)


def _hint() -> str:
    return (
        "hand the images and label sheets (in the job's folder) to the clerk; after burning "
        "elsewhere run `station disc mark-burned JOB --copy A --by NAME --location SHELF` / "
        "请将映像和标签交给档案员在其他设备刻录，然后用 mark-burned 登记"
    )


def choose_target(device: str | None, drives: list[Drive]) -> str:
    """The xorrecord target: ``--device`` if given and present, else the only drive found."""
    if device and device.startswith("stdio:"):
        return device
    if device:
        if not any(d.devnode == device for d in drives) and not Path(device).exists():
            raise NoDriveError(f"找不到该光驱 / no drive at {device}", where=device, hint=_hint())
        return device
    if not drives:
        raise NoDriveError("未找到刻录光驱 / no drive found", where="udev (ID_CDROM)", hint=_hint())
    if len(drives) > 1:
        raise NoDriveError(
            "发现多个光驱，请用 --device 指定 / several drives found; choose one with --device",
            hint=", ".join(d.devnode for d in drives),
        )
    return drives[0].devnode


def burn_image(
    image: Path, target: str, *, xorrecord: str = "", tick: Callable[[float], None] | None = None
) -> None:
    """Write ``image`` to ``target`` with xorrecord (disc-at-once)."""
    exe = xorrecord or shutil.which("xorrecord") or ""
    if not exe:
        raise BurnError("找不到 xorrecord / xorrecord not found", hint="install Debian xorriso")
    args = [exe, "-v", f"dev={target}"]
    if not target.startswith("stdio:"):
        args.append("-dao")
    args.append(str(image))
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    tail: list[str] = []
    for raw in proc.stdout:
        line = raw.decode("utf-8", "replace").rstrip()
        tail = [*tail[-5:], line]
        m = _PERCENT.search(line)
        if m and tick is not None:
            tick(float(m.group(1)))
    if proc.wait() != 0:
        raise BurnError(
            f"刻录失败 / xorrecord failed (exit {proc.returncode}): {' | '.join(tail[-3:])}",
            where=target,
            hint="check the disc is blank and of the job's media type",
        )


def read_back_disc(
    target: str, size: int, tick: Callable[[int], None] | None = None
) -> tuple[str, int]:
    """SHA-256 of exactly the first ``size`` bytes of the burned disc."""
    path = target.removeprefix("stdio:")
    h = hashlib.sha256()
    left = size
    try:
        with open(path, "rb", buffering=0) as f:
            while left > 0:
                block = f.read(min(CHUNK, left))
                if not block:
                    break
                h.update(block)
                left -= len(block)
                if tick:
                    tick(len(block))
    except OSError as exc:
        raise BurnError(f"cannot read the disc back: {exc.strerror}", where=path) from exc
    return h.hexdigest(), size - left


def drive_json(d: Drive) -> dict[str, Any]:
    return {
        "device": d.devnode,
        "model": d.model,
        "media": d.media,
        "blank": d.blank,
        "writes": d.writes,
    }


__all__ = ["BurnError", "Drive", "NoDriveError", "StationError"]
