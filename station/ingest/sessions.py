"""The ``sessions`` table: every write to it goes through here (dock sessions, ``station
ingest``, inbox passes, start-up recovery).

Steps of a session's row: ``start`` (state ``running``, its live owner named, ``session.started``
audited in the same transaction) → ``update`` as facts come in (the recorder's identity, battery,
clock, counts) → for a run that clears its source: ``clearing_intent`` (inside the transaction of
the audited intent) then ``clearing_done`` → ``end`` (final state, ``session.ended`` audited). A
crash leaves ``running`` or ``intent`` behind; ``interrupted`` and ``clearing_interrupted`` close
such rows for recovery once their owner is dead (DESIGN.md invariant 8).

Every function runs in a write transaction of its own, or as a savepoint of the caller's, so a
row and its audit entry always commit together.
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

from station import audit
from station.catalog import write_txn

STATES = ("running", "done", "failed", "interrupted", "refused")

# Columns a run sets after ``start``; anything else is refused (a typo never writes silently).
COLUMNS = frozenset(
    {
        "device_id",
        "officer_id",
        "unit_id",
        "driver",
        "battery_pct",
        "storage_total",
        "storage_free",
        "device_clock",
        "station_clock",
        "drift_s",
        "flags",
        "message",
        "files_total",
        "files_done",
        "bytes_total",
        "bytes_done",
        "files_new",
        "files_held",
        "files_failed",
        "cleared",
    }
)


def start(
    db: sqlite_utils.Database,
    *,
    kind: str,
    slot: str,
    owner: str | None,
    started_at: str,
    actor: str,
    audit_data: dict[str, Any],
    **cols: Any,
) -> int:
    """A new ``running`` session row owned by ``owner``; returns its id."""
    _check(cols)
    row: dict[str, Any] = {"kind": kind, "slot": slot, "started_at": started_at}
    row.update(state="running", owner=owner, **cols)
    names = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    with write_txn(db):
        cur = db.execute(f"insert into sessions ({names}) values ({marks})", list(row.values()))
        sid = int(cur.lastrowid or 0)
        audit.append(db, "session.started", actor=actor, subject=subject(sid), data=audit_data)
    return sid


def update(db: sqlite_utils.Database, sid: int, **cols: Any) -> None:
    _check(cols)
    if not cols:
        return
    sets = ", ".join(f"{k} = ?" for k in cols)
    with write_txn(db):
        db.execute(f"update sessions set {sets} where id = ?", [*cols.values(), sid])


def end(
    db: sqlite_utils.Database,
    sid: int,
    *,
    state: str,
    ended_at: str,
    actor: str,
    audit_data: dict[str, Any],
    safe_to_undock: bool = False,
    **cols: Any,
) -> None:
    """The session's final state, with ``session.ended`` in the same transaction."""
    if state not in STATES or state == "running":
        raise ValueError(f"not a final session state: {state!r}")
    _check(cols)
    sets = {"state": state, "ended_at": ended_at, **cols}
    if safe_to_undock:
        sets["safe_to_undock"] = 1
    with write_txn(db):
        db.execute(
            f"update sessions set {', '.join(f'{k} = ?' for k in sets)} where id = ?",
            [*sets.values(), sid],
        )
        audit.append(db, "session.ended", actor=actor, subject=subject(sid), data=audit_data)


def clearing_intent(db: sqlite_utils.Database, sid: int) -> None:
    """The source's verified files are about to go (call inside the audited intent's txn)."""
    with write_txn(db):
        db.execute("update sessions set clearing = 'intent' where id = ?", [sid])


def clearing_done(db: sqlite_utils.Database, sid: int, cleared: int) -> None:
    with write_txn(db):
        db.execute(
            "update sessions set clearing = 'done', cleared = ? where id = ?", [cleared, sid]
        )


def unfinished(db: sqlite_utils.Database) -> list[tuple[int, str | None, str, str | None]]:
    """(id, owner, state, clearing) of rows still ``running`` or with a clearing intent."""
    return [
        (int(r[0]), r[1], str(r[2]), r[3])
        for r in db.execute(
            "select id, owner, state, clearing from sessions"
            " where state = 'running' or clearing = 'intent'"
        )
    ]


def interrupted(db: sqlite_utils.Database, sid: int, *, at: str, actor: str) -> None:
    """Recovery: a ``running`` session whose owner died."""
    with write_txn(db):
        db.execute(
            "update sessions set state = 'interrupted', ended_at = ?,"
            " message = 'station restarted during the session' where id = ?",
            [at, sid],
        )
        audit.append(
            db,
            "session.interrupted",
            actor=actor,
            subject=subject(sid),
            data={"reason": "its owner ended without closing it"},
        )


def clearing_interrupted(db: sqlite_utils.Database, sid: int, *, actor: str) -> None:
    """Recovery: the intent to delete was audited, the results never were — which files went
    is unknown until someone looks at the recorder or the inbox."""
    with write_txn(db):
        db.execute(
            "update sessions set clearing = 'interrupted',"
            " message = coalesce(message || '; ', '') || ? where id = ?",
            ["清除中断，结果未知 / clearing interrupted: results unknown", sid],
        )
        audit.append(
            db,
            "session.clearing_interrupted",
            actor=actor,
            subject=subject(sid),
            data={"reason": "its owner ended between the clearing intent and results"},
        )


def subject(sid: int) -> str:
    return f"session:{sid}"


def _check(cols: dict[str, Any]) -> None:
    unknown = set(cols) - COLUMNS
    if unknown:
        raise ValueError(f"not a session column a run may set: {sorted(unknown)}")
