"""Compliance report: late ingests per officer and unit (R1 hours, R2 working days) and cases
not archived within R13, on a real catalog."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlite_utils
from helpers_retention import add_disc_job, add_recording

from station.cases import store
from station.config import parse_settings
from station.reports.compliance_report import build_compliance
from station.reports.workdays import Calendar
from station.vault import Vault

NOW = dt.datetime(2026, 10, 20, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("end", "n", "due"),
    [
        ("2026-09-14", 2, "2026-09-16"),  # Monday → Wednesday
        ("2026-09-18", 2, "2026-09-22"),  # Friday → Tuesday (weekend skipped)
        ("2026-09-19", 2, "2026-09-22"),  # Saturday → Tuesday
        ("2026-09-30", 2, "2026-10-09"),  # before the National Day week → after it
        ("2026-09-26", 1, "2026-09-27"),  # Saturday → make-up working Sunday 27 Sep (调休)
        ("2026-09-14", 0, "2026-09-14"),
    ],
)
def test_working_day_deadline(end: str, n: int, due: str) -> None:
    cal = Calendar.from_strings(
        [f"2026-10-0{d}" for d in range(1, 8)], ["2026-09-27", "2026-10-10"]
    )
    assert cal.deadline(dt.date.fromisoformat(end), n) == dt.date.fromisoformat(due)


def _world(vault: Vault, db: sqlite_utils.Database) -> dict[str, str]:
    with db.conn:
        db["units"].insert_all(
            [{"unit_id": "U1", "name": "一中队"}, {"unit_id": "U2", "name": "二中队"}]
        )
        db["officers"].insert({"officer_id": "O1", "name": "张警官", "unit_id": "U1"})
    w = {}
    # Ended Friday 18 Sep 2026 20:00 Shanghai (12:00Z).
    end = "2026-09-18T12:00:00.000000Z"
    # Ingested Monday 21 Sep 09:00 Shanghai: 61 h late by R1, in time by R2 (due Tuesday).
    w["monday"] = add_recording(
        vault,
        db,
        recorded_at=end,
        end_at=end,
        officer="O1",
        unit="U1",
        ingested_at="2026-09-21T01:00:00.000000Z",
        delay_s=61 * 3600.0,
    )
    # Ingested Wednesday 23 Sep: late by both.
    w["wednesday"] = add_recording(
        vault,
        db,
        recorded_at=end,
        end_at=end,
        officer="O1",
        unit="U1",
        ingested_at="2026-09-23T01:00:00.000000Z",
        delay_s=109 * 3600.0,
    )
    # In time: 2 hours.
    w["ok"] = add_recording(
        vault,
        db,
        recorded_at=end,
        end_at=end,
        officer="O2",
        unit="U2",
        ingested_at="2026-09-18T14:00:00.000000Z",
        delay_s=7200.0,
    )
    # Unknown delay: counted apart, never called late or in time.
    w["unknown"] = add_recording(
        vault,
        db,
        recorded_at=None,
        officer="O2",
        unit="U2",
        ingested_at="2026-09-19T00:00:00.000000Z",
        delay_s=None,
    )
    return w


def test_late_by_hours_and_by_working_days(vault: Vault, db: sqlite_utils.Database) -> None:
    w = _world(vault, db)
    since = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    rep = build_compliance(db, parse_settings({}), now=NOW, since=since)
    units = {r["unit"]: r for r in rep.section("units").rows}
    assert (units["U1"]["total"], units["U1"]["late"], units["U1"]["late_h"]) == (2, 2, 2)
    assert units["U1"]["late_wd"] == 1 and units["U1"]["max_delay_h"] == 109.0
    assert (units["U2"]["late"], units["U2"]["unknown"], units["U2"]["late_pct"]) == (0, 1, 0.0)
    officer = next(r for r in rep.section("officers").rows if r["officer"] == "O1")
    assert officer["name"] == "张警官" and officer["late"] == 2
    late = rep.section("late")
    assert {r["sha256"] for r in late.rows} == {w["monday"], w["wednesday"]}
    assert late.rows[0]["due"] == "2026-09-22"
    # R2 configured: only the Wednesday ingest is late.
    s = parse_settings({"reports": {"late_rule": "working-days"}})
    rep = build_compliance(db, s, now=NOW, since=since)
    assert [r["sha256"] for r in rep.section("late").rows] == [w["wednesday"]]
    assert "working days" in dict(rep.summary)["迟交标准 / late means"]
    # "either": late only when both deadlines are missed.
    s = parse_settings({"reports": {"late_rule": "either"}})
    assert [
        r["sha256"] for r in build_compliance(db, s, now=NOW, since=since).section("late").rows
    ] == [w["wednesday"]]
    # A longer R1 deadline (72 h) lets Monday's ingest through.
    s = parse_settings({"ingest": {"deadline_hours": 72}})
    assert [
        r["sha256"] for r in build_compliance(db, s, now=NOW, since=since).section("late").rows
    ] == [w["wednesday"]]
    # Period filter: nothing ingested in August.
    rep = build_compliance(
        db,
        parse_settings({}),
        now=NOW,
        since=dt.datetime(2026, 8, 1, tzinfo=dt.UTC),
        until=dt.datetime(2026, 9, 1, tzinfo=dt.UTC),
    )
    assert rep.section("units").rows == []
    # The period as people read it (station clock, minutes); machines keep ISO in params.
    assert dict(rep.summary)["期间 / period"] == "2026-08-01 08:00 – 2026-09-01 08:00"
    assert rep.params["since"].startswith("2026-08-01T00:00:00")


def test_r13_cases_not_archived(vault: Vault, db: sqlite_utils.Database) -> None:
    def closed(number: str, when: dt.datetime) -> None:
        store.create_case(
            db,
            number,
            name=f"案 {number}",
            actor="c",
            opened_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        )
        store.close_case(db, number, actor="c", closed_at=when)

    closed("late 1", NOW - dt.timedelta(days=45))  # overdue by 15 days
    closed("slip", NOW - dt.timedelta(days=45))  # overdue, but a location slip is recorded
    closed("disc", NOW - dt.timedelta(days=45))  # two copies, burned in the end
    closed("half", NOW - dt.timedelta(days=40))  # only copy A verified: still overdue
    closed("soon", NOW - dt.timedelta(days=25))  # due in 5 days
    closed("fresh", NOW - dt.timedelta(days=2))
    store.create_case(db, "open", name="n", actor="c")
    store.set_archive_location(db, "slip", location="档案室 A-3", actor="c")
    rep = build_compliance(db, parse_settings({}), now=NOW)
    # Without discs, "disc" is overdue too.
    assert {r["number"] for r in rep.section("cases").rows} == {"late 1", "disc", "half", "soon"}
    # The disc part's records are read (R12: two verified copies).
    add_disc_job(db, "disc", {"A": "verified", "B": "burned"}, location="档案柜 2")
    add_disc_job(db, "half", {"A": "verified", "B": "built"})
    rep = build_compliance(db, parse_settings({}), now=NOW)
    rows = {r["number"]: r for r in rep.section("cases").rows}
    # R13: copy A verified but never burned is not on the shelf: not archived.
    assert set(rows) == {"late 1", "disc", "half", "soon"}
    add_disc_job(db, "disc", {"A": "burned", "B": "burned"}, location="档案柜 2")
    rep = build_compliance(db, parse_settings({}), now=NOW)
    rows = {r["number"]: r for r in rep.section("cases").rows}
    assert set(rows) == {"late 1", "half", "soon"}
    assert rows["late 1"]["status"].startswith("逾期 15 天")
    assert rows["half"]["discs"] == "A✓ B✗"
    assert "due in 5 d" in rows["soon"]["status"]
    assert dict(rep.summary)["逾期未归档案件 / cases overdue for archiving (R13, 30 d)"] == 2
    s = parse_settings({"reports": {"archive_days": 20}})  # seed 003: 20 days
    rows20 = {r["number"] for r in build_compliance(db, s, now=NOW).section("cases").rows}
    assert "soon" in rows20 and "fresh" not in rows20
