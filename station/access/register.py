"""The 调阅登记簿 (R14, seed 000 第十九条: calling up any whole-process record needs the head's
consent and a registration record): every request to view or export footage, who asked and
why, who decided and when, every view and export made under it. Read from the access tables
only; ``render_html`` is a printable page (A4 landscape)."""

from __future__ import annotations

import datetime as dt
import html
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from station.access.departments import DEPARTMENT_SQL
from station.catalog.where import Where

PURPOSES = {"view": "查看", "export": "导出"}
STATES = {"pending": "待审批", "approved": "同意", "rejected": "不同意"}


def _local(iso: str | None, tz: ZoneInfo) -> str:
    if not iso:
        return ""
    return dt.datetime.fromisoformat(iso).astimezone(tz).strftime("%Y-%m-%d %H:%M")


def build_register(
    db: sqlite_utils.Database, timezone: str, *, since: str | None = None, until: str | None = None
) -> list[dict[str, Any]]:
    tz = ZoneInfo(timezone)
    w = Where()
    w.given(since, "q.created_at >= ?")
    w.given(until, "q.created_at < ?")
    has_dept = "department" in {c[1] for c in db.execute("pragma table_info(users)")}
    dept = "u.department" if has_dept else "null"
    rows = []
    for i, q in enumerate(
        db.query(
            f"select q.*, {dept} as department from access_requests q"
            " left join users u on u.name = q.requested_by"
            + w.sql
            + " order by q.created_at, q.id",
            w.args,
        ),
        1,
    ):
        recs = list(
            db.query(
                f"select r.sha256, r.original_name, r.recorded_at, {DEPARTMENT_SQL} as dept"
                " from access_request_items i join recordings r on r.sha256 = i.sha256"
                " where i.request_id = ? order by r.recorded_at",
                [q["id"]],
            )
        )
        views = [
            f"{v['viewed_by']} {_local(v['viewed_at'], tz)}"
            for v in db.query(
                "select viewed_by, viewed_at from access_views where request_id = ?"
                " order by viewed_at",
                [q["id"]],
            )
        ]
        exports = [
            f"{e['exported_by']} {_local(e['exported_at'], tz)} → {e['destination']}"
            for e in db.query(
                "select exported_by, exported_at, destination from access_exports"
                " where request_id = ? order by exported_at",
                [q["id"]],
            )
        ]
        rows.append(
            {
                "no": i,
                "request": q["id"],
                "asked_at": _local(q["created_at"], tz),
                "asked_by": q["requested_by"],
                "department": q["department"],
                "purpose": PURPOSES.get(q["purpose"], q["purpose"]),
                "recordings": [r["original_name"] for r in recs],
                "recording_departments": sorted({r["dept"] for r in recs if r["dept"]}),
                "reason": q["reason"],
                "recipient": q["recipient"],
                "decision": STATES.get(q["state"], q["state"]),
                "decided_by": q["decided_by"],
                "decided_at": _local(q["decided_at"], tz),
                "valid_until": _local(q["valid_until"], tz),
                "views": views,
                "exports": exports,
            }
        )
    return rows


CSS = """
body { font-family: "WenQuanYi Zen Hei", "Noto Sans CJK SC", sans-serif; margin: 1cm; }
h1 { font-size: 16pt; text-align: center; }
table { border-collapse: collapse; width: 100%; font-size: 8.5pt; }
th, td { border: 1px solid #333; padding: 2px 4px; vertical-align: top; }
th { background: #eee; } @page { size: A4 landscape; margin: 1cm; }
"""


def render_html(rows: list[dict[str, Any]], unit: str, printed_at: str) -> str:
    def e(v: Any) -> str:
        if isinstance(v, list):
            return "<br>".join(html.escape(str(x)) for x in v) or "—"
        return html.escape(str(v)) if v not in (None, "") else "—"

    head = [
        "序号", "申请时间", "申请人", "科室", "方式", "调阅录像", "所属科室", "事由", "提供给",
        "审批", "审批人", "审批时间", "有效至", "查看记录", "导出记录",
    ]  # fmt: skip
    keys = [
        "no", "asked_at", "asked_by", "department", "purpose", "recordings",
        "recording_departments", "reason", "recipient", "decision", "decided_by", "decided_at",
        "valid_until", "views", "exports",
    ]  # fmt: skip
    out = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>调阅登记簿</title><style>{CSS}</style></head><body>",
        "<h1>执法音像资料调阅登记簿<br><small>Register of access to enforcement footage (R14)"
        "</small></h1>",
        f"<p>单位 / unit：{html.escape(unit)}　　打印时间 / printed：{html.escape(printed_at)}</p>",
        "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>",
    ]
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{e(r[k])}</td>" for k in keys) + "</tr>")
    out += ["</table>", "</body></html>"]
    return "\n".join(out)
