"""The mass-storage-only driver: recorders without a control link.

The device id is the USB serial (matched against enrolled devices before anything is mounted,
DESIGN.md invariant 5); the officer and unit come from an id file at the volume root or, failing
that, from the recorder's file names. Battery and clock cannot be read: they are reported as
unknown (``None``), never invented (R3).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

from station.recorder.base import ClockReading, Identity

ID_FILES = ("ZFYINFO.TXT", "DEVICE.ID", "zfyinfo.txt")
_NAME = re.compile(r"^(?P<device>[A-Za-z0-9]{7})_(?P<officer>[0-9A-Za-z]{2,32})_\d{14}_\d+")
_KEYS = {
    "serial": "serial",
    "device": "serial",
    "officer": "officer_id",
    "officer_id": "officer_id",
    "officer_name": "officer_name",
    "unit": "unit_id",
    "unit_id": "unit_id",
    "unit_name": "unit_name",
    "model": "model",
}
MAX_ID_FILE = 4096


def identity_from_volume(root: Path, device_id: str) -> Identity:
    """Read ``key=value`` lines of an id file, else the first recorder-style file name."""
    fields: dict[str, str] = {}
    for name in ID_FILES:
        path = root / name
        if path.is_file() and path.stat().st_size <= MAX_ID_FILE:
            text = path.read_bytes().decode("utf-8", errors="replace")
            for line in text.splitlines():
                key, sep, value = line.partition("=")
                attr = _KEYS.get(key.strip().lower())
                if sep and attr and value.strip():
                    fields[attr] = value.strip()
            break
    if "officer_id" not in fields:
        for _dirpath, _dirs, files in os.walk(root):
            for f in sorted(files):
                m = _NAME.match(f)
                if m and m.group("device") == device_id:
                    fields["officer_id"] = m.group("officer")
                    break
            if "officer_id" in fields:
                break
    fields["serial"] = device_id  # the enrolled USB identity wins over a file's claim
    return Identity(**fields)


class MassStorageDriver:
    name = "mass-storage"

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self.root: Path | None = None

    def identify(self) -> Identity:
        if self.root is None:
            return Identity(serial=self.device_id)
        return identity_from_volume(self.root, self.device_id)

    def authenticate(self, secret: bytes) -> None:
        """No control link, nothing to authenticate against: the USB serial is all there is."""

    def battery(self) -> int | None:
        return None

    def storage(self) -> tuple[int | None, int | None]:
        if self.root is None:
            return None, None
        st = os.statvfs(self.root)
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize

    def read_clock(self) -> ClockReading | None:
        return None

    def set_clock(self, device_time: dt.datetime) -> None:
        """Cannot be set without a control link."""

    def expose_storage(self) -> None:
        """Already a mass-storage device."""

    def close(self) -> None:
        pass
