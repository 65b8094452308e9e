"""The recorder driver interface, shaped after the nine functions of the vendor SDKs
(DESIGN.md "Recorder protocol"): identify, authenticate, battery, storage, clock, set clock,
expose storage. Clearing is done by the dock on the mounted volume (only verified files,
DESIGN.md invariant 2), so it is not a driver call.

A value a recorder cannot tell is ``None`` ("unknown"), never invented (R3).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import asdict, dataclass
from typing import Any, Protocol

SERIAL_RE = re.compile(r"^[A-Za-z0-9]{7}$")
# 执法证号: letters, digits (and the Chinese prefix some units use), any length a unit uses.
OFFICER_RE = re.compile(r"^[0-9A-Za-z\u4e00-\u9fff-]{2,32}$")
UNIT_RE = re.compile(r"^[0-9]{12}$")


@dataclass(frozen=True)
class Identity:
    """The recorder's ZFY information record: serial 7 chars, the officer's enforcement
    certificate number (执法证号, any length the unit uses), officer name, unit number 12
    digits, unit name (plus model/firmware where known)."""

    serial: str
    officer_id: str | None = None
    officer_name: str | None = None
    unit_id: str | None = None
    unit_name: str | None = None
    model: str | None = None
    firmware: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def problems(self) -> list[str]:
        """Field format violations, e.g. a serial that is not 7 characters."""
        out = []
        if not SERIAL_RE.match(self.serial):
            out.append(f"serial {self.serial!r} is not 7 letters/digits")
        if self.officer_id is not None and not OFFICER_RE.match(self.officer_id):
            out.append(f"certificate number {self.officer_id!r} is not 2–32 letters/digits")
        if self.unit_id is not None and not UNIT_RE.match(self.unit_id):
            out.append(f"unit number {self.unit_id!r} is not 12 digits")
        return out


@dataclass(frozen=True)
class ClockReading:
    """One clock read: the device's wall time (naive, its own zone) and the station's UTC
    clock at the midpoint of the request's round trip (R3)."""

    device_time: dt.datetime
    station_mid: dt.datetime
    rtt_s: float


class RecorderDriver(Protocol):
    name: str

    def identify(self) -> Identity: ...

    def authenticate(self, secret: bytes) -> None: ...

    def battery(self) -> int | None: ...

    def storage(self) -> tuple[int | None, int | None]: ...

    def read_clock(self) -> ClockReading | None: ...

    def set_clock(self, device_time: dt.datetime) -> None: ...

    def expose_storage(self) -> None: ...

    def close(self) -> None: ...


def station_mac(secret: bytes, serial: str, nonce: str, cnonce: str) -> str:
    """The station's proof that it holds the device secret (the secret never crosses the wire)."""
    msg = f"ZFY1|STATION|{serial}|{nonce}|{cnonce}".encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


def device_mac(secret: bytes, serial: str, nonce: str, cnonce: str) -> str:
    """The device's proof back (mutual authentication)."""
    msg = f"ZFY1|DEVICE|{serial}|{cnonce}|{nonce}".encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


CLOCK_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


def format_clock(t: dt.datetime) -> str:
    return t.strftime(CLOCK_FORMAT)[:-3]  # milliseconds


def parse_clock(text: str) -> dt.datetime:
    for fmt in (CLOCK_FORMAT, "%Y-%m-%dT%H:%M:%S"):
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(f"not a clock value: {text!r}")
