"""Access requests and supervisor approvals (R14, R15).

Viewing or exporting archived footage needs a request (who asks, why, which recordings, for
whom) and a supervisor's approval (who, when, valid until). Every step, and every view and
export made under it, is an audit entry written in the same transaction as its row.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from station.access.users import User
from station.audit import append
from station.catalog import write_txn
from station.errors import NotFoundError, PermissionDenied, StationError
from station.log import get
from station.recref import resolve
from station.timeutil import parse_iso, said_time, to_iso, utcnow

log = get()

PURPOSES = ("view", "export")
MAX_VALID = dt.timedelta(days=30)


@dataclass
class Request:
    id: int
    purpose: str
    requested_by: str
    reason: str
    recipient: str | None
    created_at: str
    state: str
    decided_by: str | None
    decided_at: str | None
    valid_until: str | None
    decision_note: str | None
    recordings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def get_request(db: sqlite_utils.Database, request_id: int) -> Request:
    row = db.execute(
        "select id, purpose, requested_by, reason, recipient, created_at, state, decided_by,"
        " decided_at, valid_until, decision_note from access_requests where id = ?",
        [request_id],
    ).fetchone()
    if row is None:
        raise NotFoundError(f"无此调阅申请 / no access request {request_id}", where="REQUEST")
    items = [
        r[0]
        for r in db.execute(
            "select sha256 from access_request_items where request_id = ? order by sha256",
            [request_id],
        )
    ]
    fields = [
        "id", "purpose", "requested_by", "reason", "recipient", "created_at", "state",
        "decided_by", "decided_at", "valid_until", "decision_note",
    ]  # fmt: skip
    return Request(**dict(zip(fields, row, strict=True)), recordings=items)


def list_requests(db: sqlite_utils.Database, state: str | None = None) -> list[Request]:
    sql = "select id from access_requests"
    args: list[Any] = []
    if state:
        sql += " where state = ?"
        args.append(state)
    return [get_request(db, r[0]) for r in db.execute(sql + " order by id", args).fetchall()]


def create_request(
    db: sqlite_utils.Database,
    user: User,
    *,
    purpose: str,
    reason: str,
    recordings: list[str],
    recipient: str | None = None,
) -> Request:
    """R14: a request names who asks (``user``), why (``reason``, never empty) and what."""
    if purpose not in PURPOSES:
        raise StationError(f"purpose must be view or export, not {purpose!r}", where="--purpose")
    if not reason or not reason.strip():
        log.warning("access.request_refused", user=user.name, problem="empty reason")
        raise StationError(
            "必须填写调阅事由 (R14) / a reason is required",
            where="--reason",
            hint="say why the footage is needed, e.g. the case number and the court's letter",
        )
    if not recordings:
        raise StationError("至少指定一段录像 / name at least one recording", where="--recording")
    now = to_iso(utcnow())
    with write_txn(db):
        shas: list[str] = []
        for given in recordings:
            sha = resolve(db, given, where="--recording")
            gone = db.execute(
                "select 1 from recordings where sha256 = ? and state = 'purged'", [sha]
            ).fetchone()
            if gone:
                raise NotFoundError(
                    f"录像已删除 / recording {sha[:16]} was purged", where="--recording"
                )
            if sha not in shas:
                shas.append(sha)
        request = {
            "purpose": purpose,
            "requested_by": user.name,
            "reason": reason.strip(),
            "recipient": recipient,
            "created_at": now,
        }
        rid = int(db.table("access_requests").insert(request).last_pk or 0)
        db.table("access_request_items").insert_all(
            {"request_id": rid, "sha256": sha} for sha in sorted(set(shas))
        )
        append(
            db,
            "access.requested",
            actor=user.name,
            subject=f"request:{rid}",
            data={
                "purpose": purpose,
                "reason": reason.strip(),
                "recipient": recipient,
                "recordings": sorted(set(shas)),
            },
        )
    log.info("access.requested", request=rid, user=user.name, purpose=purpose, n=len(shas))
    return get_request(db, rid)


def decide(
    db: sqlite_utils.Database,
    user: User,
    request_id: int,
    *,
    approve: bool,
    valid_until: dt.datetime | None = None,
    note: str | None = None,
    now: dt.datetime | None = None,
) -> Request:
    """A supervisor approves (until ``valid_until``) or rejects a pending request (R14)."""
    now = now or utcnow()
    if user.role != "supervisor":
        raise PermissionDenied("只有监督负责人可审批 / only a supervisor decides access requests")
    with write_txn(db):
        req = get_request(db, request_id)
        if req.state != "pending":
            raise StationError(
                f"申请已处理 / request {request_id} is {req.state} already", where="REQUEST"
            )
        if req.requested_by == user.name:
            raise PermissionDenied(
                "不得审批本人的申请 / nobody approves their own request",
                where=f"request {request_id}",
            )
        until: str | None = None
        if approve:
            if valid_until is None or valid_until <= now:
                raise StationError("有效期必须晚于现在 / valid-until must be in the future")
            if valid_until - now > MAX_VALID:
                raise StationError(
                    f"批准有效期至多 {MAX_VALID.days} 天 / "
                    f"an approval lasts at most {MAX_VALID.days} days"
                )
            until = to_iso(valid_until)
        state = "approved" if approve else "rejected"
        db.table("access_requests").update(
            request_id,
            {
                "state": state,
                "decided_by": user.name,
                "decided_at": to_iso(now),
                "valid_until": until,
                "decision_note": note,
            },
        )
        append(
            db,
            f"access.{state}",
            actor=user.name,
            subject=f"request:{request_id}",
            data={"valid_until": until, "note": note},
        )
    log.info(f"access.{state}", request=request_id, by=user.name, valid_until=until)
    return get_request(db, request_id)


def usable_request(
    db: sqlite_utils.Database,
    user: User,
    request_id: int,
    *,
    purposes: tuple[str, ...],
    now: dt.datetime | None = None,
) -> Request:
    """The request, if it is approved for one of ``purposes`` and still valid; else refuse and
    leave a trace (audit entry ``access.refused``)."""
    req = get_request(db, request_id)
    now = now or utcnow()
    problem: str | None = None
    if req.state != "approved":
        problem = f"申请未获批准 / request {request_id} is {req.state}, not approved"
    elif req.purpose not in purposes:
        problem = f"批准用途不符 / request {request_id} was approved for {req.purpose} only"
    elif req.valid_until is None or parse_iso(req.valid_until) <= now:
        problem = (
            f"批准已过期 / the approval of request {request_id} expired at "
            f"{said_time(req.valid_until)}"
        )
    if problem is not None:
        log.warning("access.refused", request=request_id, user=user.name, problem=problem)
        with write_txn(db):
            append(
                db,
                "access.refused",
                actor=user.name,
                subject=f"request:{request_id}",
                data={"problem": problem, "purposes": list(purposes)},
            )
        raise PermissionDenied(problem, where=f"request {request_id}")
    return req


def record_views(
    db: sqlite_utils.Database, user: User, request_id: int, shas: list[str] | None = None
) -> list[dict[str, Any]]:
    """R14: a view of archived footage under an approval — only by the person who asked."""
    req = usable_request(db, user, request_id, purposes=PURPOSES)
    if user.name != req.requested_by:
        raise PermissionDenied(
            f"只有申请人可调阅 / request {request_id} was made by {req.requested_by}",
            where=f"request {request_id}",
        )
    chosen = req.recordings if not shas else [s for s in req.recordings if s in set(shas)]
    if shas and len(chosen) != len(set(shas)):
        raise PermissionDenied("录像不在申请范围内 / a recording asked for is not in this request")
    now = to_iso(utcnow())
    out = []
    with write_txn(db):
        for sha in chosen:
            row = db.execute(
                "select vault_path, original_name from recordings where sha256 = ?", [sha]
            ).fetchone()
            db.table("access_views").insert(
                {"request_id": request_id, "sha256": sha, "viewed_by": user.name, "viewed_at": now}
            )
            append(db, "access.viewed", actor=user.name, subject=sha, data={"request": request_id})
            out.append({"sha256": sha, "vault_path": row[0], "original_name": row[1]})
    log.info("access.viewed", request=request_id, user=user.name, n=len(out))
    return out


def approval_document(req: Request) -> str:
    """The approval as a JSON document (for the export package and print-outs)."""
    return json.dumps(
        {"title": "调阅审批 / Access approval (R14, R15)", **req.to_dict()},
        ensure_ascii=False,
        indent=2,
    )
