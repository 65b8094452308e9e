"""Cases in the catalog: create, link, unlink, mark long-term, close, reopen, archive slip.

Each function changes the catalog and writes its audit entry in one ``write_txn`` (DESIGN.md
invariant 3); a refused change leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import sqlite_utils

from station.audit import append
from station.audit.protect import seal
from station.cases.model import check_case_number, check_case_texts, check_reasons, check_sha
from station.catalog import write_txn
from station.catalog.where import Where
from station.errors import CaseStateError, NotFoundError, StationError
from station.log import get
from station.timeutil import said_time, to_iso, utcnow

log = get()


def _now(at: dt.datetime | None) -> str:
    return to_iso(at or utcnow())


def _case_row(db: sqlite_utils.Database, number: str) -> dict[str, Any]:
    rows = list(db.query("select * from cases where number = ?", [number]))
    if not rows:
        log.warning("case.not_found", number=number)
        raise NotFoundError(
            f"没有这个案件 / no such case: {number!r}",
            where="NUMBER",
            hint="list cases with `station cases list`, or create it with `station cases create`",
        )
    return rows[0]


def create_case(
    db: sqlite_utils.Database,
    number: str,
    *,
    name: str,
    actor: str,
    cause: str | None = None,
    party: str | None = None,
    unit_id: str | None = None,
    department: str | None = None,
    retention_years: int | None = None,
    opened_at: dt.datetime | None = None,
    kind: str = "case",
) -> dict[str, Any]:
    """A case, or an enforcement activity (执法活动, ``kind="activity"``): footage grouped
    without a party — a mass incident, an emergency, a campaign — that is linked, marked
    long-term (R11) and burned to disc exactly like a case."""
    check_case_number(number)
    if kind not in ("case", "activity"):
        raise StationError(f"未知类型 / unknown kind {kind!r}", where="kind")
    if kind == "activity" and party:
        raise StationError(
            "执法活动没有当事人 / an enforcement activity has no party; create a case instead",
            where="--party",
        )
    check_case_texts(name=name, cause=cause, party=party, department=department, unit_id=unit_id)
    if not name.strip():
        raise StationError("案件名称为空 / the case name is empty", where="--name")
    if retention_years is not None and retention_years < 1:
        raise StationError(
            "保存年限至少 1 年 / case retention must be at least 1 year (R10)", where="--years"
        )
    row = {
        "number": number,
        "name": name,
        "cause": cause,
        "party": party,
        "unit_id": unit_id,
        "department": department,
        "status": "open",
        "opened_at": _now(opened_at),
        "retention_years": retention_years,
        "created_by": actor,
        "kind": kind,
    }
    with write_txn(db):
        if db.execute("select 1 from cases where number = ?", [number]).fetchone():
            raise CaseStateError(f"案件已存在 / the case {number!r} exists already", where="NUMBER")
        db.table("cases").insert(row)
        append(
            db,
            "case.created",
            actor=actor,
            subject=f"case:{number}",
            data={**row, **seal(db, ("cases", [number]))},
        )
    log.info("case.created", number=number, actor=actor, kind=kind)
    return _case_row(db, number)


def _check_recordings(db: sqlite_utils.Database, shas: Sequence[str]) -> list[dict[str, Any]]:
    if not shas:
        raise StationError("没有给出录像 / no recording given", where="SHA256")
    rows = []
    for raw in shas:
        sha = check_sha(raw)
        found = list(db.query("select sha256, state from recordings where sha256 = ?", [sha]))
        if not found:
            log.warning("recording.not_found", sha256=sha)
            raise NotFoundError(f"没有这段录像 / no such recording: {sha}", where="SHA256")
        rows.append(found[0])
    return rows


def link(
    db: sqlite_utils.Database,
    number: str,
    shas: Sequence[str],
    *,
    actor: str,
    at: dt.datetime | None = None,
    proves: str | None = None,
) -> dict[str, list[str]]:
    """Link recordings to a case (R10: they now keep as long as the case). All or nothing.
    ``proves`` (证明对象, R5) is written on every recording linked, audited as a tag; the
    answer lists the recordings still without one (``no_proves``)."""
    when = _now(at)
    linked: list[str] = []
    already: list[str] = []
    with write_txn(db):
        _case_row(db, number)
        for rec in _check_recordings(db, shas):
            sha = rec["sha256"]
            if rec["state"] == "purged":
                raise CaseStateError(
                    f"录像已按保存期删除 / the recording {sha} was purged; its tombstone remains",
                    where="SHA256",
                )
            if db.execute(
                "select 1 from case_recordings where case_number = ? and sha256 = ?", [number, sha]
            ).fetchone():
                already.append(sha)
                continue
            db.table("case_recordings").insert(
                {"case_number": number, "sha256": sha, "linked_at": when, "linked_by": actor}
            )
            append(
                db,
                "case.linked",
                actor=actor,
                subject=sha,
                data={
                    "case": number,
                    "state": rec["state"],
                    **seal(db, ("case_recordings", [(number, sha)])),
                },
                at=when,
            )
            linked.append(sha)
        if proves is not None and proves.strip():
            for sha in linked + already:
                old = db.execute("select proves from recordings where sha256 = ?", [sha])
                previous = old.fetchone()[0]
                db.execute("update recordings set proves = ? where sha256 = ?", [proves, sha])
                append(
                    db,
                    "recording.tagged",
                    actor=actor,
                    subject=sha,
                    data={"set": {"proves": proves}, "previous": {"proves": previous}},
                    at=when,
                )
        missing = [
            sha
            for sha in linked + already
            if not db.execute("select proves from recordings where sha256 = ?", [sha]).fetchone()[0]
        ]
    log.info("case.linked", number=number, linked=len(linked), already=len(already))
    return {"linked": linked, "already": already, "no_proves": missing}


def unlink(
    db: sqlite_utils.Database,
    number: str,
    shas: Sequence[str],
    *,
    actor: str,
    at: dt.datetime | None = None,
) -> list[str]:
    when = _now(at)
    done: list[str] = []
    with write_txn(db):
        _case_row(db, number)
        for rec in _check_recordings(db, shas):
            sha = rec["sha256"]
            cur = db.execute(
                "delete from case_recordings where case_number = ? and sha256 = ?", [number, sha]
            )
            if cur.rowcount == 0:
                raise CaseStateError(
                    f"录像未关联到该案件 / recording {sha} is not linked to case {number!r}",
                    where="SHA256",
                )
            append(
                db,
                "case.unlinked",
                actor=actor,
                subject=sha,
                data={"case": number, **seal(db, ("case_recordings", [(number, sha)]))},
                at=when,
            )
            done.append(sha)
    log.info("case.unlinked", number=number, count=len(done))
    return done


def mark_long_term(
    db: sqlite_utils.Database,
    number: str,
    *,
    reason: int | Sequence[int] | None,
    actor: str,
    note: str | None = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """R11: keep the case's (or activity's) footage forever and queue it for disc burning; one
    or more reason codes (items of 第十四条)."""
    codes = check_reasons(reason)
    when = _now(at)
    with write_txn(db):
        case = _case_row(db, number)
        db.table("cases").update(
            number,
            {
                "long_term_reason": codes[0],
                "long_term_reasons": json.dumps(codes),
                "long_term_note": note,
                "long_term_at": when,
            },
        )
        append(
            db,
            "case.long_term_marked",
            actor=actor,
            subject=f"case:{number}",
            data={
                "reason": codes[0],
                "reasons": codes,
                "note": note,
                "previous": case["long_term_reason"],
                **seal(db, ("cases", [number])),
            },
            at=when,
        )
    log.info("case.long_term_marked", number=number, reason=codes[0], reasons=codes)
    return _case_row(db, number)


def case_reasons(case: dict[str, Any]) -> list[int]:
    """The R11 reason codes of a case row (several since they were introduced)."""
    if case.get("long_term_reasons"):
        return [int(c) for c in json.loads(case["long_term_reasons"])]
    return [case["long_term_reason"]] if case.get("long_term_reason") else []


def close_case(
    db: sqlite_utils.Database,
    number: str,
    *,
    actor: str,
    closed_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Close a case; its footage keeps ``retention_years`` from this date (R10)."""
    when = _now(closed_at)
    with write_txn(db):
        case = _case_row(db, number)
        if case["status"] == "closed":
            log.warning("case.close_refused", number=number, closed_at=case["closed_at"])
            raise CaseStateError(
                f"案件已结案 / the case {number!r} was closed already on "
                f"{said_time(case['closed_at'])}",
                where="NUMBER",
                hint="reopen it first with `station cases reopen` if it was closed by mistake",
            )
        if when < case["opened_at"]:
            raise StationError(
                f"结案日期早于立案 / closing date {said_time(when)} is before the case was "
                f"opened ({said_time(case['opened_at'])})",
                where="--date",
            )
        db.execute(
            "update cases set status = 'closed', closed_at = ? where number = ?", [when, number]
        )
        append(
            db,
            "case.closed",
            actor=actor,
            subject=f"case:{number}",
            data={"closed_at": when, **seal(db, ("cases", [number]))},
        )
    log.info("case.closed", number=number, closed_at=when)
    return _case_row(db, number)


def reopen_case(
    db: sqlite_utils.Database,
    number: str,
    *,
    actor: str,
    reason: str,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Reopen a closed case: its footage is kept again while it is open (R10)."""
    if not reason.strip():
        raise StationError("须说明重新立案的理由 / give a reason to reopen", where="--reason")
    when = _now(at)
    with write_txn(db):
        case = _case_row(db, number)
        if case["status"] != "closed":
            raise CaseStateError(f"案件未结 / the case {number!r} is open", where="NUMBER")
        db.execute("update cases set status = 'open', closed_at = null where number = ?", [number])
        append(
            db,
            "case.reopened",
            actor=actor,
            subject=f"case:{number}",
            data={
                "previous_closed_at": case["closed_at"],
                "reason": reason,
                **seal(db, ("cases", [number])),
            },
            at=when,
        )
    log.info("case.reopened", number=number)
    return _case_row(db, number)


def set_archive_location(
    db: sqlite_utils.Database,
    number: str,
    *,
    location: str,
    actor: str,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """R13: write where the case's AV record is filed (a storage-location slip)."""
    if not location.strip():
        raise StationError("存放位置为空 / the storage location is empty", where="--location")
    when = _now(at)
    with write_txn(db):
        case = _case_row(db, number)
        db.table("cases").update(number, {"archive_location": location, "archived_at": when})
        append(
            db,
            "case.archive_recorded",
            actor=actor,
            subject=f"case:{number}",
            data={
                "location": location,
                "previous": case["archive_location"],
                **seal(db, ("cases", [number])),
            },
            at=when,
        )
    log.info("case.archive_recorded", number=number)
    return _case_row(db, number)


def get_case(db: sqlite_utils.Database, number: str) -> dict[str, Any]:
    case = _case_row(db, number)
    case["recordings"] = [
        r
        for r in db.query(
            "select r.sha256, r.recorded_at, r.officer_id, r.device_id, r.size, r.state,"
            " r.category, l.linked_at, l.linked_by from case_recordings l"
            " join recordings r on r.sha256 = l.sha256 where l.case_number = ?"
            " order by r.recorded_at, r.sha256",
            [number],
        )
    ]
    return case


def list_cases(
    db: sqlite_utils.Database,
    *,
    status: str | None = None,
    long_term: bool | None = None,
    unit_id: str | None = None,
    party: str | None = None,
    cause: str | None = None,
    limit: int = 1000,
    kind: str | None = None,
) -> list[dict[str, Any]]:
    w = Where()
    w.given(kind, "c.kind = ?")
    w.given(status, "c.status = ?")
    w.switch(long_term, "c.long_term_reason is not null")
    w.given(unit_id, "c.unit_id = ?")
    w.given(party, "instr(c.party, ?) > 0")
    w.given(cause, "instr(c.cause, ?) > 0")
    sql = (
        "select c.*, (select count(*) from case_recordings l where l.case_number = c.number)"
        " as recordings from cases c" + w.sql + " order by c.opened_at desc, c.number limit ?"
    )
    return list(db.query(sql, [*w.args, limit]))
