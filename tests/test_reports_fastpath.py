"""The reports' SQL paths at a million recordings give, byte for byte, what the row-by-row
reference paths give on a real SQLite catalog: the compliance report's tallies per officer and
unit (R1 hours, R2 working days, R21 duty notes) and the retention report's counts, sizes,
expiring rows and forecast (R9, R10, R11, holds, marks)."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlite_utils

from station.catalog import open_catalog
from station.config import parse_settings
from station.reports import compliance_report
from station.reports.compliance_report import build_compliance
from station.reports.render import render_json, render_table

ZONES = ("Asia/Shanghai", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata")
NOW = dt.datetime(2026, 12, 1, 3, 30, tzinfo=dt.UTC)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _compliance_catalog(path: Path, seed: int) -> sqlite_utils.Database:
    """Recordings ending around local midnights (whole- and half-hour zones, clock changes),
    ingested exactly at, just before and just after their R2 bound and R1's hours, with equal
    ingest times, unknown delays or ends, other time forms, officers and units missing or
    empty, and R21 duty notes per officer and per session."""
    rnd = random.Random(seed)
    db = open_catalog(path)
    db.conn.execute("pragma synchronous = off")
    ends: list[dt.datetime] = []
    for zone in ZONES:
        zone_tz = ZoneInfo(zone)
        for year, month, day in (
            (2026, 3, 8),  # New York's clock change
            (2026, 4, 5),  # Lord Howe's
            (2026, 10, 4),
            (2026, 11, 1),
            (2026, 9, 30),  # before a holiday week
            (2026, 10, 9),
            (2026, 11, 13),  # a Friday
            (2026, 11, 28),
        ):
            local = dt.datetime(year, month, day, tzinfo=zone_tz)
            for minutes in (-61, -31, -1, 0, 1, 29, 30, 31, 59, 61, 90, 600):
                ends.append(local + dt.timedelta(minutes=minutes, microseconds=rnd.randrange(9)))
    ends += [NOW - dt.timedelta(seconds=rnd.randrange(86400 * 300)) for _ in range(400)]
    with db.conn:
        db["units"].insert_all([{"unit_id": f"U{u}", "name": f"第{u}中队"} for u in range(3)])
        db["officers"].insert_all(
            [{"officer_id": f"O{o}", "name": f"执法人员{o}", "unit_id": "U1"} for o in range(5)]
        )
        for s in range(1, 6):
            db.execute(
                "insert into sessions (id, kind, started_at, state) values (?, 'dock', ?, 'done')",
                [s, _iso(NOW)],
            )
        # R21: a note for officer O1 over a span, one for session 2 (open start)
        db.execute(
            "insert into duty_notes (officer_id, kind, from_at, until_at, note, created_at,"
            " created_by) values ('O1', 'remote', ?, ?, 'n', ?, 't')",
            [_iso(NOW - dt.timedelta(days=200)), _iso(NOW - dt.timedelta(days=100)), _iso(NOW)],
        )
        db.execute(
            "insert into duty_notes (session_id, kind, until_at, note, created_at, created_by)"
            " values (2, 'continuous', ?, 'n', ?, 't')",
            [_iso(NOW - dt.timedelta(days=20)), _iso(NOW)],
        )
        tie = _iso(NOW - dt.timedelta(days=10))
        for i, end in enumerate(ends):
            pick = i % 19
            delay = rnd.choice(
                (600.0, 86399.0, 86400.0, 86401.0, 3 * 86400.0, 9 * 86400.0, rnd.random() * 1e6)
            )
            ing_t = end + dt.timedelta(seconds=delay)
            if pick == 1:  # at the local midnight after a due date, and a µs either side
                ing_t = (end + dt.timedelta(days=rnd.randrange(1, 8))).replace(
                    minute=0, second=0, microsecond=0
                ) + dt.timedelta(microseconds=rnd.choice((-1, 0, 1)))
            ingested = tie if pick == 2 else _iso(ing_t)  # equal ingest times: order kept
            end_text: str | None = _iso(end)
            if pick == 3:
                end_text = end.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            elif pick == 4:
                end_text = end.astimezone(ZoneInfo("Asia/Shanghai")).isoformat()
            elif pick == 5:
                end_text = None
            elif pick == 6:
                end_text = _iso(end).replace("T", " ")
            db.execute(
                "insert into recordings (sha256, size, ext, media_kind, vault_path, recorded_at,"
                " end_at, original_name, original_path, officer_id, unit_id, ingested_at,"
                " ingest_delay_s, first_session_id)"
                " values (?, 1, 'MP4', 'video', 'v', ?, ?, 'n', 'p', ?, ?, ?, ?, ?)",
                [
                    f"{seed:02d}{i:062x}",
                    end_text,
                    end_text,
                    rnd.choice(("O0", "O1", "O2", "O3", None, "")),
                    rnd.choice(("U0", "U1", "U2", None, "")),
                    ingested,
                    None if pick == 7 else delay,
                    rnd.choice((None, 1, 2, 3)),
                ],
            )
    return db


@pytest.fixture(scope="module")
def compliance_db(tmp_path_factory: pytest.TempPathFactory) -> sqlite_utils.Database:
    return _compliance_catalog(tmp_path_factory.mktemp("comp") / "c.sqlite", 4)


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("rule", ["working-days", "hours", "either"])
def test_compliance_sql_matches_rows(
    compliance_db: sqlite_utils.Database,
    zone: str,
    rule: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """R1, R2, R21: the compliance report tallied in SQL equals, in its JSON and its text, the
    report decided row by row; both paths are taken."""
    settings = parse_settings(
        {
            "station": {"timezone": zone},
            "reports": {
                "late_rule": rule,
                "holidays": [f"2026-10-0{d}" for d in range(1, 8)],
                "makeup_workdays": ["2026-09-27", "2026-10-10"],
            },
        }
    )
    seen: list[int] = []
    add_rows = compliance_report._add_rows

    def counting(rows, *args):  # type: ignore[no-untyped-def]
        rows = list(rows)
        seen.append(len(rows))
        return add_rows(rows, *args)

    monkeypatch.setattr(compliance_report, "_add_rows", counting)
    since = NOW - dt.timedelta(days=400)
    for limit in (0, 7, 5000):
        seen.clear()
        ref = build_compliance(compliance_db, settings, now=NOW, since=since, limit=limit, fast=False)
        total = seen[0]
        seen.clear()
        fast = build_compliance(compliance_db, settings, now=NOW, since=since, limit=limit)
        assert render_json(fast) == render_json(ref)
        assert render_table(fast) == render_table(ref)
        assert 0 < seen[0] < total / 2  # some rows by Python, most by SQL
        late = ref.section("late")
        assert late.total_rows and late.total_rows > 20
        assert len(late.rows) == min(limit, late.total_rows)


@pytest.fixture(scope="module")
def retention_db(tmp_path_factory: pytest.TempPathFactory) -> sqlite_utils.Database:
    from test_retention_fastpath import PLAN_NOW, _catalog

    return _catalog(tmp_path_factory.mktemp("ret") / "c.sqlite", PLAN_NOW, 5)


@pytest.mark.parametrize("zone", ZONES)
def test_retention_sql_matches_rows(
    retention_db: sqlite_utils.Database, zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R9, R10, R11, holds, marks, keeps, pending: the retention report with plain recordings
    tallied in SQL groups equals, in its JSON and its text, the report decided row by row —
    with R9 ends exactly at ``now`` and 1 µs either side, at the window's end (``--days 1`` a
    day earlier), local midnights and clock changes, other time forms; both paths taken."""
    from test_retention_fastpath import PLAN_NOW

    from station.reports import retention_fast
    from station.reports.retention_report import build_retention

    grouped: list[int] = []
    groups = retention_fast._groups

    def counting(db, decider, totals, *args):  # type: ignore[no-untyped-def]
        before = totals.count["R9"], sum(totals.count.values())
        groups(db, decider, totals, *args)
        grouped.append(totals.count["R9"] - before[0])
        grouped.append(sum(totals.count.values()) - before[1])

    monkeypatch.setattr(retention_fast, "_groups", counting)
    settings = parse_settings({"station": {"timezone": zone}})
    disk = (10**12, 3 * 10**9)
    for now, days, limit in (
        (PLAN_NOW, 30, 200),
        (PLAN_NOW, 200, 7),
        (PLAN_NOW - dt.timedelta(days=1), 1, 5000),
        (PLAN_NOW + dt.timedelta(days=1, microseconds=1), 30, 5000),
    ):
        kw = {"now": now, "days": days, "limit": limit, "disk": disk}
        ref = build_retention(retention_db, settings, fast=False, **kw)  # type: ignore[arg-type]
        fast = build_retention(retention_db, settings, **kw)  # type: ignore[arg-type]
        assert render_json(fast) == render_json(ref)
        assert render_table(fast) == render_table(ref)
        expiring = ref.section("expiring")
        assert expiring.total_rows and expiring.total_rows > 5
        rules = {r["class"].split(" / ")[1] for r in ref.section("storage").rows}
        assert len(rules) >= 8
        assert grouped[-1] > 200  # plain recordings tallied in SQL groups
        assert sum(r["recordings"] for r in ref.section("storage").rows) > grouped[-1] + 200
        if zone != "Australia/Lord_Howe":  # half-hour shifts: R9 ends all by Python
            assert grouped[-2] > 50
            assert any(r["rule"] == "R9" for r in expiring.rows)
