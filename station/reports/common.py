"""Small helpers the report builders share."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

import sqlite_utils

GB = 1_000_000_000


def table_exists(db: sqlite_utils.Database, name: str) -> bool:
    return (
        db.execute(
            "select 1 from sqlite_master where type = 'table' and name = ?", [name]
        ).fetchone()
        is not None
    )


def columns(db: sqlite_utils.Database, name: str) -> set[str]:
    return {row[1] for row in db.execute(f"pragma table_info({name})")}


def disc_status(db: sqlite_utils.Database) -> dict[str, str]:
    """Per case number, the disc copies made (R12) as text, e.g. "A✓ B✓" or "A✓ B✗".

    Read from the disc part's ``discs`` table (case_number, copy, verified) when it exists; the
    report works without it."""
    if not table_exists(db, "discs") or not {"case_number", "copy", "verified"} <= columns(
        db, "discs"
    ):
        return {}
    found: dict[str, dict[str, bool]] = {}
    for number, copy, verified in db.execute(
        "select case_number, copy, verified from discs where case_number is not null"
    ):
        copies = found.setdefault(number, {})
        copies[str(copy)] = copies.get(str(copy), False) or bool(verified)
    return {
        n: " ".join(f"{c}{'✓' if ok else '✗'}" for c, ok in sorted(copies.items()))
        for n, copies in found.items()
    }


def disc_complete(status: str | None) -> bool:
    """Two verified copies (R12: 一式两份)."""
    return bool(status) and status.count("✓") >= 2  # type: ignore[union-attr]


class LocalDates:
    """UTC ISO strings → local calendar dates, cached per UTC hour (exact for every zone: an
    hour whose start and end fall on different local dates is computed row by row)."""

    def __init__(self, tz: str) -> None:
        self.tz = ZoneInfo(tz)
        self._by_hour = lru_cache(maxsize=200_000)(self._hour)

    def _hour(self, prefix: str) -> dt.date | None:
        start = dt.datetime.fromisoformat(prefix + ":00:00+00:00")
        a = start.astimezone(self.tz).date()
        b = (start + dt.timedelta(minutes=59, seconds=59.999999)).astimezone(self.tz).date()
        return a if a == b else None

    def date(self, iso: str) -> dt.date:
        d = self._by_hour(iso[:13])
        if d is not None:
            return d
        return dt.datetime.fromisoformat(iso).astimezone(self.tz).date()
