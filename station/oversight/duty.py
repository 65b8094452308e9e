"""Remote or continuous duty notes (R21, seed 003 第三十条): footage made on continuous duty,
duty elsewhere or in remote areas is due within 24 hours after the officer returns, not within
R1's 24 hours or R2's working days.

A note covers an officer (every recording of that officer ending inside ``from_at``…
``until_at``) or one session (every recording it brought in). ``DutyIndex.deadline`` gives the
moved deadline for a recording, or None when no note covers it; the compliance report uses it
for both the hours and the working-days rule, so the two agree.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from typing import Any

import sqlite_utils

from station.audit import append
from station.catalog import write_txn
from station.errors import StationError
from station.log import get
from station.timeutil import to_iso, utcnow

log = get()

KINDS = {
    "remote": ("异地或偏远地区执勤", "duty elsewhere or remote"),
    "continuous": ("连续执勤", "continuous duty"),
}
AFTER_RETURN = dt.timedelta(hours=24)


def add_note(
    db: sqlite_utils.Database,
    *,
    actor: str,
    until: dt.datetime,
    note: str,
    kind: str = "remote",
    officer_id: str | None = None,
    session_id: int | None = None,
    since: dt.datetime | None = None,
) -> dict[str, Any]:
    if not officer_id and session_id is None:
        raise StationError(
            "须指定执法人员或会话 / give an officer or a session", where="--officer/--session"
        )
    if kind not in KINDS:
        raise StationError(
            f"未知类型 / unknown kind {kind!r}", where="--kind", hint="remote|continuous"
        )
    if not note.strip():
        raise StationError("须说明情况 / a note is required", where="--note")
    if since is not None and since >= until:
        raise StationError("开始须早于返回 / --from must be before --until", where="--from")
    row = {
        "officer_id": officer_id,
        "session_id": session_id,
        "kind": kind,
        "from_at": to_iso(since) if since else None,
        "until_at": to_iso(until),
        "note": note.strip(),
        "created_at": to_iso(utcnow()),
        "created_by": actor,
    }
    with write_txn(db):
        if (
            session_id is not None
            and not db.execute("select 1 from sessions where id = ?", [session_id]).fetchone()
        ):
            raise StationError(f"没有这个会话 / no session {session_id}", where="--session")
        nid = db.execute(
            "insert into duty_notes (officer_id, session_id, kind, from_at, until_at, note,"
            " created_at, created_by) values (?, ?, ?, ?, ?, ?, ?, ?)",
            list(row.values()),
        ).lastrowid
        append(db, "duty.noted", actor=actor, subject=f"duty:{nid}", data=row)
    log.info("duty.noted", id=nid, officer=officer_id, session=session_id)
    return {"id": nid, **row}


def list_notes(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return list(db.query("select * from duty_notes order by until_at desc, id desc"))


class DutyIndex:
    """The notes in memory, for the compliance report's one pass over recordings."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.by_officer: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
        self.by_session: dict[int, str] = {}
        if "duty_notes" not in db.table_names():
            return
        for officer, session, since, until in db.execute(
            "select officer_id, session_id, from_at, until_at from duty_notes order by until_at"
        ):
            if session is not None:
                prev = self.by_session.get(session)
                self.by_session[session] = max(prev, until) if prev else until
            if officer:
                self.by_officer[officer].append((until, since or "", until))
        self._keys = {k: [u for u, _, _ in v] for k, v in self.by_officer.items()}

    def __bool__(self) -> bool:
        return bool(self.by_officer or self.by_session)

    def returned(self, officer: str | None, session: int | None, end_at: str) -> str | None:
        """The latest return (ISO) of a note covering this recording, or None."""
        best = self.by_session.get(session) if session is not None else None
        notes = self.by_officer.get(officer or "")
        if notes:
            keys = self._keys[officer or ""]
            for _, since, until in notes[bisect.bisect_left(keys, end_at) :]:
                if since <= end_at <= until and (best is None or until > best):
                    best = until
        return best

    def deadline(self, officer: str | None, session: int | None, end_at: str) -> str | None:
        back = self.returned(officer, session, end_at)
        if back is None:
            return None
        return to_iso(dt.datetime.fromisoformat(back) + AFTER_RETURN)
