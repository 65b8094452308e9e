"""Stop-recording notes (R18, seed 002 附件1 第十六条).

In the listed situations a recorder may be stopped; the officer then writes a work record
(工作记录) naming the reason and its basis, and the head (主要领导) reviews it. Steps:

1. ``add``: the officer (or a clerk for them) records when the recorder was stopped, when it
   resumed, which situation of 第十六条 applied and why — state ``submitted``;
2. ``decide``: a supervisor approves or rejects it, with a note — state ``approved`` or
   ``rejected``; a decided note is not decided again;
3. the notes are shown beside that officer's footage (``station recordings show``) and in the
   compliance report.

Every change writes its audit entry in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlite_utils

from station.audit import append
from station.catalog import write_txn
from station.catalog.where import Where
from station.errors import NotFoundError, StationError
from station.log import get
from station.timeutil import to_iso, utcnow

log = get()

# 002 附件1 第十六条: situations in which a recorder may be stopped, in the source's words.
SITUATIONS: dict[int, tuple[str, str]] = {
    1: ("涉及个人隐私及商业秘密的", "personal privacy or trade secrets are involved"),
    2: ("因天气等自然原因无法使用的", "weather or other natural causes prevent its use"),
    3: (
        "相对管理人及其他人员阻碍正常执法无法继续使用的",
        "the party or others obstruct enforcement so it cannot go on",
    ),
    4: ("其他不可抗力因素不能使用的", "other force majeure"),
}
_ITEM = {1: "一", 2: "二", 3: "三", 4: "四"}
STATES = {
    "submitted": "待审核 / waiting for the head",
    "approved": "已审核同意 / approved",
    "rejected": "未同意 / rejected",
}


def situation_text(code: int) -> str:
    zh, en = SITUATIONS.get(code, ("未知情形", "unknown"))
    return f"第十六条第（{_ITEM.get(code, str(code))}）项：{zh} / {en}"


def add(
    db: sqlite_utils.Database,
    *,
    actor: str,
    officer_id: str,
    stopped_at: dt.datetime,
    situation: int,
    reason: str,
    resumed_at: dt.datetime | None = None,
    device_id: str | None = None,
    session_id: int | None = None,
) -> dict[str, Any]:
    if situation not in SITUATIONS:
        raise StationError(
            f"情形须为 1–4 / the situation must be 1 to 4 (第十六条), got {situation}",
            where="--situation",
            hint="; ".join(f"{k} {zh}" for k, (zh, _) in SITUATIONS.items()),
        )
    if not reason.strip():
        raise StationError(
            "须写明无法使用的原因和依据 / write the reason and its basis", where="--reason"
        )
    if resumed_at is not None and resumed_at < stopped_at:
        raise StationError("恢复早于停止 / --resumed is before --stopped", where="--resumed")
    row = {
        "officer_id": officer_id,
        "device_id": device_id,
        "session_id": session_id,
        "stopped_at": to_iso(stopped_at),
        "resumed_at": to_iso(resumed_at) if resumed_at else None,
        "situation": situation,
        "reason": reason.strip(),
        "recorded_at": to_iso(utcnow()),
        "recorded_by": actor,
        "state": "submitted",
    }
    with write_txn(db):
        nid = db.execute(
            "insert into stop_notes (officer_id, device_id, session_id, stopped_at, resumed_at,"
            " situation, reason, recorded_at, recorded_by, state)"
            " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            list(row.values()),
        ).lastrowid
        append(db, "stop.recorded", actor=actor, subject=f"stop:{nid}", data=row)
    log.info("stop.recorded", id=nid, officer=officer_id, situation=situation)
    return get_note(db, int(nid or 0))


def get_note(db: sqlite_utils.Database, note_id: int) -> dict[str, Any]:
    rows = list(db.query("select * from stop_notes where id = ?", [note_id]))
    if not rows:
        raise NotFoundError(f"没有这条停止记录说明 / no stop note #{note_id}", where="ID")
    row = rows[0]
    row["situation_text"] = situation_text(row["situation"])
    row["state_text"] = STATES[row["state"]]
    return row


def decide(
    db: sqlite_utils.Database, note_id: int, *, actor: str, approve: bool, note: str | None
) -> dict[str, Any]:
    """The head's review: approve or reject, once."""
    state = "approved" if approve else "rejected"
    if not approve and not (note or "").strip():
        raise StationError("不同意须说明理由 / a rejection needs a note", where="--note")
    with write_txn(db):
        row = get_note(db, note_id)
        if row["state"] != "submitted":
            raise StationError(
                f"已审核 / stop note #{note_id} was decided already ({row['state_text']})",
                where="ID",
            )
        when = to_iso(utcnow())
        db.execute(
            "update stop_notes set state = ?, decided_at = ?, decided_by = ?, decision_note = ?"
            " where id = ?",
            [state, when, actor, note, note_id],
        )
        append(
            db,
            f"stop.{state}",
            actor=actor,
            subject=f"stop:{note_id}",
            data={"officer_id": row["officer_id"], "note": note},
        )
    log.info(f"stop.{state}", id=note_id, actor=actor)
    return get_note(db, note_id)


def list_notes(
    db: sqlite_utils.Database,
    *,
    officer_id: str | None = None,
    state: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> list[dict[str, Any]]:
    w = Where()
    w.given(officer_id, "officer_id = ?")
    w.given(state, "state = ?")
    w.given(since, "coalesce(resumed_at, stopped_at) >= ?")
    w.given(until, "stopped_at < ?")
    rows = list(db.query("select * from stop_notes" + w.sql + " order by stopped_at, id", w.args))
    for r in rows:
        r["situation_text"] = situation_text(r["situation"])
        r["state_text"] = STATES[r["state"]]
    return rows


def near(
    db: sqlite_utils.Database, officer_id: str | None, day_start: str, day_end: str
) -> list[dict[str, Any]]:
    """Notes of an officer overlapping a span (beside a recording of theirs)."""
    if not officer_id or "stop_notes" not in db.table_names():
        return []
    return list_notes(db, officer_id=officer_id, since=day_start, until=day_end)
