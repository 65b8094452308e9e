"""The storage-location slip (存储位置及说明) of a case or activity, and when it counts as
archived (R13, seeds 000 第十五条, 003 第三十二条).

A case's AV record is archived when either

* its discs are burned in both copies (R12: 一式两份; images only built or verified do not
  count), or
* a storage-location slip exists: the location is recorded (``station cases archived`` or
  ``station cases slip --location``) and the slip lists, for every recording in time order,
  the production method, time, producer, 证明对象 and the content of sound recordings, with a
  材料目录 (list of materials).

``build_slip`` reads the catalog only; ``render_html`` is a printable page (A4, one table per
part). Both are pure over their input.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from station.cases.store import case_reasons, get_case
from station.retention.policy import reason_text

KINDS = {"video": "视频", "audio": "录音", "image": "照片", "other": "其他"}


def _local(iso: str | None, tz: ZoneInfo) -> str:
    if not iso:
        return "—"
    return dt.datetime.fromisoformat(iso).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def burned_copies(db: sqlite_utils.Database, number: str) -> dict[str, str | None]:
    """Copies (A/B) of the case's latest disc job that are burned, with where they are kept."""
    if not db.execute("select 1 from sqlite_master where name = 'disc_case_copies'").fetchone():
        return {}
    return {
        str(copy): location
        for copy, burned, location in db.execute(
            "select copy, burned, location from disc_case_copies where case_number = ?", [number]
        )
        if burned
    }


def archive_state(db: sqlite_utils.Database, case: dict[str, Any]) -> tuple[bool, str]:
    """(archived?, how) for R13: both copies burned, or a location slip."""
    copies = burned_copies(db, case["number"])
    if {"A", "B"} <= set(copies):
        where = ", ".join(sorted({w for w in copies.values() if w}))
        return True, "光盘一式两份已刻录 / both disc copies burned" + (
            f" @ {where}" if where else ""
        )
    if case.get("archive_location"):
        return True, f"存储位置说明 / location slip: {case['archive_location']}"
    return False, "未归档 / not archived"


def build_slip(db: sqlite_utils.Database, number: str, timezone: str) -> dict[str, Any]:
    tz = ZoneInfo(timezone)
    case = get_case(db, number)
    rows = list(
        db.query(
            "select r.sha256, r.media_kind, r.method, r.recorded_at, r.recorded_at_device,"
            " r.end_at, r.duration_s, r.producer, r.officer_id, o.name as officer_name,"
            " r.device_id, r.proves, r.sound_content, r.original_name, r.size, r.state"
            " from case_recordings l join recordings r on r.sha256 = l.sha256"
            " left join officers o on o.officer_id = r.officer_id"
            " where l.case_number = ? order by r.recorded_at, r.sha256",
            [number],
        )
    )
    discs: dict[str, list[str]] = {}
    if "disc_contents" in db.table_names():
        for sha, job, disc_no in db.execute(
            "select distinct c.recording_sha256, c.job_id, c.disc_no from disc_contents c"
            " join case_recordings l on l.sha256 = c.recording_sha256 where l.case_number = ?",
            [number],
        ):
            discs.setdefault(sha, []).append(f"光盘 job {job} #{disc_no}")
    recordings = []
    for i, r in enumerate(rows, 1):
        producer = r["producer"] or (
            f"{r['officer_name']} ({r['officer_id']})" if r["officer_name"] else r["officer_id"]
        )
        recordings.append(
            {
                "no": i,
                "sha256": r["sha256"],
                "name": r["original_name"],
                "kind": KINDS.get(r["media_kind"], r["media_kind"]),
                "method": r["method"] or "—",
                "time": _local(r["recorded_at"], tz),
                "end": _local(r["end_at"], tz),
                "duration_s": r["duration_s"],
                "producer": producer or "—",
                "device": r["device_id"] or "—",
                "proves": r["proves"],
                "sound_content": r["sound_content"],
                "size": r["size"],
                "state": r["state"],
                "stored": "；".join(discs.get(r["sha256"], [])) or None,
            }
        )
    archived, how = archive_state(db, case)
    return {
        "number": case["number"],
        "name": case["name"],
        "kind": case.get("kind") or "case",
        "party": case.get("party"),
        "cause": case.get("cause"),
        "department": case.get("department"),
        "status": case["status"],
        "closed_at": _local(case.get("closed_at"), tz) if case.get("closed_at") else None,
        "location": case.get("archive_location"),
        "archived": archived,
        "archived_how": how,
        "reasons": [reason_text(c) for c in case_reasons(case)],
        "recordings": recordings,
        "missing_proves": [r["no"] for r in recordings if not r["proves"]],
        "missing_sound": [
            r["no"] for r in recordings if r["kind"] in ("视频", "录音") and not r["sound_content"]
        ],
    }


CSS = """
body { font-family: "WenQuanYi Zen Hei", "Noto Sans CJK SC", sans-serif; margin: 1.5cm; }
h1 { font-size: 18pt; text-align: center; } h2 { font-size: 13pt; margin-top: 1.2em; }
table { border-collapse: collapse; width: 100%; font-size: 9.5pt; }
th, td { border: 1px solid #333; padding: 3px 5px; vertical-align: top; }
th { background: #eee; } .warn { color: #a00; } .sign { margin-top: 2em; }
@page { size: A4; margin: 1.5cm; } @media print { body { margin: 0; } }
"""


def _e(v: Any) -> str:
    return html.escape("—" if v is None or v == "" else str(v))


def render_html(slip: dict[str, Any], printed_at: str) -> str:
    kind = "执法活动" if slip["kind"] == "activity" else "案件"
    out = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>音像资料存储位置及说明 {_e(slip['number'])}</title><style>{CSS}</style></head>",
        "<body>",
        "<h1>音像资料存储位置及说明<br><small>Storage location and description of the AV "
        "record (R13)</small></h1>",
        "<table>",
        f"<tr><th>{kind}编号 / number</th><td>{_e(slip['number'])}</td>"
        f"<th>{kind}名称 / name</th><td>{_e(slip['name'])}</td></tr>",
        f"<tr><th>当事人 / party</th><td>{_e(slip['party'])}</td>"
        f"<th>案由 / cause</th><td>{_e(slip['cause'])}</td></tr>",
        f"<tr><th>科室 / department</th><td>{_e(slip['department'])}</td>"
        f"<th>结案 / closed</th><td>{_e(slip['closed_at'])}</td></tr>",
        f"<tr><th>存储位置 / storage location</th><td colspan=3><b>{_e(slip['location'])}</b>"
        f"</td></tr>",
        f"<tr><th>归档状态 / archived</th><td colspan=3>{_e(slip['archived_how'])}</td></tr>",
    ]
    for r in slip["reasons"]:
        out.append(f"<tr><th>长期保存理由 / long-term</th><td colspan=3>{_e(r)}</td></tr>")
    out += [
        "</table>",
        "<h2>材料目录 / List of materials</h2>",
        "<table><tr><th>序号</th><th>材料名称 / name</th><th>类型 / kind</th>"
        "<th>形成时间 / time</th><th>时长 s</th><th>存放 / kept on</th><th>SHA-256</th></tr>",
    ]
    for r in slip["recordings"]:
        out.append(
            f"<tr><td>{r['no']}</td><td>{_e(r['name'])}</td><td>{_e(r['kind'])}</td>"
            f"<td>{_e(r['time'])}</td><td>{_e(r['duration_s'])}</td>"
            f"<td>{_e(r['stored'] or slip['location'])}</td>"
            f"<td><code>{_e(r['sha256'][:16])}…</code></td></tr>"
        )
    out += [
        "</table>",
        "<h2>逐项说明（按时间顺序）/ Description of each recording, in time order</h2>",
        "<table><tr><th>序号</th><th>制作方法 / method</th><th>制作时间 / time</th>"
        "<th>制作人 / producer</th><th>证明对象 / what it proves</th>"
        "<th>声音内容 / content of sound</th></tr>",
    ]
    for r in slip["recordings"]:
        proves = _e(r["proves"]) if r["proves"] else '<span class="warn">未填写 / missing</span>'
        sound = (
            _e(r["sound_content"])
            if r["sound_content"]
            else '<span class="warn">未填写 / missing</span>'
        )
        out.append(
            f"<tr><td>{r['no']}</td><td>{_e(r['method'])}（记录仪 {_e(r['device'])}）</td>"
            f"<td>{_e(r['time'])} 至 {_e(r['end'])}</td><td>{_e(r['producer'])}</td>"
            f"<td>{proves}</td><td>{sound}</td></tr>"
        )
    out += [
        "</table>",
        f'<p class="sign">制表时间 / printed: {_e(printed_at)}　　'
        "经办人 / clerk：__________　　审核 / checked：__________</p>",
        "</body></html>",
    ]
    return "\n".join(out)
