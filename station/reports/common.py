"""Small helpers the report builders share."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

import sqlite_utils

GB = 1_000_000_000


def table_exists(db: sqlite_utils.Database, name: str) -> bool:
    """A table or a view of that name exists."""
    return (
        db.execute(
            "select 1 from sqlite_master where type in ('table', 'view') and name = ?", [name]
        ).fetchone()
        is not None
    )


def columns(db: sqlite_utils.Database, name: str) -> set[str]:
    return {row[1] for row in db.execute(f"pragma table_info({name})")}


# Where the disc part says, per case and copy, whether its discs are verified (R12): its view
# ``disc_case_copies`` (case_number, copy, verified, burned, location), else a plain ``discs``
# table (case_number, copy, verified). The reports work without either.
_DISC_SOURCES = ("disc_case_copies", "discs")


def disc_status(db: sqlite_utils.Database) -> dict[str, str]:
    """Per case number, the disc copies made (R12) as text, e.g. "A✓ B✓" or "A✓ B✗", with
    "burned" and the storage location when the disc part knows them."""
    for source in _DISC_SOURCES:
        if table_exists(db, source) and {"case_number", "copy", "verified"} <= columns(db, source):
            break
    else:
        return {}
    cols = columns(db, source)
    burned = "burned" if "burned" in cols else "0"
    location = "location" if "location" in cols else "null"
    found: dict[str, dict[str, tuple[bool, bool, str | None]]] = {}
    for number, copy, verified, was_burned, where in db.execute(
        f"select case_number, copy, verified, {burned}, {location} from {source}"
        " where case_number is not null"
    ):
        copies = found.setdefault(number, {})
        old = copies.get(str(copy), (False, False, None))
        copies[str(copy)] = (
            old[0] or bool(verified),
            old[1] or bool(was_burned),
            old[2] or where,
        )
    out = {}
    for number, copies in found.items():
        text = " ".join(f"{c}{'✓' if ok else '✗'}" for c, (ok, _, _) in sorted(copies.items()))
        if copies and all(b for _, b, _ in copies.values()):
            text += " 已刻录 / burned"
        places = sorted({w for _, _, w in copies.values() if w})
        if places:
            text += " @ " + ", ".join(places)
        out[number] = text
    return out


def disc_complete(status: str | None) -> bool:
    """Two verified copies (R12: 一式两份)."""
    return status is not None and status.count("✓") >= 2


def disc_burned(status: str | None) -> bool:
    """Two verified copies, both burned (R13: images built but never burned are not
    archived)."""
    return disc_complete(status) and status is not None and "已刻录" in status


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

    def hour_date(self, prefix: str) -> dt.date | None:
        """The local date of every instant in the UTC hour ``YYYY-MM-DDTHH``, or None when a
        local midnight falls inside that hour."""
        return self._by_hour(prefix)

    def date(self, iso: str) -> dt.date:
        d = self._by_hour(iso[:13])
        if d is not None:
            return d
        return dt.datetime.fromisoformat(iso).astimezone(self.tz).date()
