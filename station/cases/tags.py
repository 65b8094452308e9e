"""Tags on recordings (R5 "what it proves", R6 category), legal holds, per-recording long-term
marks (R11) and the clerk's review of the recorder's important marker. Each change is audited in
its own transaction (DESIGN.md invariant 3)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import sqlite_utils

from station.audit import append
from station.audit.protect import seal
from station.cases.model import CaseStateError, check_category, check_reasons
from station.cases.store import _check_recordings, _now
from station.catalog import write_txn
from station.errors import StationError
from station.log import get

log = get()


def tag(
    db: sqlite_utils.Database,
    shas: Sequence[str],
    *,
    actor: str,
    category: str | None = None,
    proves: str | None = None,
    sound_content: str | None = None,
    department: str | None = None,
    at: dt.datetime | None = None,
) -> list[str]:
    """Set the category (R6), the "what it proves" note (证明对象, R5) and/or the content of a
    sound recording (录音内容, R13's written description)."""
    if category is None and proves is None and sound_content is None and department is None:
        raise StationError(
            "没有要设置的标签 / nothing to tag",
            where="--category/--proves/--sound-content/--department",
            hint="give one",
        )
    if category is not None:
        check_category(category)
    when = _now(at)
    done = []
    with write_txn(db):
        for rec in _check_recordings(db, shas):
            sha = rec["sha256"]
            old = db.execute(
                "select category, proves, sound_content, department from recordings"
                " where sha256 = ?",
                [sha],
            ).fetchone()
            changes: dict[str, Any] = {}
            if category is not None:
                changes["category"] = category
            if proves is not None:
                changes["proves"] = proves
            if sound_content is not None:
                changes["sound_content"] = sound_content
            if department is not None:
                changes["department"] = department.strip() or None
            db.table("recordings").update(sha, changes)
            append(
                db,
                "recording.tagged",
                actor=actor,
                subject=sha,
                data={
                    "set": changes,
                    "previous": {
                        "category": old[0],
                        "proves": old[1],
                        "sound_content": old[2],
                        "department": old[3],
                    },
                },
                at=when,
            )
            done.append(sha)
    log.info("recording.tagged", count=len(done), category=category)
    return done


def hold(
    db: sqlite_utils.Database,
    shas: Sequence[str],
    *,
    reason: str,
    actor: str,
    at: dt.datetime | None = None,
) -> list[int]:
    """Place a legal hold: the recording is kept until every hold on it is released."""
    if not reason.strip():
        raise StationError("须说明保全理由 / a hold needs a reason", where="--reason")
    when = _now(at)
    ids = []
    with write_txn(db):
        for rec in _check_recordings(db, shas):
            sha = rec["sha256"]
            if rec["state"] == "purged":
                raise CaseStateError(
                    f"录像已删除 / the recording {sha} was purged; only its tombstone remains",
                    where="SHA256",
                )
            hold_id = db.execute(
                "insert into holds (sha256, reason, placed_at, placed_by) values (?, ?, ?, ?)",
                [sha, reason, when, actor],
            ).lastrowid
            append(
                db,
                "recording.held",
                actor=actor,
                subject=sha,
                data={
                    "hold": hold_id,
                    "reason": reason,
                    "state": rec["state"],
                    **seal(db, ("holds", [hold_id])),
                },
                at=when,
            )
            ids.append(int(hold_id or 0))
    log.info("recording.held", count=len(ids))
    return ids


def release(
    db: sqlite_utils.Database,
    shas: Sequence[str],
    *,
    actor: str,
    note: str | None = None,
    at: dt.datetime | None = None,
) -> list[int]:
    """Release every active hold on the recordings; a recording without one is an error."""
    when = _now(at)
    released: list[int] = []
    with write_txn(db):
        for rec in _check_recordings(db, shas):
            sha = rec["sha256"]
            active = [
                r[0]
                for r in db.execute(
                    "select id from holds where sha256 = ? and released_at is null", [sha]
                )
            ]
            if not active:
                raise CaseStateError(
                    f"录像没有保全 / recording {sha} has no active hold", where="SHA256"
                )
            db.execute(
                "update holds set released_at = ?, released_by = ?, release_note = ?"
                " where sha256 = ? and released_at is null",
                [when, actor, note, sha],
            )
            append(
                db,
                "recording.released",
                actor=actor,
                subject=sha,
                data={"holds": active, "note": note, **seal(db, ("holds", active))},
                at=when,
            )
            released += active
    log.info("recording.released", holds=len(released))
    return released


def _upsert_marks(db: sqlite_utils.Database, sha: str, values: dict[str, Any]) -> None:
    db.table("recording_marks").upsert({"sha256": sha, **values}, pk="sha256")


def mark_long_term(
    db: sqlite_utils.Database,
    shas: Sequence[str],
    *,
    reason: int | Sequence[int] | None,
    actor: str,
    note: str | None = None,
    at: dt.datetime | None = None,
) -> list[str]:
    """R11 on a recording (not a whole case): keep it forever; one or more reason codes. To put
    it on a disc, link it to a case or an enforcement activity (执法活动) and mark that."""
    codes = check_reasons(reason)
    code = codes[0]
    when = _now(at)
    done = []
    with write_txn(db):
        for rec in _check_recordings(db, shas):
            sha = rec["sha256"]
            if rec["state"] == "purged":
                raise CaseStateError(f"录像已删除 / recording {sha} was purged", where="SHA256")
            _upsert_marks(
                db,
                sha,
                {
                    "long_term_reason": code,
                    "long_term_reasons": json.dumps(codes),
                    "long_term_note": note,
                    "long_term_at": when,
                    "long_term_by": actor,
                },
            )
            append(
                db,
                "recording.long_term_marked",
                actor=actor,
                subject=sha,
                data={
                    "reason": code,
                    "reasons": codes,
                    "note": note,
                    **seal(db, ("recording_marks", [sha])),
                },
                at=when,
            )
            done.append(sha)
    log.info("recording.long_term_marked", count=len(done), reason=code)
    return done


def review(
    db: sqlite_utils.Database,
    shas: Sequence[str],
    *,
    actor: str,
    at: dt.datetime | None = None,
) -> list[str]:
    """A clerk reviewed recordings carrying the important marker; the marker alone no longer
    keeps them (routine rules apply again)."""
    when = _now(at)
    done = []
    with write_txn(db):
        for rec in _check_recordings(db, shas):
            sha = rec["sha256"]
            _upsert_marks(db, sha, {"reviewed_at": when, "reviewed_by": actor})
            append(
                db,
                "recording.reviewed",
                actor=actor,
                subject=sha,
                data=seal(db, ("recording_marks", [sha])),
                at=when,
            )
            done.append(sha)
    log.info("recording.reviewed", count=len(done))
    return done
