"""The retention report read from the tallies (migration 0150: counts kept by triggers) equals,
byte for byte, the report decided recording by recording (R9, R10, R11, R17), on real SQLite
catalogs: four time zones (Asia/Shanghai; New York and Lord Howe with clock changes; Kolkata's
half hours), R9's end at ``now`` to the microsecond, hour, midnight, month-end and six-month
edges, pending, linked, held, marked, kept and purged recordings; after the tallies were built
from existing rows, and after every command that moves a recording between report groups. A
tally that drifted is found by ``station verify`` and never read."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlite_utils
from helpers_retention import add_recording, approve_all
from test_retention_fastpath import PLAN_NOW, ZONES, _catalog, _iso

from station.cases import store, tags
from station.catalog import migrations, open_catalog, write_txn
from station.config import Settings, parse_settings
from station.reports.model import Report
from station.reports.render import render_json, render_table
from station.reports.retention_report import build_retention
from station.retention import approval, executor, tally
from station.retention.policy import Decider, Policy
from station.vault import Vault
from station.verify.run import tally_drift

DISK = (10**12, 3 * 10**9)
LATER = PLAN_NOW + dt.timedelta(days=1, microseconds=1)
LAST_SECOND = PLAN_NOW.replace(minute=59, second=59, microsecond=500_000)
LAST_US = LAST_SECOND.replace(microsecond=999_999)
GB = 10**9


def _reports(db: sqlite_utils.Database, settings: Settings, **kw: object) -> tuple[Report, int]:
    """Both paths; they must agree in the report object and in its JSON and text. Returns the
    report and how many recordings the tally path decided one by one."""
    ref = build_retention(db, settings, exact=True, **kw)  # type: ignore[arg-type]
    fast = build_retention(db, settings, **kw)  # type: ignore[arg-type]
    assert render_json(fast) == render_json(ref)
    assert render_table(fast) == render_table(ref)
    assert fast == ref
    now = kw["now"]
    assert isinstance(now, dt.datetime)
    days = int(kw.get("days", 30))  # type: ignore[call-overload]
    totals = tally.Totals(
        now,
        now + dt.timedelta(days=days),
        settings.retention.grace_days,
        settings.reports.forecast_days,
        dict(db.execute("select sha256, purge_after from retention_items where state = 'pending'")),
    )
    limit = int(kw.get("limit", 200))  # type: ignore[call-overload]
    decider = Decider(Policy.from_settings(settings), now)
    one_by_one = tally.fill_from_tallies(db, decider, totals, limit)
    assert totals.exp_count == ref.section("expiring").total_rows
    return ref, one_by_one


def _whole_sizes(db: sqlite_utils.Database) -> None:
    """The edge catalog holds a few sizes that are not whole numbers (an old import's): the
    tally path hands such a catalog to the reference (see ``test_odd_size_falls_back``)."""
    with write_txn(db):
        db.execute("update recordings set size = cast(size as integer) where typeof(size) = 'real'")


@pytest.fixture(scope="module")
def edge_db(tmp_path_factory: pytest.TempPathFactory) -> sqlite_utils.Database:
    db = _catalog(tmp_path_factory.mktemp("tally") / "c.sqlite", PLAN_NOW, 11)
    _whole_sizes(db)
    with write_txn(db):  # some linked to three cases and more, after the tallies were built
        for number in ("罚字〔2021〕第5号", "罚字〔2025〕第4号", "罚字〔2021〕第7号"):
            db.execute(
                "insert or ignore into case_recordings (case_number, sha256, linked_at,"
                " linked_by) select ?, sha256, 'x', 't' from (select distinct sha256 from"
                " case_recordings order by sha256 limit 40)",
                [number],
            )
    assert db.execute(
        "select count(*) from (select sha256 from case_recordings group by sha256"
        " having count(*) > 2)"
    ).fetchone()[0]
    shanghai = ZoneInfo("Asia/Shanghai")
    with write_txn(db):
        # A one-year case closed 400 days ago: R10 ended 35 days ago, later footage keeps R9.
        db.execute(
            "insert into cases (number, name, status, opened_at, closed_at, retention_years,"
            " created_by) values ('短1', '短', 'closed', '2020-01-01T00:00:00.000000Z', ?, 1,"
            " 't')",
            [_iso(PLAN_NOW - dt.timedelta(days=400))],
        )
        # One-year cases ending 60 and 31 days from now: inside the forecast, past the window.
        for number, days in (("中2", 305), ("中3", 334)):
            db.execute(
                "insert into cases (number, name, status, opened_at, closed_at,"
                " retention_years, created_by) values (?, ?, 'closed',"
                " '2020-01-01T00:00:00.000000Z', ?, 1, 't')",
                [number, number, _iso(PLAN_NOW - dt.timedelta(days=days))],
            )
        starts = [PLAN_NOW - dt.timedelta(days=d, hours=3) for d in (300, 150, 140, 400, 500)]
        # R9 ends in the last second of an hour, at LAST_SECOND and 1 µs either side (Shanghai)
        for end in (LAST_SECOND, LAST_US):
            edge = end.astimezone(shanghai)
            edge = edge.replace(month=edge.month - 6)
            starts += [edge + dt.timedelta(microseconds=us) for us in (-1, 0, 1)]
        for i, t in enumerate(starts):
            sha = f"ee{i:062x}"
            db.execute(
                "insert into recordings (sha256, size, ext, media_kind, vault_path, recorded_at,"
                " original_name, original_path, ingested_at, category)"
                " values (?, ?, 'MP4', 'video', 'v', ?, 'n', 'p', ?, 'patrol')",
                [sha, 5000 + i, _iso(t), _iso(t + dt.timedelta(hours=1))],
            )
            if i < 5:
                db.execute(
                    "insert into case_recordings (case_number, sha256, linked_at, linked_by)"
                    " values (?, ?, 'x', 't')",
                    [("短1", "短1", "短1", "中2", "中3")[i], sha],
                )
    return db


@pytest.mark.parametrize("zone", ZONES)
def test_tallies_give_the_row_by_row_report(edge_db: sqlite_utils.Database, zone: str) -> None:
    """R9 ends at ``now`` and 1 µs either side, at the window's end, on forecast-day edges mid
    hour (``now`` at 03:30), local midnights and clock changes; R10 ends near ``now``; R11,
    holds, marks, keeps, pending; odd time forms and important-marker values."""
    db = edge_db
    assert tally.recount(db) == []
    total = db.execute(
        "select count(*) from recordings where state in ('stored', 'pending_purge')"
    ).fetchone()[0]
    for extra, now, days, limit in (
        ({}, PLAN_NOW, 30, 200),
        ({}, PLAN_NOW, 200, 7),
        ({"retention": {"grace_days": 0}}, PLAN_NOW - dt.timedelta(days=1), 1, 5000),
        ({"reports": {"forecast_days": 10}}, LATER, 30, 5),
        ({}, PLAN_NOW.replace(hour=0, minute=0), 30, 200),  # now on an hour: no day edge mid hour
        ({}, PLAN_NOW, 60, 0),
        ({}, LAST_SECOND, 30, 200),  # R9 ends in an hour's last second
        ({}, LAST_US - dt.timedelta(microseconds=1), 30, 200),  # … and 1 µs before its last
        ({}, PLAN_NOW, 60, -3),  # a negative limit: all but the last three
    ):
        settings = parse_settings({"station": {"timezone": zone}, **extra})
        ref, one_by_one = _reports(db, settings, now=now, days=days, limit=limit, disk=DISK)
        assert 0 < one_by_one < total * 0.8  # most recordings counted by groups
        rules = {r["class"].split(" / ")[1] for r in ref.section("storage").rows}
        assert len(rules) >= 8
        summary = dict(ref.summary)
        assert summary["已到期未处理 / expired, awaiting the executor"] > 0
        assert summary["待删（宽限期）/ pending purge (grace)"] > 0


def test_odd_size_falls_back(tmp_path: Path) -> None:
    """A size that is not a whole number (summed as a float, in row order) is not added up by
    groups: the tally path gives way to the row-by-row one, and the report is the same."""
    db = _catalog(tmp_path / "c.sqlite", PLAN_NOW, 12)
    assert db.execute("select count(*) from recordings where typeof(size) = 'real'").fetchone()[0]
    assert tally.recount(db) == []
    settings = parse_settings({"station": {"timezone": "Asia/Shanghai"}})
    with pytest.raises(tally.TallyDrift):
        _reports(db, settings, now=PLAN_NOW, days=30, disk=DISK)


def _day(d: str) -> str:
    return f"{d}T02:00:00.000000Z"


def _check(db: sqlite_utils.Database, now: dt.datetime = PLAN_NOW) -> Report:
    assert tally.recount(db) == []
    assert tally_drift(db) == []
    rep = None
    for zone in ("Asia/Shanghai", "America/New_York"):
        settings = parse_settings({"station": {"timezone": zone}})
        rep, _ = _reports(db, settings, now=now, days=30, disk=DISK)
    assert rep is not None
    return rep


def test_tallies_follow_every_change(vault: Vault) -> None:
    """Built by the migration from rows already there, then kept exact through ingest, category
    tags, case links and unlinks, closing and reopening, long-term marks on cases and
    recordings, holds placed and released, the important marker reviewed, a retention run,
    approval, restore, a supervisor's keep, the purge, and direct SQL (times, a link moved to
    another case, a row deleted)."""
    db = open_catalog(vault.catalog_path, migrate=False)
    migrations.apply(db, [m for m in migrations.discover() if m.number < 150])
    assert "retention_tally" not in db.table_names()
    shas = [
        add_recording(vault, db, recorded_at=_day(d), category=c, important=imp)
        for d, c, imp in (
            ("2026-06-01", "patrol", False),  # R9 ends 1 Dec 02:00 +08:00 (Shanghai): expired
            ("2026-06-10", "patrol", False),  # expires within the window
            ("2026-06-10", "education", True),  # important marker
            ("2026-01-05", None, False),  # unclassified
            ("2026-01-05", "enforcement", False),  # a party's: not routine
            ("2025-01-05", "patrol", False),
            ("2026-11-20", "warning", False),
            ("2025-03-03", "patrol", False),  # expired: proposed, rejected or approved
            ("2025-04-04", "education", False),
            ("2025-05-05", "city-management", False),
        )
    ]
    shas.append(add_recording(vault, db, recorded_at=None, ingested_at=_day("2026-06-12")))
    opened = PLAN_NOW - dt.timedelta(days=3000)
    store.create_case(db, "甲1", name="甲", actor="c", opened_at=opened)
    store.create_case(db, "乙2", name="乙", actor="c", opened_at=opened)
    store.create_case(db, "丙3", name="丙", actor="c", retention_years=1, opened_at=opened)
    store.link(db, "甲1", shas[:2], actor="c")
    store.link(db, "乙2", shas[1:3], actor="c")
    migrations.apply(db)  # 0150: the tallies from the rows already there
    assert {"retention_tally", "retention_linked"} <= set(db.table_names())
    _check(db)

    new = add_recording(vault, db, recorded_at=_day("2026-06-11"), content=b"x" * 999)  # ingest
    shas.append(new)
    _check(db)
    tags.tag(db, [shas[3]], actor="c", category="patrol")  # unclassified → routine
    tags.tag(db, [shas[5]], actor="c", category="enforcement")
    _check(db)
    store.link(db, "丙3", [shas[3], shas[5], new], actor="c")
    store.link(db, "甲1", [new], actor="c")  # two cases
    store.link(db, "乙2", [new], actor="c")  # three
    _check(db)
    store.close_case(db, "丙3", actor="c", closed_at=PLAN_NOW - dt.timedelta(days=360))
    store.close_case(db, "甲1", actor="c", closed_at=PLAN_NOW - dt.timedelta(days=400))
    _check(db)
    store.unlink(db, "乙2", [new], actor="c")
    store.unlink(db, "甲1", [shas[0]], actor="c")
    _check(db)
    store.reopen_case(db, "甲1", actor="c", reason="复议")
    store.mark_long_term(db, "乙2", reason=2, actor="c")
    _check(db)
    for number in ("戊5", "丁4"):  # long-term cases marked in the same microsecond
        store.create_case(db, number, name=number, actor="c", opened_at=opened)
        store.link(db, number, shas[5:7], actor="c")
        store.mark_long_term(db, number, reason=1, actor="c", at=PLAN_NOW)
    _check(db)
    tags.hold(db, [shas[6], shas[0]], reason="诉讼", actor="c")
    tags.mark_long_term(db, [shas[4]], reason=3, actor="c")
    tags.review(db, [shas[2]], actor="c")
    _check(db)
    tags.release(db, [shas[0]], actor="c")
    _check(db)

    settings = Settings()
    executor.run(vault, db, settings, now=PLAN_NOW, actor="sup", wall_now=PLAN_NOW)
    _check(db)
    proposed = [p["sha256"] for p in approval.open_proposals(db)]
    assert proposed
    approval.reject(
        db,
        proposed[:1],
        actor="boss",
        reason="仍有价值",
        keep_until=PLAN_NOW + dt.timedelta(days=20),
        now=PLAN_NOW,
    )
    _check(db)
    out = approval.approve(
        vault, db, settings, [], actor="boss", reason="无保存意义", all_open=True, now=PLAN_NOW
    )
    approved = out.approved
    assert approved, out
    assert db.execute("select count(*) from recordings where state = 'pending_purge'").fetchone()[0]
    _check(db)
    executor.restore(vault, db, approved[:1], actor="boss", note="误删")
    _check(db)
    later = PLAN_NOW + dt.timedelta(days=40)
    executor.run(vault, db, settings, now=later, actor="sup", wall_now=later)
    approve_all(vault, db, settings, later)
    purge_at = later + dt.timedelta(days=settings.retention.grace_days + 1)
    executor.run(vault, db, settings, now=purge_at, actor="sup", wall_now=purge_at)
    assert db.execute("select count(*) from recordings where state = 'purged'").fetchone()[0]
    _check(db, purge_at)

    # Straight SQL, as a repair script or the sqlite3 shell would write it.
    with write_txn(db):
        db.execute(
            "update recordings set recorded_at = ?, ingested_at = ? where sha256 = ?",
            ["2026-06-01T02:00:00+08:00", "2026-06-02 10:00:00", shas[1]],
        )
        db.execute("update recordings set recorded_at = '' where sha256 = ?", [shas[2]])
        db.execute(
            "update case_recordings set case_number = '丙3' where case_number = '乙2'"
            " and sha256 = ?",
            [shas[2]],
        )
        db.execute(
            "update case_recordings set sha256 = ? where sha256 = ? and case_number = '丙3'",
            [shas[8], shas[3]],
        )
        db.execute("update recordings set important = 2, size = size + 7 where sha256 = ?", [new])
    _check(db)
    gone = add_recording(vault, db, recorded_at=_day("2026-05-30"), category="warning")
    _check(db)
    with write_txn(db):
        db.execute("delete from recordings where sha256 = ?", [gone])
    _check(db)


def test_drift_is_found_and_never_read(vault: Vault, db: sqlite_utils.Database) -> None:
    """A tally changed around its triggers (or a trigger dropped) is reported by ``station
    verify`` (catalog.tally_drift) and the report is decided row by row instead."""
    for d in ("2026-06-01", "2026-06-10", "2025-01-05"):
        add_recording(vault, db, recorded_at=_day(d), size=GB)
    settings = Settings()
    good = build_retention(db, settings, now=PLAN_NOW, exact=True)
    with write_txn(db):
        db.execute("update retention_tally set n = n + 1, bytes = bytes + 5")
    assert tally.recount(db)
    assert [t for t, _ in tally_drift(db)] == ["retention_tally"] * 3
    with pytest.raises(tally.TallyDrift):
        _reports(db, settings, now=PLAN_NOW, days=30)
    assert build_retention(db, settings, now=PLAN_NOW) == good  # read row by row
    from station.verify.run import run_verify

    found = run_verify(vault, db, settings, quick=True)
    assert "catalog.tally_drift" in found.counts()
    assert not found.ok
    with write_txn(db):
        db.execute("update retention_tally set n = n - 1, bytes = bytes - 5")
        db.execute("drop trigger ret_tally_rec_upd")
    assert not tally.usable(db)
    assert tally_drift(db) == [
        ("sqlite_master", "a table or trigger keeping the retention tallies is missing")
    ]
    assert build_retention(db, settings, now=PLAN_NOW) == good


def test_ingested_between_is_the_text_comparison(vault: Vault, db: sqlite_utils.Database) -> None:
    """The forecast's rate (bytes ingested in the last 30 days) read from the ingest-hour
    index alone equals the plain query, with times at, just before and after both ends and in
    other text forms."""
    now = PLAN_NOW
    since = now - dt.timedelta(days=30)
    times = []
    for edge in (since, now):
        for us in (-3_600_000_001, -1, 0, 1, 59 * 60 * 10**6, 3_600_000_000):
            times.append(_iso(edge + dt.timedelta(microseconds=us)))
    times += [
        (since + dt.timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        (since + dt.timedelta(hours=5)).isoformat(),
        (now - dt.timedelta(minutes=1)).astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat(),
        _iso(now)[:13],
        "2026-11-15 10:00:00",
    ]
    for i, t in enumerate(times):
        add_recording(vault, db, recorded_at=None, ingested_at=t, size=1 << i)
    a, b = _iso(since), _iso(now)
    plain = db.execute(
        "select coalesce(sum(size), 0) from recordings where ingested_at >= ? and ingested_at < ?",
        [a, b],
    ).fetchone()[0]
    assert tally.ingested_between(db, a, b) == plain
    plan = " ".join(
        r[3]
        for r in db.execute(
            "explain query plan select coalesce(sum(size), 0) from recordings indexed by"
            " recordings_ingest_hour where substr(ingested_at, 1, 13) between ? and ?"
            " and ingested_at >= ? and ingested_at < ?",
            [a[:13], b[:13], a, b],
        )
    )
    assert "COVERING INDEX recordings_ingest_hour" in plan
    assert 0 < plain < (1 << len(times)) - 1


def test_one_state_of_the_catalog_while_the_daemon_writes(
    vault: Vault, db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process commits between the report's reads of the tallies and of the rows (an
    ingest, a hold, a category, a link): the report is the one of the catalog as it was when it
    began (one read transaction), not a mix of both states."""
    shas = [
        add_recording(vault, db, recorded_at=_day(d), category=c)
        for d, c in (("2026-06-01", "patrol"), ("2026-06-10", "patrol"), ("2025-01-05", None))
    ]
    tags.hold(db, [shas[2]], reason="诉讼", actor="c")
    settings = Settings()
    before = build_retention(db, settings, now=PLAN_NOW, exact=True)
    other = open_catalog(vault.catalog_path)
    wrote: list[bool] = []

    def meanwhile(_db: sqlite_utils.Database, _queries: object) -> None:
        if wrote:
            return
        wrote.append(True)
        add_recording(vault, other, recorded_at=_day("2026-06-10"))  # an hour read row by row
        tags.hold(other, [shas[0]], reason="复议", actor="c")
        tags.tag(other, [shas[2]], actor="c", category="patrol")
        store.create_case(other, "丁9", name="丁", actor="c", opened_at=PLAN_NOW)
        store.link(other, "丁9", [shas[1]], actor="c")

    monkeypatch.setattr(tally, "_prefetch", meanwhile)
    assert build_retention(db, settings, now=PLAN_NOW) == before
    assert wrote
    after = build_retention(db, settings, now=PLAN_NOW, exact=True)
    assert after != before  # the writes are there for the next report
    assert build_retention(db, settings, now=PLAN_NOW) == after
    other.close()
