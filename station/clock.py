"""Can the station's clock be trusted for time-based destruction? (R9; DESIGN.md invariant 9)

The wall clock can be set by anyone with root, by a wrong RTC after a power cut, or for one
process by ``faketime``. Two clocks cannot: ``CLOCK_BOOTTIME`` (read from ``/proc/uptime``,
seconds since boot, suspend included) and the kernel's boot id. The station keeps an *anchor*: the
wall time and boot time of the last moment the clock was judged trusted (``audit-head.json``,
written after every audited commit by ``station.audit.head``). Within one boot, wall time may only
advance as boot time does (plus NTP slew: ``tolerance_s`` + 0.1 % of the elapsed time).

``judge`` (pure, table-tested) says:

- ``trusted``: consistent with the anchor (or no anchor to compare with and not behind the audit
  log); a synchronised host (timesyncd says so) is trusted and re-anchors, which is how a
  corrected clock recovers;
- ``jumped``: the wall clock moved forward more than boot time allows;
- ``behind``: the wall clock is behind the anchor (or, without one, behind the newest audit
  entry);
- ``unsynchronised``: the host says its clock is not synchronised (``audit.clock_sync``).

Entries written while the clock was not trusted do not move the anchor, so a clock that was
wrong and is then corrected is trusted again at once (it agrees with the anchor), however far
ahead the wrong entries were dated.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from station.timeutil import from_timestamp, to_iso

TIMESYNC_DIR = Path("/run/systemd/timesync")
STA_UNSYNC = 0x0040
TIME_ERROR = 5

STATE_TEXT = {
    "trusted": "可信 / trusted",
    "jumped": "时钟前跳，超出开机计时允许范围 / jumped forward past the elapsed boot time",
    "behind": "时钟倒退 / went backwards",
    "unsynchronised": "未同步 / not synchronised",
}


@dataclass(frozen=True)
class Reading:
    wall: float  # seconds since the epoch, as this process sees the wall clock
    boottime: float  # CLOCK_BOOTTIME seconds (from /proc/uptime: not faked by libfaketime)
    boot_id: str

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "at": to_iso(from_timestamp(self.wall))}

    @classmethod
    def from_json(cls, data: Any) -> Reading | None:
        try:
            return cls(float(data["wall"]), float(data["boottime"]), str(data["boot_id"]))
        except (KeyError, TypeError, ValueError):
            return None


_BOOT_ID: str | None = None


def boot_id() -> str:
    global _BOOT_ID
    if _BOOT_ID is None:
        try:
            _BOOT_ID = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        except OSError:
            _BOOT_ID = "unknown"
    return _BOOT_ID


def boottime() -> float:
    try:
        return float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return time.clock_gettime(time.CLOCK_BOOTTIME)


def read_now() -> Reading:
    return Reading(time.time(), boottime(), boot_id())


class _Timex(ctypes.Structure):
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_pad", ctypes.c_int * 11),
    ]


def kernel_unsynchronised() -> bool | None:
    """The kernel's own view (``adjtimex``, read only): True when STA_UNSYNC is set or the
    clock state is TIME_ERROR; None when it cannot be asked."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return bool(tx.status & STA_UNSYNC) or state == TIME_ERROR


def host_synchronised(mode: str) -> bool | None:
    """What the host says about synchronisation, per setting ``audit.clock_sync``:

    ``auto``: systemd-timesyncd's flag file when timesyncd runs (``/run/systemd/timesync``),
    else unknown (an offline station with no time service is judged by its anchor alone);
    ``required``: additionally the kernel's STA_UNSYNC (chrony, ntpd); ``ignore``: unknown."""
    if mode == "ignore":
        return None
    if TIMESYNC_DIR.is_dir():
        return (TIMESYNC_DIR / "synchronized").exists()
    if mode == "required":
        unsync = kernel_unsynchronised()
        return None if unsync is None else not unsync
    return None


@dataclass(frozen=True)
class Verdict:
    state: str  # trusted | jumped | behind | unsynchronised
    detail: str
    offset_s: float | None = None  # wall clock minus what the anchor and boot time predict
    reanchor: bool = False  # trusted: the anchor may move to now

    @property
    def trusted(self) -> bool:
        return self.state == "trusted"

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "text": STATE_TEXT[self.state],
            "detail": self.detail,
            "offset_s": self.offset_s,
        }


def judge(
    anchor: Reading | None,
    now: Reading,
    *,
    newest_audit: float | None = None,
    synchronised: bool | None = None,
    tolerance_s: float = 60.0,
) -> Verdict:
    """Pure: is ``now`` a wall clock to destroy footage by? See the module docstring."""
    if synchronised is False:
        return Verdict("unsynchronised", "the host says its clock is not synchronised")
    if anchor is not None and anchor.boot_id == now.boot_id:
        elapsed = now.boottime - anchor.boottime
        offset = (now.wall - anchor.wall) - elapsed
        tol = tolerance_s + 0.001 * max(elapsed, 0.0)
        if abs(offset) <= tol:
            return Verdict("trusted", "agrees with boot time since the anchor", offset, True)
        if synchronised:
            return Verdict("trusted", "stepped, and the host is synchronised", offset, True)
        if offset > 0:
            return Verdict(
                "jumped",
                f"wall clock is {offset:.0f} s ahead of the boot time elapsed since "
                f"{to_iso(from_timestamp(anchor.wall))}",
                offset,
            )
        return Verdict(
            "behind",
            f"wall clock is {-offset:.0f} s behind the boot time elapsed since "
            f"{to_iso(from_timestamp(anchor.wall))}",
            offset,
        )
    floor = anchor.wall if anchor is not None else newest_audit
    if floor is not None and now.wall < floor - 5.0 and not synchronised:
        what = "the last trusted time" if anchor is not None else "the newest audit entry"
        return Verdict(
            "behind",
            f"wall clock is before {what} {to_iso(from_timestamp(floor))}",
            now.wall - floor,
        )
    return Verdict(
        "trusted", "no anchor of this boot; not behind the last trusted time", reanchor=True
    )


def iso_to_epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
