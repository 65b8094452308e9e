"""``station report compliance``: per officer and unit, recordings ingested later than the
deadline (R1 24 hours; R2 working days — which one counts is ``reports.late_rule``), and cases
whose AV records were not archived within the R13 deadline (30 days after closing)."""

from __future__ import annotations

import datetime as dt
import heapq
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from station.catalog.db import read_ahead
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


# Late rows gathered beyond twice the list's limit before the surplus is dropped.
PRUNE_SLACK = 10_000


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


def build_compliance(
    db: sqlite_utils.Database,
    settings: Settings,
    *,
    now: dt.datetime,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 200,
) -> Report:
    read_ahead(db)  # the period's scan reads the whole recordings table (no ingest-time index)
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

    # Per UTC hour of the end time: the late-from bound, when the hour holds no local midnight.
    bound_of: dict[str, str | None] = {}
    pairs: dict[tuple[str, str], _Tally] = {}
    # Late recordings as (ingested_at, rowid, …): the list shows the first ``limit`` in ingest
    # order, ties in rowid order — what ``order by ingested_at`` gives (SQLite's sort keeps the
    # scan's order for equal keys); the scan itself is unsorted (no sort of the whole period).
    late_found: list[tuple[str, int, str, Any, Any, str, float, str | None]] = []
    late_total = 0
    rule = rep.late_rule
    duty = DutyIndex(db)  # R21: remote/continuous duty moves the deadline
    has_duty = bool(duty)
    keep = max(limit, 0)
    prune_at = 2 * keep + PRUNE_SLACK
    for rowid, sha, officer, unit, end_at, ingested_at, delay, session in db.execute(
        "select rowid, sha256, officer_id, unit_id, end_at, ingested_at, ingest_delay_s,"
        " first_session_id from recordings"
        " where ingested_at >= ? and ingested_at < ?",
        [to_iso(since), to_iso(until)],
    ):
        key = (officer or "?", unit or "?")
        t = pairs.get(key)
        if t is None:
            t = pairs[key] = _Tally()
        t.total += 1
        if delay is None or end_at is None:
            t.unknown += 1
            continue
        over_h = delay > limit_s
        hour = end_at[:13]
        if hour in bound_of:
            bound = bound_of[hour]
        else:
            day = local.hour_date(hour)
            bound = bound_of[hour] = due_for(day)[1] if day is not None else None
        if bound is None:
            bound = due_for(local.date(end_at))[1]
        over_wd = ingested_at >= bound
        duty_due = duty.deadline(officer, session, end_at) if has_duty else None
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
            late_found.append((ingested_at, rowid, sha, officer, unit, end_at, delay, duty_due))
            if len(late_found) > prune_at:  # memory bounded by the limit, not by the period
                late_found = heapq.nsmallest(keep, late_found)
    late_rows: list[dict[str, Any]] = [
        {
            "sha256": sha,
            "officer": officer,
            "unit": unit,
            "end_at": end_at,
            "ingested_at": ingested_at,
            "delay_h": round(delay / 3600.0, 1),
            "due": duty_due or due_for(local.date(end_at))[0].isoformat(),
        }
        for ingested_at, _, sha, officer, unit, end_at, delay, duty_due in heapq.nsmallest(
            keep, late_found
        )
    ]
    del late_found
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
