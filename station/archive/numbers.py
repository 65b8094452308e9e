"""Archive numbers (档号): assigned once, unique, never reused (DA/T 13-2022 §4.1, §4.3).

A number is made from the pattern ``archive.pattern`` (e.g. 全宗号-年度-保管期限代码-件号,
``{fonds}-{year}-{retention}-{item:04d}``); the 件号 runs within a *series*: the pattern and
every value it uses except the item. Numbers are keyed by what is archived (``kind`` +
``subject``), so a case, a recording inside a case (``case-item``: the case's number plus
``-NNN``) and a recording archived on its own each get theirs, and another kind (an enforcement
activity) can be added without touching these. Asking again returns the number given before —
whatever the case's retention says now — because a number never changes once given.

Each assignment writes its row and an ``archive.number_assigned`` audit entry in one
transaction (DESIGN invariant 3); the table's unique constraints and triggers (migration 0140)
keep two subjects from sharing a number and stop a number being deleted or changed.
"""

from __future__ import annotations

import datetime as dt
import json
import string
from dataclasses import asdict, dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from station.audit import append
from station.catalog import write_txn
from station.config import Settings
from station.errors import ArchiveNumberError, NotFoundError
from station.log import get
from station.retention.facts import iter_facts, load_cases
from station.retention.policy import (
    ArchivalPeriod,
    Policy,
    case_archival_period,
    recording_archival_period,
)
from station.timeutil import parse_iso, to_iso, utcnow

log = get()

KIND_CASE = "case"
KIND_CASE_ITEM = "case-item"
KIND_RECORDING = "recording"


@dataclass(frozen=True)
class ArchiveNumber:
    number: str  # 档号
    kind: str
    subject: str
    parent: str | None
    item: int  # 件号
    fonds: str  # 全宗号
    year: int  # 年度
    retention_code: str
    retention_words: str  # 保管期限
    retention_years: int | None
    retention_rule: str
    assigned_at: str
    assigned_by: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_COLUMNS = (
    "archive_number, kind, subject, parent, item, fonds, year, retention_code, retention_words,"
    " retention_years, retention_rule, assigned_at, assigned_by"
)


def lookup(db: sqlite_utils.Database, kind: str, subject: str) -> ArchiveNumber | None:
    if "archive_numbers" not in db.table_names():
        return None
    row = db.execute(
        f"select {_COLUMNS} from archive_numbers where kind = ? and subject = ?", [kind, subject]
    ).fetchone()
    return ArchiveNumber(*row) if row else None


def lookup_all(db: sqlite_utils.Database, kind: str) -> dict[str, ArchiveNumber]:
    """Every number of one kind, by subject (one query, for reports over all cases)."""
    if "archive_numbers" not in db.table_names():
        return {}
    rows = db.execute(
        f"select {_COLUMNS} from archive_numbers where kind = ? order by id", [kind]
    ).fetchall()
    out: dict[str, ArchiveNumber] = {}
    for row in rows:
        number = ArchiveNumber(*row)
        out.setdefault(number.subject, number)
    return out


def for_recording(db: sqlite_utils.Database, sha256: str) -> list[ArchiveNumber]:
    """Every number a recording carries: as an item of each archived case, and on its own."""
    if "archive_numbers" not in db.table_names():
        return []
    rows = db.execute(
        f"select {_COLUMNS} from archive_numbers where (kind = ? and subject like ?)"
        " or (kind = ? and subject = ?) order by id",
        [KIND_CASE_ITEM, f"%/{sha256}", KIND_RECORDING, sha256],
    ).fetchall()
    return [ArchiveNumber(*r) for r in rows]


def _used_fields(pattern: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(pattern) if f]


def _series(pattern: str, values: dict[str, Any]) -> str:
    used = {k: values[k] for k in _used_fields(pattern) if k != "item"}
    return json.dumps({"pattern": pattern, **used}, ensure_ascii=False, sort_keys=True)


def _insert(
    db: sqlite_utils.Database,
    *,
    kind: str,
    subject: str,
    parent: str | None,
    pattern: str,
    values: dict[str, Any],
    period: ArchivalPeriod,
    actor: str,
    audit_subject: str,
    at: str,
) -> ArchiveNumber:
    """Give the next item of the series (inside the caller's transaction)."""
    series = _series(pattern, values)
    last = db.execute("select max(item) from archive_numbers where series = ?", [series])
    item = int(last.fetchone()[0] or 0) + 1
    number = pattern.format(**{**values, "item": item})
    if db.execute("select 1 from archive_numbers where archive_number = ?", [number]).fetchone():
        raise ArchiveNumberError(
            f"档号 {number} 已被占用 / archive number {number} is taken already",
            where="archive.pattern",
            hint="the pattern must tell series apart (fonds, year, retention); numbers are "
            "never reused",
        )
    row = {
        "archive_number": number,
        "kind": kind,
        "subject": subject,
        "parent": parent,
        "series": series,
        "item": item,
        "fonds": str(values["fonds"]),
        "year": int(values["year"]),
        "retention_code": period.code,
        "retention_words": period.words,
        "retention_years": period.years,
        "retention_rule": period.rule,
        "pattern": pattern,
        "assigned_at": at,
        "assigned_by": actor,
    }
    db.table("archive_numbers").insert(row)
    append(
        db,
        "archive.number_assigned",
        actor=actor,
        subject=audit_subject,
        data={k: v for k, v in row.items() if k != "series"} | {"station": period.station},
        at=at,
    )
    log.info("archive.number_assigned", number=number, kind=kind, subject=subject)
    return ArchiveNumber(
        number,
        kind,
        subject,
        parent,
        item,
        str(values["fonds"]),
        int(values["year"]),
        period.code,
        period.words,
        period.years,
        period.rule,
        at,
        actor,
    )


def _year(text: str | None, tz: str, fallback: dt.datetime) -> int:
    when = parse_iso(text) if text else fallback
    return when.astimezone(ZoneInfo(tz)).year


def assign_case(
    db: sqlite_utils.Database,
    settings: Settings,
    number: str,
    *,
    actor: str,
    at: dt.datetime | None = None,
) -> ArchiveNumber:
    """The case's 档号: the one given before, or the next in its series. 年度 is the year the
    case was opened (local time); 保管期限 from its R11 mark or R10 years."""
    now = at or utcnow()
    with write_txn(db):
        found = lookup(db, KIND_CASE, number)
        if found is not None:
            return found
        cases = load_cases(db)
        if number not in cases:
            raise NotFoundError(f"没有这个案件 / no such case: {number!r}", where="NUMBER")
        opened = db.execute("select opened_at from cases where number = ?", [number]).fetchone()
        cfg = settings.archive
        period = case_archival_period(
            cases[number], Policy.from_settings(settings), cfg.retention_scheme
        )
        values = {
            "fonds": cfg.fonds,
            "category": cfg.category,
            "year": _year(opened[0], settings.station.timezone, now),
            "retention": period.code,
        }
        return _insert(
            db,
            kind=KIND_CASE,
            subject=number,
            parent=None,
            pattern=cfg.pattern,
            values=values,
            period=period,
            actor=actor,
            audit_subject=f"case:{number}",
            at=to_iso(now),
        )


def assign_case_items(
    db: sqlite_utils.Database,
    settings: Settings,
    number: str,
    shas: list[str],
    *,
    actor: str,
    at: dt.datetime | None = None,
    parent: ArchiveNumber | None = None,
) -> dict[str, ArchiveNumber]:
    """Each recording of an archived case: the case's 档号 + ``-NNN`` (in the order given, which
    callers make the recording order; a recording linked later gets the next free NNN).
    ``parent``: the number of what is archived when it is not a case (an activity)."""
    now = at or utcnow()
    out: dict[str, ArchiveNumber] = {}
    with write_txn(db):
        case = parent or assign_case(db, settings, number, actor=actor, at=now)
        period = ArchivalPeriod(
            case.retention_code,
            case.retention_words,
            case.retention_years,
            case.retention_rule,
            "同案件 / as its case",
        )
        for sha in shas:
            subject = f"{number}/{sha}"
            found = lookup(db, KIND_CASE_ITEM, subject)
            if found is None:
                values = {"fonds": case.fonds, "year": case.year, "retention": case.retention_code}
                found = _insert(
                    db,
                    kind=KIND_CASE_ITEM,
                    subject=subject,
                    parent=case.number,
                    pattern=case.number.replace("{", "{{").replace("}", "}}") + "-{item:03d}",
                    values=values,
                    period=period,
                    actor=actor,
                    audit_subject=sha,
                    at=to_iso(now),
                )
            out[sha] = found
    return out


def assign_recording(
    db: sqlite_utils.Database,
    settings: Settings,
    sha256: str,
    *,
    actor: str,
    at: dt.datetime | None = None,
) -> ArchiveNumber:
    """A recording archived on its own (not through a case): its own 档号 in the main pattern,
    年度 the year it was recorded, 保管期限 from its retention facts."""
    now = at or utcnow()
    with write_txn(db):
        found = lookup(db, KIND_RECORDING, sha256)
        if found is not None:
            return found
        facts = next(
            (f for f, _ in iter_facts(db, ("stored", "pending_purge"), shas=[sha256])), None
        )
        if facts is None:
            raise NotFoundError(f"没有这段录像 / no stored recording {sha256}", where="SHA256")
        cfg = settings.archive
        period = recording_archival_period(
            facts, Policy.from_settings(settings), cfg.retention_scheme
        )
        when = facts.recorded_at or facts.ingested_at
        values = {
            "fonds": cfg.fonds,
            "category": cfg.category,
            "year": when.astimezone(ZoneInfo(settings.station.timezone)).year,
            "retention": period.code,
        }
        return _insert(
            db,
            kind=KIND_RECORDING,
            subject=sha256,
            parent=None,
            pattern=cfg.pattern,
            values=values,
            period=period,
            actor=actor,
            audit_subject=sha256,
            at=to_iso(now),
        )


def number_for_export(
    db: sqlite_utils.Database, settings: Settings, sha256: str, *, actor: str
) -> ArchiveNumber:
    """The 档号 an exported recording's record carries: the one it has (as an item of an
    archived case, or on its own); else the next item of an archived case it is linked to; else
    a number of its own (the export copy is retained, R15, so the recording is archived now)."""
    found = for_recording(db, sha256)
    if found:
        return found[0]
    for (case,) in db.execute(
        "select case_number from case_recordings where sha256 = ? order by case_number", [sha256]
    ).fetchall():
        if lookup(db, KIND_CASE, case) is not None:
            return assign_case_items(db, settings, case, [sha256], actor=actor)[sha256]
    return assign_recording(db, settings, sha256, actor=actor)


def recording_period(db: sqlite_utils.Database, settings: Settings, sha256: str) -> ArchivalPeriod:
    """The recording's 保管期限 and the station's decision as they stand now."""
    facts = next((f for f, _ in iter_facts(db, ("stored", "pending_purge"), shas=[sha256])), None)
    if facts is None:
        raise NotFoundError(f"没有这段录像 / no stored recording {sha256}", where="SHA256")
    return recording_archival_period(
        facts, Policy.from_settings(settings), settings.archive.retention_scheme
    )


def assign_other(
    db: sqlite_utils.Database,
    settings: Settings,
    kind: str,
    subject: str,
    *,
    long_term_reason: int | None,
    actor: str,
    at: dt.datetime | None = None,
) -> ArchiveNumber:
    """A number for something archived that is not a case (an enforcement activity put on a
    disc, …): 年度 = the year it is archived, 保管期限 永久 when it carries an R11 mark, else
    the shortest class (the station's rule for unmarked footage, R9)."""
    from station.retention.policy import RULE_LONG_TERM_CASE, RULE_ROUTINE, period_words

    now = at or utcnow()
    with write_txn(db):
        found = lookup(db, kind, subject)
        if found is not None:
            return found
        cfg = settings.archive
        if long_term_reason is not None:
            code, words = period_words(None, cfg.retention_scheme)
            text = f"长期保存，永不清除 / kept without end (R11 {long_term_reason})"
            period = ArchivalPeriod(code, words, None, RULE_LONG_TERM_CASE, text)
        else:
            months = settings.retention.routine_months
            code, words = period_words(None, cfg.retention_scheme, months=months)
            text = f"保存 {months} 个月 / {months} months (R9)"
            period = ArchivalPeriod(code, words, None, RULE_ROUTINE, text)
        values = {
            "fonds": cfg.fonds,
            "category": cfg.category,
            "year": now.astimezone(ZoneInfo(settings.station.timezone)).year,
            "retention": period.code,
        }
        return _insert(
            db,
            kind=kind,
            subject=subject,
            parent=None,
            pattern=cfg.pattern,
            values=values,
            period=period,
            actor=actor,
            audit_subject=f"{kind}:{subject}",
            at=to_iso(now),
        )
