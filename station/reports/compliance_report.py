"""``station report compliance``: per officer and unit, recordings ingested later than the
deadline (R1 24 hours; R2 working days — which one counts is ``reports.late_rule``), and cases
whose AV records were not archived within the R13 deadline (30 days after closing)."""

from __future__ import annotations

import datetime as dt
import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from station.config import Settings
from station.oversight import stops
from station.oversight.duty import DutyIndex
from station.reports.common import LocalDates, disc_burned, disc_status
from station.reports.model import Chart, Report, Section
from station.reports.workdays import Calendar
from station.timeutil import human_time, to_iso

LATE_RULES = {
    "hours": "超过 {h} 小时 / later than {h} hours (R1)",
    "working-days": "超过 {d} 个工作日 / later than {d} working days (R2)",
    "either": "两项期限都未满足 / missed both {h} h and {d} working days (R1, R2)",
}


class _Tally:
    __slots__ = ("late", "late_h", "late_wd", "max_delay", "total", "unknown")

    def __init__(self) -> None:
        self.total = self.late = self.late_h = self.late_wd = self.unknown = 0
        self.max_delay = 0.0

    def add(self, other: _Tally) -> None:
        self.total += other.total
        self.late += other.late
        self.late_h += other.late_h
        self.late_wd += other.late_wd
        self.unknown += other.unknown
        self.max_delay = max(self.max_delay, other.max_delay)

    def row(self) -> dict[str, Any]:
        known = self.total - self.unknown
        return {
            "total": self.total,
            "late_h": self.late_h,
            "late_wd": self.late_wd,
            "late": self.late,
            "late_pct": round(100.0 * self.late / known, 1) if known else None,
            "unknown": self.unknown,
            "max_delay_h": round(self.max_delay / 3600.0, 1),
        }


METRICS = [
    ("total", "录像 / recordings"),
    ("late", "迟交 / late"),
    ("late_pct", "迟交率 % / late %"),
    ("late_h", "超时 / over hours (R1)"),
    ("late_wd", "超工作日 / over working days (R2)"),
    ("unknown", "无法判断 / unknown"),
    ("max_delay_h", "最长延迟 h / max delay h"),
]


def _archival_periods(db: Any, settings: Any) -> dict[str, tuple[str, str]]:
    """Per case: its 档号 (if given) and 保管期限 in archive words beside the station's rule."""
    from station.archive import numbers
    from station.retention.facts import load_cases
    from station.retention.policy import Policy, case_archival_period

    policy = Policy.from_settings(settings)
    out = {}
    given_numbers = numbers.lookup_all(db, numbers.KIND_CASE)  # one query, not one per case
    for number, facts in load_cases(db).items():
        given = given_numbers.get(number)
        period = case_archival_period(facts, policy, settings.archive.retention_scheme)
        words = given.retention_words if given else period.words
        out[number] = (given.number if given else "", f"{words}（{period.rule}）")
    return out


# Up to this many UTC hours (four years) between the first and the last end time of a period
# are all given a deadline row (a few µs each) instead of listing the hours that occur.
SPAN_HOURS = 4 * 366 * 24


class _Deadlines:
    """What makes an ingest late (R1 hours, R2 working days, R21 duty notes), shared by both
    scans; the R2 bound is cached per UTC hour of the end time."""

    def __init__(
        self,
        local: LocalDates,
        due_for: Callable[[dt.date], tuple[dt.date, str]],
        limit_s: float,
        rule: str,
        duty: DutyIndex,
    ) -> None:
        self.local, self.due_for, self.limit_s, self.rule, self.duty = (
            local,
            due_for,
            limit_s,
            rule,
            duty,
        )
        self.bound_of: dict[str, str | None] = {}

    def bound(self, hour: str) -> str | None:
        """R2: the UTC time (ISO) from which an ingest of footage ending in the UTC hour
        ``hour`` (``YYYY-MM-DDTHH``) is late, or None when a local midnight falls inside it."""
        if hour in self.bound_of:
            return self.bound_of[hour]
        day = self.local.hour_date(hour)
        bound = self.bound_of[hour] = self.due_for(day)[1] if day is not None else None
        return bound


# A late recording listed: its order in the period (ingested_at, rowid) and its row.
_Late = tuple[str, int, dict[str, Any]]


def _add_rows(
    rows: Iterable[tuple[int, str, Any, Any, Any, str, Any, Any]],
    dl: _Deadlines,
    pairs: dict[tuple[str, str], _Tally],
    late_rows: list[_Late],
    limit: int,
) -> int:
    """Tally ``rows`` (rowid, sha256, officer, unit, end_at, ingested_at, delay, session), in
    the period's order, into ``pairs``; list their late ones up to ``limit``; return how many
    were late."""
    local, due_for, limit_s, rule, duty = dl.local, dl.due_for, dl.limit_s, dl.rule, dl.duty
    bound_of = dl.bound_of
    late_total = 0
    for rowid, sha, officer, unit, end_at, ingested_at, delay, session in rows:
        key = (officer or "?", unit or "?")
        t = pairs.get(key)
        if t is None:
            t = pairs[key] = _Tally()
        t.total += 1
        if delay is None or end_at is None:
            t.unknown += 1
            continue
        over_h = delay > limit_s  # R1
        hour = end_at[:13]
        bound = bound_of[hour] if hour in bound_of else dl.bound(hour)
        if bound is None:
            bound = due_for(local.date(end_at))[1]
        over_wd = ingested_at >= bound  # R2
        duty_due = duty.deadline(officer, session, end_at) if duty else None
        if duty_due is not None:
            # R21: within 24 h after returning — one deadline for both rules.
            over_h = over_wd = ingested_at > duty_due
        late = (
            over_h
            if rule == "hours"
            else over_wd
            if rule == "working-days"
            else (over_h and over_wd)
        )
        t.late_h += over_h
        t.late_wd += over_wd
        t.late += late
        if delay > t.max_delay:
            t.max_delay = delay
        if late:
            late_total += 1
            if len(late_rows) < limit:
                late_rows.append(
                    (
                        ingested_at,
                        rowid,
                        {
                            "sha256": sha,
                            "officer": officer,
                            "unit": unit,
                            "end_at": end_at,
                            "ingested_at": ingested_at,
                            "delay_h": round(delay / 3600.0, 1),
                            "due": duty_due or due_for(local.date(end_at))[0].isoformat(),
                        },
                    )
                )
    return late_total


_ROW = (
    "r.rowid, r.sha256, r.officer_id, r.unit_id, r.end_at, r.ingested_at, r.ingest_delay_s,"
    " r.first_session_id"
)
_PERIOD = "r.ingested_at >= :since and r.ingested_at < :until"


def _scan_rows(
    db: sqlite_utils.Database, dl: _Deadlines, since: str, until: str, limit: int
) -> tuple[dict[tuple[str, str], _Tally], list[dict[str, Any]], int]:
    """Every recording ingested in the period, in ingest order, decided in Python."""
    pairs: dict[tuple[str, str], _Tally] = {}
    late: list[_Late] = []
    rows = db.execute(
        f"select {_ROW} from recordings r where {_PERIOD} order by r.ingested_at",
        {"since": since, "until": until},
    )
    late_total = _add_rows(rows, dl, pairs, late, limit)
    return pairs, [row for _, _, row in late], late_total


def _end_hours(db: sqlite_utils.Database, since: str, until: str) -> Iterator[str]:
    """The UTC hours (``YYYY-MM-DDTHH``) to give a deadline row: every hour between the
    period's first and last end time when at most ``SPAN_HOURS`` apart, else those that occur."""
    args = {"since": since, "until": until}
    first, last = db.execute(
        f"select min(r.end_at), max(r.end_at) from recordings r where {_PERIOD}"
        " and r.end_at >= '0000'",
        args,
    ).fetchone()
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    try:
        start = dt.datetime.fromisoformat(first[:13] + ":00:00+00:00")
        end = dt.datetime.fromisoformat(last[:13] + ":00:00+00:00")
    except (TypeError, ValueError):
        pass
    if start is not None and end is not None and end - start <= dt.timedelta(hours=SPAN_HOURS):
        step = dt.timedelta(hours=1)
        while start <= end:
            yield start.isoformat()[:13]
            start += step
        return
    for (hour,) in db.execute(
        f"select distinct substr(r.end_at, 1, 13) from recordings r where {_PERIOD}"
        " and r.end_at is not null",
        args,
    ):
        yield hour


def _scan_sql(
    db: sqlite_utils.Database, dl: _Deadlines, since: str, until: str, limit: int
) -> tuple[dict[tuple[str, str], _Tally], list[dict[str, Any]], int]:
    """``_scan_rows``'s answer with the tallying done by SQLite.

    A recording of unknown delay or end counts as unknown. A known one whose end lies in a UTC
    hour with one R2 bound (no local midnight inside; ``temp.comp_bounds``), with a numeric
    delay and no R21 duty note for its officer or session, is late by R1 when its delay exceeds
    the hours and by R2 when its ingest time (text, the station's ISO form) is at or after the
    bound: sums per (officer, unit) in SQL, its late rows listed by a second query in ingest
    order. The rest go through ``_add_rows`` and are merged in by (ingested_at, rowid), the
    order of the period's ``order by ingested_at`` (SQLite's sort keeps the scan's order for
    equal keys)."""
    conn = db.conn
    was_open = conn.in_transaction
    args: dict[str, object] = {"since": since, "until": until, "limit_s": dl.limit_s}
    for table in ("comp_bounds", "comp_duty_officers", "comp_duty_sessions"):
        conn.execute(f"drop table if exists temp.{table}")
    conn.execute("create temp table comp_bounds (hour text primary key, bound text) without rowid")
    conn.execute("create temp table comp_duty_officers (officer text primary key) without rowid")
    conn.execute("create temp table comp_duty_sessions (session primary key) without rowid")
    try:
        bounds = []
        for hour in _end_hours(db, since, until):
            try:
                bound = dl.bound(hour)
            except ValueError:  # not a time: its rows go through Python (and fail there)
                continue
            if bound is not None:
                bounds.append((hour, bound))
        conn.executemany("insert or ignore into temp.comp_bounds values (?, ?)", bounds)
        duty = "0"
        if dl.duty:  # R21: the recordings a duty note may cover are decided in Python
            conn.executemany(
                "insert or ignore into temp.comp_duty_officers values (?)",
                [(o,) for o in dl.duty.by_officer],
            )
            conn.executemany(
                "insert or ignore into temp.comp_duty_sessions values (?)",
                [(s,) for s in dl.duty.by_session],
            )
            duty = (
                "(coalesce(r.officer_id in (select officer from temp.comp_duty_officers), 0)"
                " or coalesce(r.first_session_id in"
                " (select session from temp.comp_duty_sessions), 0))"
            )
        if not was_open and conn.in_transaction:
            conn.commit()  # only the temporary tables were written
        join = "left join temp.comp_bounds b on b.hour = substr(r.end_at, 1, 13)"
        unknown = "(r.ingest_delay_s is null or r.end_at is null)"
        in_sql = (
            "(b.bound is not null and typeof(r.ingest_delay_s) in ('integer', 'real')"
            f" and not {duty})"
        )
        over_h = "(r.end_at is not null and r.ingest_delay_s > :limit_s)"  # R1
        over_wd = "(r.ingest_delay_s is not null and r.ingested_at >= b.bound)"  # R2
        late = {"hours": over_h, "working-days": over_wd}.get(dl.rule, f"({over_h} and {over_wd})")
        pairs: dict[tuple[str, str], _Tally] = {}
        late_total = 0
        for officer, unit, total, unk, late_h, late_wd, n_late, top in db.execute(
            f"select r.officer_id, r.unit_id, count(*), sum({unknown}), sum({over_h}),"
            f" sum({over_wd}), sum({late}),"
            " max(case when r.end_at is not null then r.ingest_delay_s end)"
            f" from recordings r {join} where {_PERIOD} and ({unknown} or {in_sql})"
            " group by r.officer_id, r.unit_id",
            args,
        ):
            key = (officer or "?", unit or "?")
            t = pairs.get(key)
            if t is None:
                t = pairs[key] = _Tally()
            t.total += total
            t.unknown += unk or 0
            t.late_h += late_h or 0
            t.late_wd += late_wd or 0
            t.late += n_late or 0
            late_total += n_late or 0
            if top is not None and top > t.max_delay:
                t.max_delay = top
        py_late: list[_Late] = []
        late_total += _add_rows(
            db.execute(
                f"select {_ROW} from recordings r {join} where {_PERIOD}"
                f" and not ({unknown} or {in_sql}) order by r.ingested_at, r.rowid",
                args,
            ),
            dl,
            pairs,
            py_late,
            limit,
        )
        sql_late: list[_Late] = []
        if limit > 0:
            local, due_for = dl.local, dl.due_for
            for rowid, sha, officer, unit, end_at, ingested_at, delay, _ in db.execute(
                f"select {_ROW} from recordings r {join} where {_PERIOD}"
                f" and not {unknown} and {in_sql} and {late}"
                " order by r.ingested_at, r.rowid limit :limit",
                {**args, "limit": limit},
            ):
                sql_late.append(
                    (
                        ingested_at,
                        rowid,
                        {
                            "sha256": sha,
                            "officer": officer,
                            "unit": unit,
                            "end_at": end_at,
                            "ingested_at": ingested_at,
                            "delay_h": round(delay / 3600.0, 1),
                            "due": due_for(local.date(end_at))[0].isoformat(),
                        },
                    )
                )
        merged = heapq.merge(py_late, sql_late, key=lambda e: (e[0], e[1]))
        late_rows = [row for _, (_, _, row) in zip(range(max(limit, 0)), merged, strict=False)]
    finally:
        if conn.in_transaction and not was_open:
            conn.rollback()
        for table in ("comp_bounds", "comp_duty_officers", "comp_duty_sessions"):
            conn.execute(f"drop table if exists temp.{table}")
    return pairs, late_rows, late_total


def build_compliance(
    db: sqlite_utils.Database,
    settings: Settings,
    *,
    now: dt.datetime,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 200,
    fast: bool = True,
) -> Report:
    """The compliance report. ``fast``: tally the recordings in SQL (``_scan_sql``); False:
    row by row in Python (``_scan_rows``, the reference the fast path is tested against)."""
    since = since or now - dt.timedelta(days=30)
    until = until or now
    rep = settings.reports
    hours = settings.ingest.deadline_hours
    wdays = settings.ingest.deadline_working_days
    limit_s = hours * 3600.0
    cal = Calendar.from_strings(rep.holidays, rep.makeup_workdays)
    local = LocalDates(settings.station.timezone)
    tz = ZoneInfo(settings.station.timezone)
    due_of: dict[dt.date, tuple[dt.date, str]] = {}

    def due_for(day: dt.date) -> tuple[dt.date, str]:
        """The R2 due date for footage ending on local ``day``, and the UTC time (ISO) from
        which an ingest is late: the local midnight after the due date."""
        hit = due_of.get(day)
        if hit is None:
            due = cal.deadline(day, wdays)
            start = dt.datetime.combine(due + dt.timedelta(days=1), dt.time(), tz)
            hit = due_of[day] = (due, to_iso(start))
        return hit

    rule = rep.late_rule
    deadlines = _Deadlines(local, due_for, limit_s, rule, DutyIndex(db))  # R21: duty notes
    scan = _scan_sql if fast else _scan_rows
    pairs, late_rows, late_total = scan(db, deadlines, to_iso(since), to_iso(until), limit)
    officers: dict[str, _Tally] = defaultdict(_Tally)
    units: dict[str, _Tally] = defaultdict(_Tally)
    for (officer_key, unit_key), t in pairs.items():
        officers[officer_key].add(t)
        units[unit_key].add(t)
    names = dict(db.execute("select officer_id, name from officers").fetchall())
    unit_names = dict(db.execute("select unit_id, name from units").fetchall())
    officer_rows = [
        {"officer": k, "name": names.get(k), **t.row()} for k, t in sorted(officers.items())
    ]
    unit_rows = [
        {"unit": k, "name": unit_names.get(k), **t.row()} for k, t in sorted(units.items())
    ]
    rule_text = LATE_RULES[rule].format(h=f"{hours:g}", d=wdays)

    # R13: cases closed more than archive_days ago whose AV record is not archived yet.
    discs = disc_status(db)
    days = rep.archive_days
    soon = to_iso(now + dt.timedelta(days=7))
    case_rows = []
    overdue_cases = 0
    periods = _archival_periods(db, settings)
    for number, name, closed_at, location in db.execute(
        "select number, name, closed_at, archive_location from cases"
        " where status = 'closed' and closed_at is not null order by closed_at"
    ):
        if location or disc_burned(discs.get(number)):  # R13: on the shelf, or a slip
            continue
        due_at = dt.datetime.fromisoformat(closed_at) + dt.timedelta(days=days)
        if to_iso(due_at) > soon:
            continue
        overdue = due_at <= now
        overdue_cases += overdue
        case_rows.append(
            {
                "number": number,
                "name": name,
                "closed_at": closed_at,
                "due": to_iso(due_at),
                "status": f"逾期 {(now - due_at).days} 天 / overdue by {(now - due_at).days} d"
                if overdue
                else f"{(due_at - now).days} 天内到期 / due in {(due_at - now).days} d",
                "discs": discs.get(number, "未刻录 / not burned"),
                "archive_number": periods.get(number, ("", ""))[0] or "-",
                "retention_period": periods.get(number, ("", ""))[1],
            }
        )
    stop_rows = [
        {
            "id": n["id"],
            "officer_id": n["officer_id"],
            "stopped_at": n["stopped_at"],
            "resumed_at": n["resumed_at"],
            "situation": n["situation_text"],
            "reason": n["reason"],
            "state": n["state_text"],
            "decided_by": n["decided_by"],
        }
        for n in (
            stops.list_notes(db, since=to_iso(since), until=to_iso(until))
            if "stop_notes" in db.table_names()
            else []
        )
    ]
    zone = settings.station.timezone  # people read the period on the station's clock
    period = f"{human_time(since, zone, seconds=False)} – {human_time(until, zone, seconds=False)}"
    sections = [
        Section(
            "units",
            "按单位 / per unit",
            [("unit", "单位 / unit"), ("name", "名称 / name"), *METRICS],
            unit_rows,
            note=f"迟交标准 / late means: {rule_text}",
            charts=[
                Chart(
                    "bar",
                    "各单位迟交数 / late ingests per unit",
                    [str(r["name"] or r["unit"]) for r in unit_rows],
                    [float(r["late"]) for r in unit_rows],
                    "段 / clips",
                )
            ],
        ),
        Section(
            "officers",
            "按执法人员 / per officer",
            [("officer", "执法证号 / certificate no."), ("name", "姓名 / name"), *METRICS],
            officer_rows,
        ),
        Section(
            "late",
            "迟交录像 / late recordings",
            [
                ("sha256", "录像编号 / recording id"),
                ("officer", "执法证号 / certificate no."),
                ("unit", "单位 / unit"),
                ("end_at", "录制结束 / ended"),
                ("ingested_at", "采集 / ingested"),
                ("delay_h", "延迟 h / delay h"),
                ("due", "工作日期限 / working-day due"),
            ],
            late_rows,
            total_rows=late_total,
        ),
        Section(
            "cases",
            f"结案 {days} 天内未归档的案件 / cases not archived within {days} days (R13)",
            [
                ("number", "案件编号 / case"),
                ("name", "名称 / name"),
                ("closed_at", "结案 / closed"),
                ("due", "归档期限 / due"),
                ("status", "状态 / status"),
                ("discs", "光盘 / discs"),
                ("archive_number", "档号 / archive number"),
                ("retention_period", "保管期限 / retention period"),
            ],
            case_rows,
            note=(
                "已归档 = 两份光盘均已刻录，或已登记存储位置说明 / archived = both disc copies "
                "burned (R12), or a storage-location slip (`station cases slip --location`)"
            ),
        ),
        Section(
            "stops",
            "停止记录说明 / stop-recording notes (002 附件1 第十六条, R18)",
            [
                ("id", "编号 / no."),
                ("officer_id", "执法证号 / certificate no."),
                ("stopped_at", "停止 / stopped"),
                ("resumed_at", "恢复 / resumed"),
                ("situation", "情形 / situation"),
                ("reason", "原因和依据 / reason"),
                ("state", "审核 / state"),
                ("decided_by", "审核人 / by"),
            ],
            stop_rows,
        ),
    ]
    total = sum(t.total for t in units.values())
    summary: list[tuple[str, Any]] = [
        ("期间 / period", period),
        ("迟交标准 / late means", rule_text),
        ("采集录像 / recordings ingested", total),
        ("迟交 / late", late_total),
        ("迟交率 % / late %", round(100.0 * late_total / total, 1) if total else None),
        (f"逾期未归档案件 / cases overdue for archiving (R13, {days} d)", overdue_cases),
        (
            "停止记录说明待审核 / stop notes waiting for the head (R18)",
            sum(1 for n in stop_rows if n["state"].startswith("待审核")),
        ),
    ]
    return Report(
        "compliance",
        "合规报表 / Compliance report",
        to_iso(now),
        {"since": to_iso(since), "until": to_iso(until), "late_rule": rule},
        summary,
        sections,
    )
