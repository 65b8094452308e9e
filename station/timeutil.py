"""Times: stored in UTC as ISO 8601 strings with a trailing Z (DESIGN.md invariant 6).

The fixed format ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` sorts lexicographically in time order, so SQL
range queries on it are plain string comparisons.
"""

from __future__ import annotations

import datetime as dt
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
