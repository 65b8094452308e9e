"""``station report devices``: per recorder, battery at dock, clock drift history, failed
sessions, last seen, and what needs a look (R3 checks at every dock, R4 faulty devices)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import sqlite_utils

from station.config import Settings
from station.reports.model import Chart, Report, Section
from station.timeutil import to_iso
from station.usb_dock.gaps import GAP_KINDS, list_gaps
from station.usb_dock.service import INSPECT_DAYS, STATES, last_inspections, late_repairs

HISTORY = 20  # sessions of drift history per device
# Session flag codes as people read them (the codes stay in the JSON for machines).
FLAG_LABELS = {
    "auth_failed": "身份验证失败",
    "battery_low": "电量低",
    "battery_unknown": "电量未知",
    "clock_drift": "时钟偏差",
    "clock_implausible": "时钟不可信",
    "clock_unknown": "时钟未知",
    "device_error": "处理失败",
    "device_in_repair": "送修中拒绝接入",
    "device_retired": "已报废拒绝接入",
    "duplicate_id": "编号重复",
    "files_failed": "文件失败",
    "identity_invalid": "身份信息错误",
    "interrupted": "中断",
    "officer_mismatch": "执法证号不符",
    "sequence_gap": "序号缺口",
    "storage_full": "存储将满",
    "storage_unknown": "存储未知",
    "timeline_gap": "时间线倒退",
    "unit_mismatch": "单位不符",
    "unknown_device": "未登记设备",
    "vault_full": "保管库已满",
}


def build_devices(
    db: sqlite_utils.Database,
    settings: Settings,
    *,
    now: dt.datetime,
    days: int = 90,
) -> Report:
    since = to_iso(now - dt.timedelta(days=days))
    low = settings.dock.battery_low_pct
    drift_max = settings.dock.drift_threshold_s
    stats: dict[str, dict[str, Any]] = {}
    for row in db.query(
        "select device_id, count(*) as sessions,"
        " sum(state in ('failed', 'interrupted', 'refused')) as failed,"
        " sum(files_failed) as files_failed,"
        " max(started_at) as last_session,"
        " min(battery_pct) as min_battery,"
        " sum(battery_pct < :low) as low_battery,"
        " max(abs(drift_s)) as max_drift,"
        " sum(abs(drift_s) > :drift) as drift_over"
        " from sessions where device_id is not null and started_at >= :since"
        " group by device_id",
        {"low": low, "drift": drift_max, "since": since},
    ):
        stats[row["device_id"]] = row
    last: dict[str, tuple[int | None, float | None]] = {}
    history: dict[str, list[float]] = defaultdict(list)
    for device, battery, drift, rn in db.execute(
        "select device_id, battery_pct, drift_s, rn from (select device_id, battery_pct,"
        " drift_s, started_at, row_number() over (partition by device_id"
        " order by started_at desc, id desc) as rn from sessions"
        " where device_id is not null and started_at >= ?) where rn <= ?"
        " order by device_id, started_at",
        [since, HISTORY],
    ):
        if rn == 1:
            last[device] = (battery, drift)
        if drift is not None:
            history[device].append(float(drift))
    flags: dict[str, list[str]] = defaultdict(list)
    for device, code, n in db.execute(
        "select s.device_id, json_extract(f.value, '$.code'), count(*) from sessions s,"
        " json_each(s.flags) f where s.device_id is not null and s.started_at >= ?"
        " group by 1, 2 order by 1, 3 desc",
        [since],
    ):
        flags[device].append(f"{FLAG_LABELS.get(code, code)}×{n}")
    # recordings ingested from each device in the window: how many, how many bytes
    counts: dict[str, tuple[int, int]] = {
        r[0]: (r[1], r[2] or 0)
        for r in db.execute(
            "select device_id, count(*), sum(size) from recordings where device_id is not null"
            " and ingested_at >= ? group by device_id",
            [since],
        )
    }
    devices = {
        r["device_id"]: r
        for r in db.query(
            "select device_id, model, officer_id, unit_id, enrolled, enrolled_at, last_seen_at,"
            " service_state, service_since from devices"
        )
    }
    late = late_repairs(db, now)  # R4: 24 h to hand a damaged device in
    inspected = last_inspections(db)  # R4: inspected from time to time
    due = to_iso(now - dt.timedelta(days=INSPECT_DAYS))
    late_devices = {r["device"] for r in late}
    gaps = list_gaps(db, since=since)  # R20: deletions on the recorder
    gap_devices = {g["device_id"] for g in gaps}
    rows = []
    attention = 0
    for device in sorted(set(devices) | set(stats) | set(counts)):
        d = devices.get(device, {})
        s = stats.get(device, {})
        issues = []
        if not d or not d.get("enrolled"):
            issues.append("未登记设备 / unknown device")
        if (s.get("drift_over") or 0) >= 3:
            issues.append("时钟反复偏差 / repeated drift")
        if (s.get("failed") or 0) >= 2 or (s.get("files_failed") or 0) > 0:
            issues.append("读取失败 / failing reads")
        if (s.get("low_battery") or 0) >= 3:
            issues.append("电量经常不足 / low battery history")
        if d.get("service_state") == "in_repair":
            issues.append("送修中 / in repair")
        elif d.get("service_state") == "retired":
            issues.append("已报废 / retired")
        if device in late_devices:
            issues.append("损坏未在 24 小时内送修 / damaged, not handed in within 24 h")
        checked = inspected.get(device) or d.get("enrolled_at")  # None: enrolment date unknown
        if d.get("enrolled") and d.get("service_state") != "retired" and checked and checked < due:
            issues.append(f"超过 {INSPECT_DAYS} 天未检查 / not inspected for {INSPECT_DAYS} days")
        if device in gap_devices:
            issues.append("文件序号或时间线有缺口 / gaps on the recorder (R20)")
        attention += bool(issues)
        battery, drift = last.get(device, (None, None))
        rows.append(
            {
                "device": device,
                "model": d.get("model"),
                "officer": d.get("officer_id"),
                "state": STATES.get(d.get("service_state") or "in_service", "—"),
                "last_seen": max(
                    filter(None, [d.get("last_seen_at"), s.get("last_session")]), default=None
                ),
                "inspected": inspected.get(device),
                "sessions": s.get("sessions", 0),
                "recordings": counts.get(device, (0, 0))[0],
                "gigabytes": round(counts.get(device, (0, 0))[1] / 1e9, 2),
                "failed": s.get("failed", 0),
                "battery": battery,
                "min_battery": s.get("min_battery"),
                "low_battery": s.get("low_battery", 0),
                "drift": drift,
                "max_drift": s.get("max_drift"),
                "drift_over": s.get("drift_over", 0),
                "flags": ", ".join(flags.get(device, [])),
                "health": "; ".join(issues) or "正常 / OK",
            }
        )
    rows.sort(key=lambda r: (r["health"] == "正常 / OK", r["device"]))
    sparks = {
        device: Chart("spark", f"{device} 时钟偏差 / drift", [], vals, "s")
        for device, vals in history.items()
    }
    section = Section(
        "devices",
        f"记录仪（近 {days} 天）/ recorders (last {days} days)",
        [
            ("device", "设备 / device"),
            ("model", "型号 / model"),
            ("officer", "执法证号 / certificate no."),
            ("state", "状态 / state (R4)"),
            ("last_seen", "最后接入 / last seen"),
            ("inspected", "上次检查 / last inspected (R4)"),
            ("sessions", "接入次数 / sessions"),
            ("recordings", "录像数 / recordings"),
            ("gigabytes", "数据量 GB / data GB"),
            ("failed", "失败 / failed"),
            ("battery", "最近电量 % / battery %"),
            ("min_battery", "最低电量 % / min %"),
            ("low_battery", f"低于 {low}% / below {low}%"),
            ("drift", "最近偏差 s / drift s"),
            ("max_drift", "最大偏差 s / max drift s"),
            ("drift_over", f"超过 {drift_max:g}s / over {drift_max:g}s"),
            ("flags", "告警 / flags"),
            ("health", "状态 / health (R4)"),
        ],
        rows,
        note=(
            "R3：每次接入检查电量、存储与时钟；R4：有故障的设备应停用并报告 / R3: battery, "
            "storage and clock checked at every dock; R4: faulty devices stop being used"
        ),
        charts=[
            Chart(
                "bar",
                "最大时钟偏差 / largest clock drift",
                [r["device"] for r in rows],
                [abs(float(r["max_drift"] or 0.0)) for r in rows],
                "s",
            )
        ],
        sparks=sparks,
    )
    late_section = Section(
        "late_repairs",
        "损坏未在 24 小时内送修 / damaged devices not handed in within 24 h (R4)",
        [
            ("device", "设备 / device"),
            ("damaged_at", "发现故障 / damaged"),
            ("handed_in_at", "送修 / handed in"),
            ("hours", "小时 / hours"),
            ("status", "状态 / status"),
            ("note", "说明 / note"),
        ],
        late,
    )
    gap_section = Section(
        "gaps",
        "记录仪上的缺口（疑似删除）/ gaps on the recorder, possible deletions (R20)",
        [
            ("device_id", "设备 / device"),
            ("session_id", "接入 / session"),
            ("kind", "类型 / kind"),
            ("after_seq", "之前序号 / after"),
            ("before_seq", "之后序号 / before"),
            ("missing", "缺少 / missing"),
            ("detail", "说明 / detail"),
        ],
        [{**g, "kind": GAP_KINDS.get(g["kind"], g["kind"])} for g in gaps],
    )
    summary: list[tuple[str, Any]] = [
        ("期间起 / since", since),
        ("设备 / devices", len(rows)),
        ("需关注 / need attention (R4)", attention),
        ("接入次数 / sessions", sum(r["sessions"] for r in rows)),
        ("失败接入 / failed sessions", sum(r["failed"] or 0 for r in rows)),
        ("超时未送修 / not handed in within 24 h (R4)", len(late)),
        ("记录仪缺口 / gaps on recorders (R20)", len(gaps)),
    ]
    return Report(
        "devices",
        "记录仪状况报表 / Device health report",
        to_iso(now),
        {"days": days},
        summary,
        [section, late_section, gap_section],
    )
