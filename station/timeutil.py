"""Times: stored in UTC as ISO 8601 strings with a trailing Z (DESIGN.md invariant 6).

The fixed format ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` sorts lexicographically in time order, so SQL
range queries on it are plain string comparisons.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

UTC = dt.UTC


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def to_iso(t: dt.datetime) -> str:
    if t.tzinfo is None:
        raise ValueError(f"naive datetime {t!r}: give a time zone")
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str, default_tz: str | dt.tzinfo = UTC) -> dt.datetime:
    """Parse an ISO 8601 time; a time without an offset is taken in ``default_tz``."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    t = dt.datetime.fromisoformat(value)
    if t.tzinfo is None:
        tz = ZoneInfo(default_tz) if isinstance(default_tz, str) else default_tz
        t = t.replace(tzinfo=tz)
    return t.astimezone(UTC)


def from_timestamp(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, UTC)


def local_naive_to_utc(t: dt.datetime, tz: str) -> dt.datetime:
    """A device's wall-clock time (naive) in zone ``tz`` to UTC."""
    return t.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


# ---- times for people ---------------------------------------------------------------------
# Machines get ISO 8601 (above); people get the station's wall clock (``station.timezone``,
# 北京时间 for Asia/Shanghai) to the second or minute, with the zone named once per table
# header rather than on every cell.

_BEIJING = {"Asia/Shanghai", "Asia/Chongqing", "Asia/Harbin", "Asia/Chungking", "PRC"}


def zone_words(tz: str) -> str:
    """The zone for a header: ``北京时间 / Beijing time`` or ``Europe/Berlin 时间 / time``."""
    if tz in _BEIJING:
        return "北京时间 / Beijing time"
    return f"{tz} 时间 / time"


def zone_short(tz: str, at: str | dt.datetime | None = None) -> str:
    """A compact zone mark for narrow places (labels): ``北京时间`` or the zone's offset name
    at ``at`` (default: now) — a winter time in Berlin says UTC+0100 even in summer."""
    if tz in _BEIJING:
        return "北京时间"
    return (_as_datetime(at) or dt.datetime.now(UTC)).astimezone(ZoneInfo(tz)).strftime("UTC%z")


def _as_datetime(value: str | dt.datetime | None) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return parse_iso(str(value))
    except ValueError:
        return None


def human_time(value: str | dt.datetime | None, tz: str, *, seconds: bool = True) -> str:
    """A stored time as the station's wall clock: ``2026-12-01 18:23:25`` (no zone, no µs).

    Text that is not a time is returned unchanged, so a caller can pass any cell through.
    """
    t = _as_datetime(value)
    if t is None:
        return "" if value is None else str(value)
    fmt = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return t.astimezone(ZoneInfo(tz)).strftime(fmt)


def human_date(value: str | dt.datetime | None, tz: str) -> str:
    """The station-local calendar date of a stored time: ``2026-11-20``."""
    t = _as_datetime(value)
    if t is None:
        return "" if value is None else str(value)
    return t.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d")


def iso_local(value: str | dt.datetime | None, tz: str) -> str | None:
    """ISO 8601 with the station's offset, for JSON a person may also read:
    ``2026-12-01T18:23:25+08:00``."""
    t = _as_datetime(value)
    if t is None:
        return None
    return t.astimezone(ZoneInfo(tz)).isoformat(timespec="seconds")


def parse_local(text: str, tz: str) -> dt.datetime:
    """A date or time typed by a person: without an offset it is the station's wall clock
    (``2026-11-20`` → local midnight). Returns UTC."""
    return parse_iso(text, tz)


# The running command's station zone, registered by the CLI layer (``station.cli_util``), which
# imports this module (so this one never imports it).
DISPLAY_TZ: list[Callable[[], str]] = []
# The zone where no command is running (the daemon's threads, the web screens' requests): set
# from ``station.timezone`` by the daemon and the web app when they start.
_STATION_TZ = ["Asia/Shanghai"]


def set_station_zone(tz: str) -> None:
    """The station's zone for messages made outside a command (daemon threads, web requests)."""
    _STATION_TZ[0] = tz


def station_zone() -> str:
    return _STATION_TZ[0]


def said_time(value: str | dt.datetime | None, tz: str | None = None) -> str:
    """A time inside a message for people (errors raised by the stores, detail lines):
    ``2026-12-01 18:23:25 北京时间``. ``tz`` defaults to the running command's station zone
    (``station.timezone``), else the zone the daemon or web app set (``set_station_zone``),
    else Asia/Shanghai; never UTC ISO with microseconds."""
    if tz is None:
        tz = DISPLAY_TZ[0]() if DISPLAY_TZ else station_zone()
    when = _as_datetime(value)
    if when is None:
        return "" if value is None else str(value)
    return f"{human_time(value, tz)} {zone_short(tz, when)}"
