"""Catalog rows of the inbox: ``inbox_drops`` and ``inbox_files`` (migration 0070)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlite_utils

from station.timeutil import to_iso, utcnow

ACTIVE = ("settling", "needs_details", "held", "ingesting")
FINAL = ("done", "partial", "gone", "refused")
ASSIGNABLE = ("settling", "needs_details", "held", "partial")


@dataclass
class DropRow:
    id: int
    folder: str
    name: str
    kind: str
    state: str
    officer_id: str | None
    device_id: str | None
    unit_id: str | None
    case_number: str | None
    method: str | None
    details_source: str | None
    error: str | None
    first_seen_at: str
    updated_at: str
    session_id: int | None
    files_new: int
    files_held: int
    files_failed: int
    files_removed: int
    assigned_by: str | None = None
    assigned_at: str | None = None
    done_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _row(db: sqlite_utils.Database, where: str, params: list[Any]) -> DropRow | None:
    cur = db.execute(f"select * from inbox_drops where {where}", params)
    cols = [c[0] for c in cur.description]
    r = cur.fetchone()
    return DropRow(**dict(zip(cols, r, strict=True))) if r else None


def get_drop(db: sqlite_utils.Database, drop_id: int) -> DropRow | None:
    return _row(db, "id = ?", [drop_id])


def latest_drop(db: sqlite_utils.Database, folder: str, name: str) -> DropRow | None:
    return _row(db, "folder = ? and name = ? order by id desc limit 1", [folder, name])


def list_drops(
    db: sqlite_utils.Database, *, states: tuple[str, ...] | None = None, limit: int = 200
) -> list[DropRow]:
    sql = "select * from inbox_drops"
    params: list[Any] = []
    if states:
        sql += f" where state in ({','.join('?' * len(states))})"
        params += list(states)
    sql += " order by id desc limit ?"
    params.append(limit)
    cur = db.execute(sql, params)
    cols = [c[0] for c in cur.description]
    return [DropRow(**dict(zip(cols, r, strict=True))) for r in cur.fetchall()]


def state_counts(db: sqlite_utils.Database) -> dict[str, int]:
    return {
        r[0]: r[1] for r in db.execute("select state, count(*) from inbox_drops group by state")
    }


def create_drop(db: sqlite_utils.Database, folder: str, name: str, kind: str, state: str) -> int:
    now = to_iso(utcnow())
    cur = db.execute(
        "insert into inbox_drops (folder, name, kind, state, first_seen_at, updated_at)"
        " values (?, ?, ?, ?, ?, ?)",
        [folder, name, kind, state, now, now],
    )
    return int(cur.lastrowid or 0)


def update_drop(db: sqlite_utils.Database, drop_id: int, **fields: Any) -> None:
    fields["updated_at"] = to_iso(utcnow())
    cols = ", ".join(f"{k} = ?" for k in fields)
    db.execute(f"update inbox_drops set {cols} where id = ?", [*fields.values(), drop_id])


def settled_files(db: sqlite_utils.Database, folder: str, name: str) -> dict[str, tuple[int, int]]:
    """Files of this drop place already dealt with and still in the inbox: rel -> (size, mtime).

    ``new``/``held`` files kept in place (setting keep), and failed or refused files, which are
    retried only when they change or on ``rescan --retry``.
    """
    rows = db.execute(
        "select f.rel, f.size, f.mtime_ns, f.outcome from inbox_files f"
        " join inbox_drops d on d.id = f.drop_id"
        " where d.folder = ? and d.name = ? and f.removed = 0 order by f.at",
        [folder, name],
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def failed_files(db: sqlite_utils.Database, folder: str, name: str) -> set[str]:
    rows = db.execute(
        "select f.rel from inbox_files f join inbox_drops d on d.id = f.drop_id"
        " where d.folder = ? and d.name = ? and f.removed = 0"
        " and f.outcome in ('failed', 'refused')",
        [folder, name],
    ).fetchall()
    return {r[0] for r in rows}


def record_file(
    db: sqlite_utils.Database,
    drop_id: int,
    rel: str,
    *,
    size: int | None,
    mtime_ns: int | None,
    outcome: str,
    sha256: str | None = None,
    error: str | None = None,
    removed: bool = False,
    session_id: int | None = None,
) -> None:
    db.execute(
        "insert or replace into inbox_files (drop_id, rel, size, mtime_ns, outcome, sha256, error,"
        " removed, session_id, at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            drop_id,
            rel,
            size,
            mtime_ns,
            outcome,
            sha256,
            error,
            int(removed),
            session_id,
            to_iso(utcnow()),
        ],
    )


def drop_files(db: sqlite_utils.Database, drop_id: int) -> list[dict[str, Any]]:
    cur = db.execute(
        "select rel, size, outcome, sha256, error, removed, session_id, at from inbox_files"
        " where drop_id = ? order by rel",
        [drop_id],
    )
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
