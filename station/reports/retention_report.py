"""``station report retention``: what expires in the next N days and why, what is held and why,
long-term cases with their disc status, storage per retention class, and a free-space forecast
(R9, R10, R11, R12, R17). Pure over the catalog and the disk figures it is given."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from station.catalog.db import read_ahead
from station.config import Settings
from station.log import get
from station.reports.common import GB, disc_status
from station.reports.model import Chart, Report, Section
from station.retention import tally
from station.retention.facts import iter_decisions
from station.retention.policy import RULE_LABELS, RULES, Decider, Policy, reasons_text
from station.timeutil import to_iso

log = get()
PENDING = tally.PENDING


def _label(rule: str) -> str:
    zh, en = RULE_LABELS.get(rule, ("待删", "pending purge"))
    return f"{zh} / {en}"


def _totals(
    db: sqlite_utils.Database,
    decider: Decider,
    now: dt.datetime,
    horizon: dt.datetime,
    grace: int,
    forecast_days: int,
    pending_after: dict[str, Any],
    exact: bool,
    limit: int,
) -> tally.Totals:
    """The sums over every stored or pending recording: from the tallies when they are there
    and agree with the rows read beside them, else (or ``exact``) one decision per recording."""
    if not exact and tally.usable(db):
        totals = tally.Totals(now, horizon, grace, forecast_days, pending_after)
        try:
            n = tally.fill_from_tallies(db, decider, totals, limit)
        except tally.TallyDrift as exc:
            log.warning("report.retention.tally_drift", detail=str(exc))
        else:
            log.debug("report.retention.from_tallies", one_by_one=n)
            return totals
    totals = tally.Totals(now, horizon, grace, forecast_days, pending_after)
    read_ahead(db)  # every recording is read: the disk reads overlap the decisions
    for d, row in iter_decisions(db, decider):
        totals.add(d, row.size, row.state)
    return totals


def build_retention(
    db: sqlite_utils.Database,
    settings: Settings,
    *,
    now: dt.datetime,
    days: int = 30,
    limit: int = 200,
    disk: tuple[int, int] | None = None,  # (total, free) bytes of the vault's file system
    exact: bool = False,  # decide every recording (the reference), not from the tallies
) -> Report:
    """The report, every part of it read from one state of the catalog (one read transaction:
    the tallies and the rows read beside them agree while the daemon writes)."""
    with tally.snapshot(db):
        return _build(db, settings, now, days, limit, disk, exact)


def _build(
    db: sqlite_utils.Database,
    settings: Settings,
    now: dt.datetime,
    days: int,
    limit: int,
    disk: tuple[int, int] | None,
    exact: bool,
) -> Report:
    policy = Policy.from_settings(settings)
    tz = ZoneInfo(policy.timezone)
    decider = Decider(policy, now)
    horizon = now + dt.timedelta(days=days)
    forecast_days = settings.reports.forecast_days
    grace = settings.retention.grace_days
    as_of = to_iso(now)
    pending_after = {
        sha: after
        for sha, after in db.execute(
            "select sha256, purge_after from retention_items where state = 'pending'"
        )
    }
    totals = _totals(db, decider, now, horizon, grace, forecast_days, pending_after, exact, limit)
    count, size, freed_by_day = totals.count, totals.size, totals.freed_by_day
    expiring = totals.expiring
    exp_count, exp_bytes = totals.exp_count, totals.exp_bytes
    overdue, overdue_bytes = totals.overdue, totals.overdue_bytes
    expiring.sort()

    # Expiring within N days, with a per-week chart.
    weeks = totals.weeks
    n_weeks = max(1, (days + 6) // 7)
    exp_section = Section(
        "expiring",
        f"{days} 天内到期 / expiring within {days} days",
        [
            ("sha256", "录像编号 / recording id"),
            ("keep_until", "保存至 / kept until"),
            ("rule", "规则 / rule"),
            ("reason", "理由 / why"),
            ("size_mb", "大小 MB / size MB"),
        ],
        [
            {"sha256": s, "keep_until": u, "rule": r, "reason": why, "size_mb": round(b / 1e6, 1)}
            for u, s, b, r, why in expiring[:limit]
        ],
        note=(
            f"到期后进入待删区，宽限 {grace} 天后删除并保留墓碑记录 / after expiry, footage waits "
            f"{grace} days in pending-purge, then is deleted with a tombstone kept (R9)"
        ),
        charts=[
            Chart(
                "bar",
                "每周到期 / expiring per week",
                [f"第{w + 1}周 / week {w + 1}" for w in range(n_weeks)],
                [float(weeks.get(w, 0)) for w in range(n_weeks)],
                "段 / clips",
            )
        ],
        total_rows=exp_count,
    )

    # What is held and why: active legal holds, then long-term marks on single recordings.
    held_rows: list[dict[str, Any]] = [
        {"sha256": sha, "kind": "法律保全 / legal hold", "reason": reason, "by": by, "since": at}
        for sha, reason, by, at in db.execute(
            "select h.sha256, h.reason, h.placed_by, h.placed_at from holds h join recordings r"
            " on r.sha256 = h.sha256 where h.released_at is null and r.state != 'purged'"
            " order by h.placed_at limit ?",
            [limit],
        )
    ]
    for sha, code, codes, note, by, at in db.execute(
        "select sha256, long_term_reason, long_term_reasons, long_term_note, long_term_by,"
        " long_term_at from recording_marks where long_term_reason is not null"
        " order by long_term_at limit ?",
        [limit],
    ):
        held_rows.append(
            {
                "sha256": sha,
                "kind": "长期保存 / long-term (R11)",
                "reason": reasons_text(json.loads(codes) if codes else [code])
                + (f" — {note}" if note else ""),
                "by": by,
                "since": at,
            }
        )
    held_section = Section(
        "held",
        "保全与长期保存的录像 / held and long-term recordings",
        [
            ("sha256", "录像编号 / recording id"),
            ("kind", "类别 / kind"),
            ("reason", "理由 / why"),
            ("by", "操作人 / by"),
            ("since", "自 / since"),
        ],
        held_rows,
        note=(
            f"案件未结而保存 / kept for open cases: {count['R10-open']}; "
            f"重要标记待审 / important marker not reviewed: {count['important']}"
        ),
    )

    # Long-term cases and their discs (R11, R12).
    discs = disc_status(db)
    lt_rows = []
    cols = (
        "select c.number, c.name, c.long_term_reason, c.long_term_reasons, c.kind, c.status,"
        " c.closed_at,"
    )
    per_case = totals.per_case
    if per_case is None:
        lt_sql = (
            cols + " count(r.sha256), coalesce(sum(r.size), 0) from cases c"
            " left join case_recordings l on l.case_number = c.number"
            " left join recordings r on r.sha256 = l.sha256 and r.state != 'purged'"
            " where c.long_term_reason is not null group by c.number order by c.long_term_at"
        )
    else:  # the same rows in the same order (same scan, same sort); counts from the tallies
        lt_sql = (
            cols + " 0, 0 from cases c where c.long_term_reason is not null"
            " group by c.number order by c.long_term_at"
        )
    for number, name, code, codes, kind, status, closed, n, b in db.execute(lt_sql):
        if per_case is not None:
            n, b = per_case.get(number, (0, 0))
        lt_rows.append(
            {
                "number": number,
                "name": name + ("（执法活动 / activity）" if kind == "activity" else ""),
                "reason": reasons_text(json.loads(codes) if codes else [code]),
                "status": {"open": "未结 / open", "closed": "已结 / closed"}.get(status, status),
                "closed_at": closed,
                "recordings": n,
                "size_mb": round(b / 1e6, 1),
                "discs": discs.get(number, "未刻录 / not burned"),
            }
        )
    lt_section = Section(
        "long_term_cases",
        "长期保存案件及光盘 / long-term cases and their discs (R11, R12)",
        [
            ("number", "案件编号 / case"),
            ("name", "名称 / name"),
            ("reason", "理由 / reason"),
            ("status", "状态 / status"),
            ("recordings", "录像 / recordings"),
            ("size_mb", "大小 MB / size MB"),
            ("discs", "光盘 / discs"),
        ],
        lt_rows,
    )

    # Storage per class.
    classes = [r for r in (*RULES, PENDING) if count[r]]
    storage_section = Section(
        "storage",
        "按保存类别的存储占用 / storage used per retention class",
        [
            ("class", "类别 / class"),
            ("recordings", "录像 / recordings"),
            ("size_gb", "大小 GB / size GB"),
        ],
        [
            {"class": _label(r), "recordings": count[r], "size_gb": round(size[r] / GB, 3)}
            for r in classes
        ],
        charts=[
            Chart(
                "bar",
                "存储占用 / storage per class",
                [_label(r) for r in classes],
                [round(size[r] / GB, 3) for r in classes],
                "GB",
            )
        ],
    )

    # Free-space forecast: ingest at the last 30 days' rate, minus what the executor frees.
    since = to_iso(now - dt.timedelta(days=30))
    if exact or not tally.usable(db):
        ingested_30 = db.execute(
            "select coalesce(sum(size), 0) from recordings"
            " where ingested_at >= ? and ingested_at < ?",
            [since, as_of],
        ).fetchone()[0]
    else:
        ingested_30 = tally.ingested_between(db, since, as_of)
    rate = ingested_30 / 30.0
    forecast_rows: list[dict[str, Any]] = []
    full_in: int | str = "—"
    chart_labels: list[str] = []
    chart_vals: list[float] = []
    if disk is not None:
        free = disk[1]
        freed = 0
        full_in = f"> {forecast_days}"
        for day in range(forecast_days + 1):
            freed += freed_by_day.get(day, 0)
            projected = free - rate * day + freed
            if projected <= 0 and isinstance(full_in, str):
                full_in = day
            if day % 7 == 0 or day == forecast_days:
                date = (now + dt.timedelta(days=day)).astimezone(tz).date().isoformat()
                forecast_rows.append(
                    {
                        "day": day,
                        "date": date,
                        "free_gb": round(projected / GB, 3),
                        "freed_gb": round(freed / GB, 3),
                    }
                )
                chart_labels.append(date[5:])
                chart_vals.append(round(projected / GB, 3))
    forecast_section = Section(
        "forecast",
        f"剩余空间预测（{forecast_days} 天）/ free space forecast ({forecast_days} days)",
        [
            ("day", "天 / day"),
            ("date", "日期 / date"),
            ("free_gb", "剩余 GB / free GB"),
            ("freed_gb", "累计清理 GB / freed GB"),
        ],
        forecast_rows,
        note=(
            f"按近 30 天采集速度 {rate / GB:.3f} GB/天，扣除到期清理 / at the last 30 days' "
            f"ingest rate of {rate / GB:.3f} GB/day, less what retention frees"
        ),
        charts=[Chart("line", "剩余空间 / free space", chart_labels, chart_vals, "GB")]
        if chart_vals
        else [],
    )

    total_n = sum(count.values())
    proposed = (
        db.execute("select count(*) from purge_proposals where state = 'proposed'").fetchone()[0]
        if "purge_proposals" in db.table_names()
        else 0
    )
    summary: list[tuple[str, Any]] = [
        ("截至 / as of", as_of),
        ("在库录像 / recordings kept", total_n - count[PENDING]),
        ("占用 GB / stored GB", round((sum(size.values()) - size[PENDING]) / GB, 3)),
        (f"{days} 天内到期 / expiring within {days} days", exp_count),
        (f"{days} 天内到期 GB / GB expiring", round(exp_bytes / GB, 3)),
        ("已到期未处理 / expired, awaiting the executor", overdue),
        ("待负责人批准清除 / proposed, awaiting a supervisor (R9)", proposed),
        ("未分类，不按例行清除 / unclassified, never routine (R9)", count["R9-unclassified"]),
        ("待删（宽限期）/ pending purge (grace)", count[PENDING]),
        ("长期保存案件 / long-term cases", len(lt_rows)),
        ("保全中 / legal holds", count["hold"]),
    ]
    if disk is not None:
        summary += [
            ("磁盘容量 GB / disk size GB", round(disk[0] / GB, 3)),
            ("当前剩余 GB / free GB now", round(disk[1] / GB, 3)),
            ("预计写满天数 / days until full", full_in),
        ]
    return Report(
        "retention",
        "保存期报表 / Retention report",
        as_of,
        {"days": days, "limit": limit, "overdue_bytes": overdue_bytes},
        summary,
        [exp_section, held_section, lt_section, storage_section, forecast_section],
    )
