"""Archive numbers (档号): pattern, series, uniqueness, never reused or changed (DA/T 13-2022
§4.1, §4.3), the 保管期限 beside the station's decision, an audit entry for each."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils
from transcode_support import add_recording, h264_aac_mp4

from station.archive import numbers
from station.cases import store
from station.config import Settings, parse_settings
from station.vault import Vault

OPENED = dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.UTC)


def make_case(db: sqlite_utils.Database, number: str, **kw: object) -> None:
    store.create_case(db, number, name=f"案件{number}", actor="clerk1", opened_at=OPENED, **kw)  # type: ignore[arg-type]


def test_two_cases_never_get_one_number_and_a_number_never_changes(
    db: sqlite_utils.Database, settings: Settings
) -> None:
    make_case(db, "湘执〔2026〕1号")
    make_case(db, "湘执〔2026〕2号")
    make_case(db, "湘执〔2026〕3号", retention_years=20)
    store.mark_long_term(db, "湘执〔2026〕2号", reason=2, actor="clerk1")
    a = numbers.assign_case(db, settings, "湘执〔2026〕1号", actor="clerk1")
    b = numbers.assign_case(db, settings, "湘执〔2026〕2号", actor="clerk1")
    c = numbers.assign_case(db, settings, "湘执〔2026〕3号", actor="clerk1")
    assert (a.number, a.retention_words, a.retention_years) == ("0001-2026-D10-0001", "定期10年", 5)
    assert (b.number, b.retention_words) == ("0001-2026-Y-0001", "永久")
    assert b.retention_rule == "R11-case"
    assert (c.number, c.retention_words) == ("0001-2026-D30-0001", "定期30年")
    assert len({a.number, b.number, c.number}) == 3
    # asking again gives the same number, even after the case's retention changed
    store.mark_long_term(db, "湘执〔2026〕1号", reason=5, actor="clerk1")
    assert numbers.assign_case(db, settings, "湘执〔2026〕1号", actor="x").number == a.number
    make_case(db, "湘执〔2026〕4号")
    assert numbers.assign_case(db, settings, "湘执〔2026〕4号", actor="x").number.endswith(
        "D10-0002"
    )
    # the catalog refuses a second holder, a deletion and a renumbering
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(
            "insert into archive_numbers (archive_number, kind, subject, series, item, fonds,"
            " year, retention_code, retention_words, retention_rule, pattern, assigned_at,"
            " assigned_by) values (?, 'case', 'other', 's', 1, 'f', 2026, 'Y', '永久', 'R10',"
            " 'p', 'now', 'x')",
            [a.number],
        )
    with pytest.raises(sqlite3.IntegrityError, match="never removed"):
        db.execute("delete from archive_numbers where archive_number = ?", [a.number])
    with pytest.raises(sqlite3.IntegrityError, match="never changes"):
        db.execute("update archive_numbers set archive_number = 'X' where id = 1")
    entries = [
        json.loads(r["data"])
        for r in db.query(
            "select data from audit_log where event = 'archive.number_assigned' and subject = ?",
            ["case:湘执〔2026〕2号"],
        )
    ]
    assert len(entries) == 1 and entries[0]["archive_number"] == b.number
    assert "R11" in entries[0]["station"]


def test_items_of_a_case_and_a_recording_on_its_own(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    settings = parse_settings(
        {
            "archive": {
                "fonds": "J012",
                "pattern": "{fonds}-{category}-{year}-{retention}-{item:03d}",
                "retention_scheme": "years",
            }
        }
    )
    shas = [
        add_recording(vault, db, h264_aac_mp4(tmp_path / f"c{i}.mp4", 0.4 + i / 10))
        for i in range(3)
    ]
    make_case(db, "A-1")
    store.link(db, "A-1", shas[:2], actor="clerk1")
    items = numbers.assign_case_items(db, settings, "A-1", shas[:2], actor="clerk1")
    assert [items[s].number for s in shas[:2]] == [
        "J012-SX-2026-D5-001-001",
        "J012-SX-2026-D5-001-002",
    ]
    # a recording linked later gets the next item; the earlier ones keep theirs
    store.link(db, "A-1", shas[2:], actor="clerk1")
    again = numbers.assign_case_items(db, settings, "A-1", shas, actor="clerk1")
    assert again[shas[0]] == items[shas[0]] and again[shas[2]].number.endswith("-001-003")
    own = numbers.assign_recording(db, settings, shas[0], actor="clerk1")
    assert (own.number, own.retention_words) == ("J012-SX-2026-D5-002", "5年")
    assert [n.number for n in numbers.for_recording(db, shas[0])] == [
        items[shas[0]].number,
        own.number,
    ]


def test_pattern_without_series_fields_cannot_hand_out_one_number_twice(
    db: sqlite_utils.Database,
) -> None:
    settings = parse_settings({"archive": {"pattern": "{fonds}-{item:04d}"}})
    make_case(db, "B-1")
    make_case(db, "B-2", retention_years=20)
    one = numbers.assign_case(db, settings, "B-1", actor="x")
    two = numbers.assign_case(db, settings, "B-2", actor="x")
    assert (one.number, two.number) == ("0001-0001", "0001-0002")


def test_slip_show_and_report_carry_archive_number_and_retention(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    """The R13 storage-location slip archives the case: it gets its 档号; `cases show` and the
    compliance report give 档号 and 保管期限 beside the station's retention decision."""
    from click.testing import CliRunner

    from station.cli import main
    from station.reports.compliance_report import build_compliance

    def run(*args: str) -> str:
        res = CliRunner().invoke(main, ["--home", str(vault.home), "--user", "clerk1", *args])
        assert res.exit_code == 0, res.output
        return res.stdout

    run("init")
    make_case(db, "C-9", retention_years=3)
    make_case(db, "C-10")
    store.close_case(db, "C-10", actor="clerk1", closed_at=OPENED + dt.timedelta(days=1))
    shown = json.loads(run("cases", "show", "C-9", "--json"))
    assert shown["archive_number"] is None and shown["retention_period"] == "定期10年"
    assert "3 years" in shown["station_retention"]
    slip = run("cases", "archived", "C-9", "--location", "档案室 3 号柜")
    assert "档号 / archive number: 0001-2026-D10-0001" in slip and "定期10年" in slip
    shown = json.loads(run("cases", "show", "C-9", "--json"))
    assert shown["archive_number"] == "0001-2026-D10-0001"
    # the supervisor report lists the case not yet archived with its 保管期限
    report = build_compliance(db, Settings(), now=OPENED + dt.timedelta(days=60))
    [row] = report.section("cases").rows
    assert row["number"] == "C-10" and row["retention_period"] == "定期10年（R10）"
    assert row["archive_number"] == "-"


def test_something_archived_that_is_not_a_case_gets_its_own_kind(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    """An enforcement activity (no party, no case row) put on a disc: keyed by its own kind, in
    the same series as cases, its recordings items of it."""
    make_case(db, "D-1")
    case = numbers.assign_case(db, settings, "D-1", actor="x", at=OPENED)
    act = numbers.assign_other(
        db, settings, "activity", "巡查-0301", long_term_reason=4, actor="x", at=OPENED
    )
    assert (act.kind, act.retention_words, act.number) == ("activity", "永久", "0001-2026-Y-0001")
    plain = numbers.assign_other(db, settings, "activity", "巡查-0302", long_term_reason=None,
                                 actor="x", at=OPENED)  # fmt: skip
    assert plain.number == "0001-2026-D10-0002" != case.number  # after the case's D10-0001
    sha = add_recording(vault, db, h264_aac_mp4(tmp_path / "x.mp4", 0.3))
    items = numbers.assign_case_items(db, settings, "巡查-0301", [sha], actor="x", parent=act)
    assert items[sha].number == "0001-2026-Y-0001-001"
    again = numbers.assign_other(db, settings, "activity", "巡查-0301", long_term_reason=None,
                                 actor="x")  # fmt: skip
    assert again == act
