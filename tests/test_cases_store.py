"""Cases, links, marks, holds and tags in a real catalog; every change audited (R6, R10, R11)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlite_utils
from helpers_retention import add_recording, audit_events

from station.cases import search, store, tags
from station.cases.model import CaseStateError
from station.errors import NotFoundError, StationError
from station.vault import Vault

T = "2026-03-01T08:00:00.000000Z"


def test_create_link_close_audited(vault: Vault, db: sqlite_utils.Database) -> None:
    sha = add_recording(vault, db, recorded_at=T)
    case = store.create_case(
        db,
        "永城管罚 2026 第12号",
        name="占道经营",
        actor="clerk",
        opened_at=dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
    )
    assert case["status"] == "open" and case["created_by"] == "clerk"
    assert store.link(db, case["number"], [sha], actor="clerk") == {
        "linked": [sha],
        "already": [],
        "no_proves": [sha],  # R5: nothing says yet what it proves
    }
    # Linking again is reported, not duplicated.
    assert store.link(db, case["number"], [sha.upper()], actor="clerk")["already"] == [sha]
    closed = store.close_case(
        db, case["number"], actor="clerk", closed_at=dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    )
    assert closed["closed_at"] == "2026-05-01T00:00:00.000000Z"
    assert audit_events(db, "case:永城管罚 2026 第12号") == ["case.created", "case.closed"]
    assert audit_events(db, sha) == ["case.linked"]


def test_link_to_missing_case_changes_nothing(vault: Vault, db: sqlite_utils.Database) -> None:
    sha = add_recording(vault, db, recorded_at=T)
    with pytest.raises(NotFoundError, match="no such case"):
        store.link(db, "NOPE-1", [sha], actor="clerk")
    assert db["case_recordings"].count == 0
    assert audit_events(db) == []


def test_link_missing_recording_is_all_or_nothing(vault: Vault, db: sqlite_utils.Database) -> None:
    sha = add_recording(vault, db, recorded_at=T)
    store.create_case(db, "C1", name="n", actor="clerk")
    with pytest.raises(NotFoundError, match="no such recording"):
        store.link(db, "C1", [sha, "f" * 64], actor="clerk")
    assert db["case_recordings"].count == 0
    with pytest.raises(StationError, match="not a SHA-256"):
        store.link(db, "C1", ["xyz"], actor="clerk")


def test_close_twice_refused(vault: Vault, db: sqlite_utils.Database) -> None:
    store.create_case(db, "C1", name="n", actor="clerk")
    store.close_case(db, "C1", actor="clerk")
    with pytest.raises(CaseStateError, match="closed already"):
        store.close_case(db, "C1", actor="clerk")
    assert audit_events(db).count("case.closed") == 1


def test_close_before_opening_refused(db: sqlite_utils.Database) -> None:
    store.create_case(
        db, "C1", name="n", actor="c", opened_at=dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    )
    with pytest.raises(StationError, match="before the case was opened"):
        store.close_case(db, "C1", actor="c", closed_at=dt.datetime(2026, 4, 1, tzinfo=dt.UTC))


def test_reopen_then_close_again(db: sqlite_utils.Database) -> None:
    store.create_case(db, "C1", name="n", actor="c")
    with pytest.raises(CaseStateError, match="is open"):
        store.reopen_case(db, "C1", actor="c", reason="x")
    store.close_case(db, "C1", actor="c")
    case = store.reopen_case(db, "C1", actor="c", reason="复议 / review")
    assert case["status"] == "open" and case["closed_at"] is None
    assert store.close_case(db, "C1", actor="c")["status"] == "closed"
    assert audit_events(db, "case:C1") == [
        "case.created",
        "case.closed",
        "case.reopened",
        "case.closed",
    ]


def test_long_term_needs_a_reason_code(db: sqlite_utils.Database) -> None:
    store.create_case(db, "C1", name="n", actor="c")
    with pytest.raises(StationError, match="reason code"):
        store.mark_long_term(db, "C1", reason=None, actor="c")
    with pytest.raises(StationError, match="1 to 5"):
        store.mark_long_term(db, "C1", reason=6, actor="c")
    assert store.get_case(db, "C1")["long_term_reason"] is None
    case = store.mark_long_term(db, "C1", reason=2, note="当事人申请复议", actor="c")
    assert (case["long_term_reason"], case["long_term_note"]) == (2, "当事人申请复议")
    assert "case.long_term_marked" in audit_events(db, "case:C1")


@pytest.mark.parametrize(
    "number", ["城管 罚字 〔2026〕 第 7 号", "A 1", "案件一号", "湘衡住建罚〔2026〕3号"]
)
def test_numbers_with_spaces_and_chinese_round_trip(db: sqlite_utils.Database, number: str) -> None:
    store.create_case(db, number, name="名", actor="c")
    assert store.get_case(db, number)["number"] == number
    assert [r["number"] for r in store.list_cases(db)] == [number]


@pytest.mark.parametrize("number", ["", "  ", " A1", "A1 ", "A\n1", "A\x001"])
def test_bad_numbers_refused(db: sqlite_utils.Database, number: str) -> None:
    with pytest.raises(StationError, match="case number"):
        store.create_case(db, number, name="n", actor="c")
    assert db["cases"].count == 0


def test_duplicate_case_refused(db: sqlite_utils.Database) -> None:
    store.create_case(db, "C1", name="n", actor="c")
    with pytest.raises(CaseStateError, match="exists already"):
        store.create_case(db, "C1", name="other", actor="c")


def test_unlink_not_linked(vault: Vault, db: sqlite_utils.Database) -> None:
    sha = add_recording(vault, db, recorded_at=T)
    store.create_case(db, "C1", name="n", actor="c")
    with pytest.raises(CaseStateError, match="not linked"):
        store.unlink(db, "C1", [sha], actor="c")
    store.link(db, "C1", [sha], actor="c")
    assert store.unlink(db, "C1", [sha], actor="c") == [sha]
    assert audit_events(db, sha) == ["case.linked", "case.unlinked"]


def test_tags_holds_marks_review(vault: Vault, db: sqlite_utils.Database) -> None:
    sha = add_recording(vault, db, recorded_at=T, important=True)
    tags.tag(db, [sha], category="warning", proves="当事人拒不改正 / refused to comply", actor="c")
    row = db["recordings"].get(sha)
    assert (row["category"], row["proves"]) == ("warning", "当事人拒不改正 / refused to comply")
    with pytest.raises(StationError, match="unknown category"):
        tags.tag(db, [sha], category="parade", actor="c")
    with pytest.raises(StationError, match="nothing to tag"):
        tags.tag(db, [sha], actor="c")
    with pytest.raises(CaseStateError, match="no active hold"):
        tags.release(db, [sha], actor="c")
    with pytest.raises(StationError, match="needs a reason"):
        tags.hold(db, [sha], reason=" ", actor="c")
    ids = tags.hold(db, [sha], reason="诉讼 / lawsuit", actor="c")
    assert tags.release(db, [sha], actor="c", note="结案") == ids
    with pytest.raises(StationError, match="reason code"):
        tags.mark_long_term(db, [sha], reason=None, actor="c")
    tags.mark_long_term(db, [sha], reason=3, actor="c")
    tags.review(db, [sha], actor="c")
    marks = db["recording_marks"].get(sha)
    assert marks["long_term_reason"] == 3 and marks["reviewed_by"] == "c"
    assert audit_events(db, sha) == [
        "recording.tagged",
        "recording.held",
        "recording.released",
        "recording.long_term_marked",
        "recording.reviewed",
    ]


def test_search_by_every_r6_tag(vault: Vault, db: sqlite_utils.Database) -> None:
    with db.conn:
        db["units"].insert({"unit_id": "U1", "name": "城东中队", "department": "执法一科"})
        db["units"].insert({"unit_id": "U2", "name": "城西中队", "department": "执法二科"})
    a = add_recording(
        vault, db, recorded_at="2026-03-01T08:00:00.000000Z", unit="U1", device="D1", officer="O1"
    )
    b = add_recording(
        vault, db, recorded_at="2026-04-01T08:00:00.000000Z", unit="U2", device="D2", officer="O2"
    )
    store.create_case(
        db, "案 1", name="n", party="张三商行", cause="占道经营", actor="c", department="法制科"
    )
    store.link(db, "案 1", [b], actor="c")
    tags.hold(db, [a], reason="r", actor="c")

    def find(**kw: object) -> list[str]:
        return [r["sha256"] for r in search.search(db, search.Filters(**kw))]  # type: ignore[arg-type]

    assert find(unit="U1") == [a]
    assert find(unit="城西") == [b]
    assert find(department="执法一") == [a]
    assert find(department="法制") == [b]  # through the case's department
    assert find(device="D2") == [b]
    assert find(officer="O1") == [a]
    assert find(since=dt.datetime(2026, 3, 15, tzinfo=dt.UTC)) == [b]
    assert find(until=dt.datetime(2026, 3, 15, tzinfo=dt.UTC)) == [a]
    assert find(case="案 1") == [b]
    assert find(party="张三") == [b]
    assert find(cause="占道") == [b]
    assert find(held=True) == [a]
    assert find(held=False) == [b]
    assert find(long_term=True) == []
    store.mark_long_term(db, "案 1", reason=1, actor="c")
    assert find(long_term=True) == [b]
    assert find() == [a, b]
