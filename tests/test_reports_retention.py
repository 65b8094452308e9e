"""Retention report: expiring soon with reasons, holds, long-term cases with discs, storage per
class, free-space forecast — on a real catalog (R9–R12, R17)."""

from __future__ import annotations

import datetime as dt

import sqlite_utils
from helpers_retention import add_disc_job, add_recording, approve_all

from station.cases import store, tags
from station.config import Settings
from station.reports.common import GB
from station.reports.retention_report import build_retention
from station.retention import executor
from station.vault import Vault

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def test_retention_report(vault: Vault, db: sqlite_utils.Database) -> None:
    # Expires 2026-12-10 (R9): inside a 30-day window, not a 7-day one.
    soon = add_recording(vault, db, recorded_at="2026-06-10T02:00:00.000000Z", size=2 * GB)
    later = add_recording(vault, db, recorded_at="2026-11-01T02:00:00.000000Z", size=GB)
    overdue = add_recording(vault, db, recorded_at="2026-01-01T02:00:00.000000Z", size=GB)
    held = add_recording(vault, db, recorded_at="2026-01-01T02:00:00.000000Z", size=GB)
    lt = add_recording(vault, db, recorded_at="2026-01-01T02:00:00.000000Z", size=3 * GB)
    tags.hold(db, [held], reason="行政诉讼 / lawsuit", actor="c")
    store.create_case(db, "长期 1", name="围堵执法", actor="c")
    store.link(db, "长期 1", [lt], actor="c")
    store.mark_long_term(db, "长期 1", reason=3, note="辱骂执法人员", actor="c")
    rep = build_retention(db, Settings(), now=NOW, days=30, disk=(100 * GB, 10 * GB))
    exp = rep.section("expiring")
    assert [r["sha256"] for r in exp.rows] == [soon]
    assert exp.rows[0]["keep_until"] == "2026-12-10T02:00:00.000000Z"
    assert exp.rows[0]["rule"] == "R9" and "6 months" in exp.rows[0]["reason"]
    assert sum(exp.charts[0].values) == 1
    assert [
        r["sha256"]
        for r in build_retention(db, Settings(), now=NOW, days=7).section("expiring").rows
    ] == []
    held_rows = rep.section("held").rows
    assert [(r["sha256"], r["reason"]) for r in held_rows] == [(held, "行政诉讼 / lawsuit")]
    (case,) = rep.section("long_term_cases").rows
    assert case["number"] == "长期 1" and case["recordings"] == 1
    assert case["discs"] == "未刻录 / not burned" and case["reason"].startswith(
        "第十四条第（三）项："
    )
    storage = {r["class"]: r for r in rep.section("storage").rows}
    assert storage["例行录像 / routine footage (R9)"]["recordings"] == 3
    assert storage["例行录像 / routine footage (R9)"]["size_gb"] == 4.0
    assert storage["案件长期保存 / long-term case (R11)"]["size_gb"] == 3.0
    assert storage["法律保全 / legal hold"]["recordings"] == 1
    summary = dict(rep.summary)
    assert summary["已到期未处理 / expired, awaiting the executor"] == 1
    # Forecast: "later" (1 GB) was ingested within the last 30 days → 1/30 GB a day; the
    # overdue 1 GB is freed after the 7-day grace, "soon" (2 GB) on 10 Dec + 7 days; "later"
    # itself expires on 1 May, beyond the 90 days.
    fc = {r["day"]: r for r in rep.section("forecast").rows}
    assert fc[0]["free_gb"] == 10.0
    assert fc[7]["free_gb"] == round(10 - 7 / 30 + 1, 3)
    assert fc[21]["free_gb"] == round(10 - 21 / 30 + 3, 3)
    assert summary["预计写满天数 / days until full"] == "> 90"
    assert later not in {r["sha256"] for r in exp.rows}
    assert overdue not in {r["sha256"] for r in exp.rows}
    # With discs made by the disc part, the case shows them (R12: copies A and B).
    add_disc_job(db, "长期 1", {"A": "verified", "B": "corrupt"})
    rep = build_retention(db, Settings(), now=NOW, days=30)
    assert rep.section("long_term_cases").rows[0]["discs"] == "A✓ B✗"
    # A newer job supersedes it: both copies burned, kept in the archive room.
    add_disc_job(db, "长期 1", {"A": "burned", "B": "burned"}, location="档案室")
    rep = build_retention(db, Settings(), now=NOW, days=30)
    assert rep.section("long_term_cases").rows[0]["discs"] == "A✓ B✓ 已刻录 / burned @ 档案室"


def test_forecast_runs_out_and_pending_counted(vault: Vault, db: sqlite_utils.Database) -> None:
    # 3 GB ingested over the last 30 days → 0.1 GB/day; 1 GB free, plus the 256 bytes the
    # pending purge frees on day 7 → the first day with nothing left is day 11.
    for day in (3, 10, 20):
        t = (NOW - dt.timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        add_recording(vault, db, recorded_at=t, ingested_at=t, size=GB)
    old = add_recording(vault, db, recorded_at="2026-01-01T00:00:00.000000Z")  # 256 bytes
    executor.run(vault, db, Settings(), now=NOW, actor="sup", wall_now=NOW)
    assert approve_all(vault, db, Settings(), NOW) == [old]
    rep = build_retention(db, Settings(), now=NOW, days=30, disk=(50 * GB, GB))
    summary = dict(rep.summary)
    assert summary["待删（宽限期）/ pending purge (grace)"] == 1
    assert summary["预计写满天数 / days until full"] == 11
    assert rep.section("forecast").rows[1]["day"] == 7
    assert rep.section("forecast").rows[1]["free_gb"] == 0.3
    storage = {r["class"]: r["recordings"] for r in rep.section("storage").rows}
    assert storage["待删 / pending purge"] == 1
    assert old not in {r["sha256"] for r in rep.section("expiring").rows}
