"""Departments (科室, R6/R14; seed 002 附件1 第十条: stored and searched by department, with
access rights per department).

A recording's department is, first found: its own (set by a clerk), the department of a case it
is linked to, its officer's, its unit's (``DEPARTMENT_SQL``). An account with a department sees
and asks for only that department's footage; an account without one (the unit's head, the
administrator) covers every department. A supervisor with a department approves only requests
for that department's footage. Refusals are audit entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlite_utils

from station.audit import append
from station.audit.protect import seal
from station.catalog import write_txn
from station.errors import NotFoundError, PermissionDenied, StationError
from station.log import get

log = get()

# The department of recording ``r`` (an alias in the query), as SQL.
DEPARTMENT_SQL = (
    "coalesce(r.department,"
    " (select c.department from case_recordings l join cases c on c.number = l.case_number"
    "  where l.sha256 = r.sha256 and c.department is not null order by l.linked_at limit 1),"
    " (select o.department from officers o where o.officer_id = r.officer_id),"
    " (select u.department from units u where u.unit_id = r.unit_id))"
)


def user_department(db: sqlite_utils.Database, name: str) -> str | None:
    """The account's department, or None (no account, or the whole unit)."""
    if "department" not in {c[1] for c in db.execute("pragma table_info(users)")}:
        return None
    row = db.execute("select department from users where name = ?", [name]).fetchone()
    return row[0] if row and row[0] else None


def recording_departments(db: sqlite_utils.Database, shas: Sequence[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for sha in shas:
        row = db.execute(
            f"select {DEPARTMENT_SQL} from recordings r where r.sha256 = ?", [sha]
        ).fetchone()
        out[sha] = row[0] if row else None
    return out


def check_scope(db: sqlite_utils.Database, user: str, shas: Sequence[str], action: str) -> None:
    """Refuse (and audit) when ``user`` has a department and a recording belongs to another."""
    mine = user_department(db, user)
    if mine is None:
        return
    outside = {s: d for s, d in recording_departments(db, shas).items() if d and d != mine}
    if not outside:
        return
    with write_txn(db):
        append(
            db,
            "access.out_of_department",
            actor=user,
            subject=None,
            data={"action": action, "department": mine, "recordings": outside},
        )
    log.warning("access.out_of_department", user=user, action=action, n=len(outside))
    sha, dept = next(iter(outside.items()))
    raise PermissionDenied(
        f"录像属于「{dept}」，不属于本科室「{mine}」/ recording {sha[:16]} belongs to department "
        f"{dept!r}, not yours ({mine!r})",
        where=action,
        hint="ask the unit's head (an account without a department) to handle it",
    )


def visible(db: sqlite_utils.Database, user: str, shas: Sequence[str]) -> bool:
    """Whether ``user`` may see an access request for these recordings (R14)."""
    mine = user_department(db, user)
    if mine is None:
        return True
    return all(d in (mine, None) for d in recording_departments(db, shas).values())


def scope_rows(
    db: sqlite_utils.Database, user: str, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Search results limited to the user's department (R14); everything for the whole unit."""
    mine = user_department(db, user)
    if mine is None:
        return rows
    depts = recording_departments(db, [r["sha256"] for r in rows])
    return [r for r in rows if depts.get(r["sha256"]) in (mine, None)]


def set_department(
    db: sqlite_utils.Database, kind: str, key: str, department: str | None, *, actor: str
) -> None:
    """Set the department of an account (``user``), an officer, or recordings."""
    table, column = {"user": ("users", "name"), "officer": ("officers", "officer_id")}[kind]
    value = department.strip() if department and department.strip() else None
    with write_txn(db):
        row = db.execute(f"select department from {table} where {column} = ?", [key]).fetchone()
        if row is None:
            raise NotFoundError(f"没有 / no {kind} {key!r}", where=key)
        db.execute(f"update {table} set department = ? where {column} = ?", [value, key])
        append(
            db,
            f"department.{kind}_set",
            actor=actor,
            subject=f"{kind}:{key}",
            data={
                "department": value,
                "previous": row[0],
                **(seal(db, ("users", [key])) if kind == "user" else {}),
            },
        )
    log.info("department.set", kind=kind, key=key, department=value)


def list_departments(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    def bump(dept: str | None, what: str, n: int) -> None:
        if dept:
            found.setdefault(dept, {"department": dept, "users": 0, "officers": 0, "cases": 0})
            found[dept][what] += n

    for dept, n in db.execute("select department, count(*) from users group by 1"):
        bump(dept, "users", n)
    for dept, n in db.execute("select department, count(*) from officers group by 1"):
        bump(dept, "officers", n)
    for dept, n in db.execute("select department, count(*) from cases group by 1"):
        bump(dept, "cases", n)
    return sorted(found.values(), key=lambda d: d["department"])


def need_department_text(value: str) -> str:
    if not value.strip():
        raise StationError("科室为空 / the department is empty", where="DEPARTMENT")
    return value.strip()
