"""Search recordings by any tag of R6: unit, department, device, officer, time, case number,
case party, case cause — and by category, hold, long-term mark and state."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from station.access.departments import DEPARTMENT_SQL
from station.catalog.where import Where
from station.timeutil import to_iso


@dataclass(frozen=True)
class Filters:
    unit: str | None = None  # unit number, or part of the unit's name
    department: str | None = None  # part of the unit's or the case's department
    device: str | None = None
    officer: str | None = None
    since: dt.datetime | None = None  # recorded at or after
    until: dt.datetime | None = None  # recorded before
    case: str | None = None  # exact case number
    party: str | None = None  # part of a linked case's party
    cause: str | None = None  # part of a linked case's cause (案由)
    category: str | None = None
    held: bool | None = None
    long_term: bool | None = None
    state: str | None = None  # stored | pending_purge | purged


def build_query(f: Filters, limit: int) -> tuple[str, list[Any]]:
    """The SQL for ``f`` (pure: easy to test, no catalog needed)."""
    w = Where()
    w.given(
        f.unit,
        "(r.unit_id = ? or r.unit_id in (select unit_id from units where instr(name, ?) > 0))",
    )
    # R6: the recording's own department, else its case's, officer's or unit's.
    w.given(f.department, f"instr({DEPARTMENT_SQL}, ?) > 0")
    w.given(f.device, "r.device_id = ?")
    w.given(f.officer, "r.officer_id = ?")
    w.given(f.since and to_iso(f.since), "r.recorded_at >= ?")
    w.given(f.until and to_iso(f.until), "r.recorded_at < ?")
    w.given(f.case, "r.sha256 in (select sha256 from case_recordings where case_number = ?)")
    for column, value in (("party", f.party), ("cause", f.cause)):
        w.given(
            value,
            "r.sha256 in (select l.sha256 from case_recordings l join cases c"
            f" on c.number = l.case_number where instr(c.{column}, ?) > 0)",
        )
    w.given(f.category, "r.category = ?")
    w.switch(
        f.held,
        "exists (select 1 from holds h where h.sha256 = r.sha256 and h.released_at is null)",
    )
    w.switch(
        f.long_term,
        "(exists (select 1 from recording_marks m where m.sha256 = r.sha256"
        " and m.long_term_reason is not null) or exists (select 1 from case_recordings l"
        " join cases c on c.number = l.case_number where l.sha256 = r.sha256"
        " and c.long_term_reason is not null))",
    )
    w.given(f.state, "r.state = ?")
    sql = (
        "select r.sha256, r.recorded_at, r.unit_id, u.name as unit_name, r.device_id,"
        " r.officer_id, r.category, r.proves, r.state, r.size,"
        f" {DEPARTMENT_SQL} as department,"
        " (select group_concat(case_number, ' | ') from case_recordings l"
        "  where l.sha256 = r.sha256) as cases"
        " from recordings r left join units u on u.unit_id = r.unit_id"
        + w.sql
        + " order by r.recorded_at, r.sha256 limit ?"
    )
    return sql, [*w.args, limit]


def search(db: sqlite_utils.Database, f: Filters, *, limit: int = 1000) -> list[dict[str, Any]]:
    sql, args = build_query(f, limit)
    return list(db.query(sql, args))
