"""``Decider.rows`` (the million-row path: plain recordings decided straight from their row)
gives exactly the decisions ``decide()`` gives over the full facts (R9, R10, R11): categories
known routine or not, unclassified footage, a supervisor's keep-until."""

from __future__ import annotations

import datetime as dt
import io
import json
import random
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlite_utils

from station.catalog import open_catalog
from station.config import Settings, parse_settings
from station.retention import bulk
from station.retention.bulk import hour_until
from station.retention.cli import PlanWriter
from station.retention.executor import make_plan
from station.retention.facts import iter_facts
from station.retention.policy import (
    ROUTINE_CATEGORIES,
    CaseFacts,
    Decider,
    Extra,
    Policy,
    RecordingFacts,
    add_years,
    decide,
)
from station.retention.runtypes import Item, RunReport, fast_iso
from station.timeutil import to_iso

NOW = dt.datetime(2026, 12, 1, 3, 30, tzinfo=dt.UTC)


def _text(t: dt.datetime, style: int) -> str:
    if style == 0:
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if style == 1:  # no fraction
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    return t.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat()  # an offset, not Z


def test_rows_match_decide() -> None:
    rnd = random.Random(7)
    open_case = CaseFacts("罚字〔2026〕第1号", "open")
    closed = CaseFacts("罚字〔2025〕第2号", "closed", NOW - dt.timedelta(days=2000), 5)
    lt_case = CaseFacts("罚字〔2024〕第3号", "closed", NOW - dt.timedelta(days=3000), None, 2)
    rows, facts = [], []
    extra: dict[str, Extra] = {}
    for i in range(3000):
        sha = f"{i:064x}"
        # around the R9 edge (6 months ago), month ends and the local midnight
        base = NOW - dt.timedelta(days=rnd.choice((120, 182, 183, 184, 185, 400, 800)))
        rec = base + dt.timedelta(seconds=rnd.randrange(-86400 * 3, 86400 * 3))
        ing = rec + dt.timedelta(hours=rnd.randrange(1, 100))
        rec_text = None if i % 17 == 0 else _text(rec, i % 3)
        important = int(i % 11 == 0)
        category = rnd.choice(("patrol", "patrol", "education", None, "enforcement"))
        rows.append((sha, rec_text, _text(ing, 0), important, 1000 + i, "stored", category))
        kind = i % 13
        lt: int | None = None
        reviewed = False
        holds: tuple[str, ...] = ()
        cases: tuple[CaseFacts, ...] = ()
        kept = None
        if kind == 1:
            cases = (open_case,)
        elif kind == 2:
            cases = (closed,)
        elif kind == 3:
            cases = (lt_case, closed)
        elif kind == 4:
            holds = ("诉讼",)
        elif kind == 5:
            lt, reviewed = 1, True
        elif kind == 6:
            reviewed = True
        elif kind == 7:  # R9: a supervisor rejected the purge, some keeps already past
            kept = NOW + dt.timedelta(days=rnd.choice((-30, 30, 400)))
        if kind in range(1, 8):
            extra[sha] = (lt, reviewed, holds, cases, kept)
        facts.append(
            RecordingFacts(
                sha,
                dt.datetime.fromisoformat(rec_text) if rec_text else None,
                dt.datetime.fromisoformat(_text(ing, 0)),
                bool(important),
                reviewed,
                lt,
                holds,
                cases,
                category,
                kept,
            )
        )
    policy = Policy()
    fast = list(Decider(policy, NOW).rows(rows, extra))
    slow = list(decide(facts, policy, NOW))
    assert [d for d, _, _ in fast] == slow
    assert [(size, state) for _, size, state in fast] == [(r[4], r[5]) for r in rows]
    assert {d.rule for d in slow} >= {
        "R9",
        "R10",
        "R10-open",
        "R11-case",
        "hold",
        "important",
        "R9-unclassified",
        "R9-not-routine",
        "R9-kept",
    }
    assert any(d.expired for d in slow) and not all(d.expired for d in slow)


def test_unexpired_from_is_safe() -> None:
    """Nothing started on or after ``unexpired_from()`` can be expired at ``now``."""
    for months in (6, 7, 12):
        decider = Decider(Policy(routine_months=months), NOW)
        edge = dt.datetime.fromisoformat(decider.unexpired_from() + "T00:00:00+14:00")
        assert decider.routine_until(edge) > NOW


# --- the SQL path over a real catalog (station.retention.bulk, executor.make_plan) ------------

ZONES = ("Asia/Shanghai", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata")
PLAN_NOW = dt.datetime(2026, 12, 1, 3, 30, tzinfo=dt.UTC)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _important(i: int) -> object:
    """The IMP marker as stored: mostly 0 or 1, a few other integers, and values of other types
    an older import may have left (``bulk.kind`` leaves those to ``Decider``)."""
    odd: dict[int, object] = {3: 2, 5: 0.5, 7: "x", 9: -1, 11: "", 13: "", 15: ""}
    return odd.get(i % 53, int(i % 17 == 0))


def _size(i: int) -> object:
    return 1000.5 if i % 47 == 11 else 1000 + i  # a size that is not an integer: by Python


def _catalog(path: Path, now: dt.datetime, seed: int) -> sqlite_utils.Database:
    """Recordings around every edge the SQL path has: R9's end near ``now`` (to the
    microsecond, exactly at it), month ends, local midnights and clock changes six months back,
    other time forms, categories, the important marker, links to open, closed, long-term and
    nearly-expired cases, holds (active, released), marks, supervisors' keeps, pending ones."""
    rnd = random.Random(seed)
    db = open_catalog(path)
    db.conn.execute("pragma synchronous = off")  # a test catalog: no power cuts here
    tz = ZoneInfo("Asia/Shanghai")
    starts: list[dt.datetime] = []
    for days in (120, 160, 165, 166, 167, 180, 181, 182, 183, 184, 185, 186, 400, 800):
        base = now - dt.timedelta(days=days)
        starts += [base + dt.timedelta(seconds=rnd.randrange(-86400, 86400)) for _ in range(25)]
    for zone in ZONES:
        zone_tz = ZoneInfo(zone)
        # local midnights, month ends and clock changes, half a year back and more
        for year, month in ((2025, 3), (2025, 11), (2026, 3), (2026, 5), (2026, 6), (2025, 8)):
            for day in (1, 2, 8, 9, 28, 29, 30, 31):
                try:
                    local = dt.datetime(year, month, day, tzinfo=zone_tz)
                except ValueError:
                    continue
                for minutes in (-61, -1, 0, 1, 59, 60, 61, 119, 150, 181):
                    at = local + dt.timedelta(minutes=minutes, microseconds=rnd.randrange(9))
                    starts.append(at)
        # R9's end exactly at now, and a microsecond either side
        back = now.astimezone(zone_tz)
        month0 = back.month - 1 - 6
        edge = back.replace(year=back.year + month0 // 12, month=month0 % 12 + 1)
        for delta in (-1, 0, 1):
            starts.append(edge + dt.timedelta(microseconds=delta))
        decider = Decider(Policy(timezone=zone), now)
        assert any(decider.routine_until(t) == now for t in starts)
    cases = [
        ("罚字〔2026〕第1号", "open", None, None, None),
        ("罚字〔2020〕第2号", "closed", now - dt.timedelta(days=2000), 5, None),  # expired
        ("罚字〔2024〕第3号", "closed", now - dt.timedelta(days=3000), None, 2),  # R11
        ("罚字〔2025〕第4号", "closed", now - dt.timedelta(days=300), None, None),  # kept
        # R10's end within days of now: the SQL margin must leave these to Python
        ("罚字〔2021〕第5号", "closed", add_years(now, -5, tz) + dt.timedelta(days=2), 5, None),
        ("罚字〔2021〕第6号", "closed", add_years(now, -5, tz) - dt.timedelta(seconds=1), 5, None),
        ("罚字〔2021〕第7号", "closed", add_years(now, -5, tz) + dt.timedelta(days=5), None, None),
        ("罚字〔2023〕第8号", "closed", add_years(now, -3, tz), 3, None),
    ]
    with db.conn:
        for number, status, closed, years, lt in cases:
            db.execute(
                "insert into cases (number, name, status, opened_at, closed_at, retention_years,"
                " long_term_reason, created_by) values (?, ?, ?, ?, ?, ?, ?, 't')",
                [
                    number,
                    number,
                    status,
                    "2020-01-01T00:00:00.000000Z",
                    _iso(closed) if closed else None,
                    years,
                    lt,
                ],
            )
        for i, start in enumerate(starts):
            sha = f"{seed:02d}{i:062x}"
            form = i % 23
            if form == 1:
                rec = start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # no fraction
            elif form == 2:
                rec = start.astimezone(tz).isoformat()  # an offset, not Z
            elif form == 3:
                rec = None  # unknown: counted from ingest
            elif form == 4:
                rec = ""
            else:
                rec = _iso(start)
            ing = _iso(start + dt.timedelta(hours=rnd.randrange(1, 100)))
            category = rnd.choice([*sorted(ROUTINE_CATEGORIES), None, "enforcement"])
            state = "pending_purge" if i % 29 == 0 else "stored"
            db.execute(
                "insert into recordings (sha256, size, ext, media_kind, vault_path, recorded_at,"
                " original_name, original_path, important, ingested_at, category, state)"
                " values (?, ?, 'MP4', 'video', 'v', ?, 'n', 'p', ?, ?, ?, ?)",
                [sha, _size(i), rec, _important(i), ing, category, state],
            )
            if state == "pending_purge":
                after = now + dt.timedelta(days=rnd.choice((-3, 3)))
                db.execute(
                    "insert into retention_items (sha256, state, rule, reason, pending_at,"
                    " purge_after, files, updated_at) values (?, 'pending', 'R9', 'r', ?, ?,"
                    " '[]', ?)",
                    [sha, _iso(now), _iso(after), _iso(now)],
                )
            kind = i % 11
            if kind in (1, 2):
                for number, *_ in rnd.sample(cases, rnd.randrange(1, 3)):
                    db.execute(
                        "insert into case_recordings (case_number, sha256, linked_at, linked_by)"
                        " values (?, ?, ?, 't')",
                        [number, sha, _iso(now)],
                    )
            elif kind == 3:
                released = _iso(now) if i % 2 else None
                db.execute(
                    "insert into holds (sha256, reason, placed_at, placed_by, released_at)"
                    " values (?, ?, ?, 't', ?)",
                    [sha, f"诉讼{i}", _iso(now), released],
                )
            elif kind == 4:
                db.execute(
                    "insert into recording_marks (sha256, long_term_reason, reviewed_at)"
                    " values (?, ?, ?)",
                    [sha, rnd.choice((None, 3)), rnd.choice((None, _iso(now)))],
                )
            elif kind == 5:
                kept = now + dt.timedelta(days=rnd.choice((-30, 30)))
                db.execute(
                    "insert into purge_proposals (sha256, rule, reason, proposed_at, state,"
                    " kept_until) values (?, 'R9', 'r', ?, 'rejected', ?)",
                    [sha, _iso(now), _iso(kept)],
                )
    return db


def _reference_plan(db: sqlite_utils.Database, settings: Settings, now: dt.datetime) -> RunReport:
    """The plan as ``decide()`` gives it over every recording's full facts."""
    as_of = to_iso(now)
    report = RunReport(as_of=as_of, dry_run=True)
    pending = dict(
        db.execute("select sha256, purge_after from retention_items where state = 'pending'")
    )
    pairs = list(iter_facts(db))
    decisions = decide([f for f, _ in pairs], Policy.from_settings(settings), now)
    for (_, row), d in zip(pairs, decisions, strict=True):
        until = fast_iso(d.keep_until) if d.keep_until else None
        if row.state == "stored":
            if d.expired:
                report.pend.append(Item(row.sha256, row.size, d.rule, d.reason, until, "pend"))
        elif not d.expired:
            report.restore.append(Item(row.sha256, row.size, d.rule, d.reason, until, "restore"))
        elif (after := pending.get(row.sha256)) is not None and after <= as_of:
            report.purge.append(Item(row.sha256, row.size, d.rule, d.reason, until, "purge", after))
        else:
            report.waiting += 1
    return report


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> sqlite_utils.Database:
    return _catalog(tmp_path_factory.mktemp("plan") / "c.sqlite", PLAN_NOW, 3)


@pytest.mark.parametrize("zone", ZONES)
def test_sql_plan_matches_decide(catalog: sqlite_utils.Database, zone: str) -> None:
    """The dry run's plan — plain routine recordings decided in SQL, their JSON written by
    SQLite, the rest by ``Decider`` — equals the plan ``decide()`` gives over full facts, item
    for item and byte for byte in its JSON (R9, R10, R11, holds, marks, keeps)."""
    settings = parse_settings({"station": {"timezone": zone}})
    db = catalog
    for now in (PLAN_NOW, PLAN_NOW + dt.timedelta(days=1, microseconds=1)):
        ref = _reference_plan(db, settings, now)
        assert ref.pend and ref.restore and ref.purge and ref.waiting
        assert {i.rule for i in ref.pend} >= {"R9", "R10"}
        plan = make_plan(db, settings, now)
        assert plan.to_json() == ref.to_json()

        fast: list[str] = []
        out = io.StringIO()
        writer = PlanWriter(out, to_iso(now))

        def line(text: str, n: int, writer: PlanWriter = writer, fast: list[str] = fast) -> None:
            items = text.split(",\n")  # no item's text holds a line break
            assert len(items) == n and all(json.loads(i)["rule"] == "R9" for i in items)
            fast.extend(items)
            writer.lines(text, n)

        report = make_plan(db, settings, now, on_pend=writer.item, on_pend_json=line)
        writer.finish(report)
        expected = io.StringIO()
        ref_writer = PlanWriter(expected, to_iso(now))
        for item in ref.pend:
            ref_writer.item(item)
        ref.pend = []
        ref_writer.finish(ref)
        assert out.getvalue() == expected.getvalue()
        assert len(fast) < len(plan.pend)  # some by Python
        if zone != "Australia/Lord_Howe":  # half-hour shifts: all by Python
            assert len(fast) > 10
        # PlanWriter writes sizes as integers
        streamed = [{**i._asdict(), "size": int(i.size)} for i in plan.pend]
        assert json.loads(out.getvalue())["pend"] == streamed
        assert any(not isinstance(i.size, int) for i in plan.pend)


def test_hour_until_agrees_with_routine_until() -> None:
    """Every hour given an SQL end gets, for any start inside it, the text of
    ``Decider.routine_until``; hours holding a local midnight, a clock change (now or half a
    year on) or a shift that is not whole hours (Lord Howe's half-hour summer time, Kolkata's
    midnight at :30) get none, and their recordings go to ``Decider``."""
    first = dt.datetime(2025, 10, 20, tzinfo=dt.UTC)
    for zone in ZONES:
        decider = Decider(Policy(timezone=zone), PLAN_NOW)
        none = 0
        for n in range(0, 24 * 200, 5):
            start = first + dt.timedelta(hours=n)
            hour = start.isoformat()[:13]
            until = hour_until(decider, hour)
            if until is None:
                none += 1
                continue
            for inside in (dt.timedelta(0), dt.timedelta(minutes=59, seconds=59, microseconds=9)):
                text = fast_iso(decider.routine_until(start + inside))
                assert text == until + _iso(start + inside)[13:], (zone, hour)
        if zone in ("Asia/Shanghai", "America/New_York"):
            # midnights and clock changes at whole UTC hours (New York's shift changes by an
            # hour across them: checked above)
            assert none == 0, zone
        else:
            assert none > 0, zone


def test_sql_plan_with_hours_sought(
    catalog: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starts spread over more than ``SPAN_HOURS`` (a recorder's clock at 1970): the hours are
    read off the start-time index instead, with the same plan."""
    monkeypatch.setattr(bulk, "SPAN_HOURS", 0)
    settings = parse_settings({"station": {"timezone": "Asia/Shanghai"}})
    sought = list(bulk._hours(catalog, "2026-06-01"))
    assert len(sought) == len(set(sought)) and sought == sorted(sought)
    starts = {r[0][:13] for r in catalog.execute("select recorded_at from recordings") if r[0]}
    assert {h for h in starts if h and h[:1].isdigit() and h < "2026-06-01"} <= set(sought)
    assert make_plan(catalog, settings, PLAN_NOW).to_json() == (
        _reference_plan(catalog, settings, PLAN_NOW).to_json()
    )
