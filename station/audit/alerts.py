"""Alerts for the people at the station (``station devices alerts``, the kiosk): a refused
device, an unusable audit key, an untrusted clock, a failing central store, a full vault.

Raising and acknowledging an alert are each one audit entry in the same transaction
(``alert.raised``, ``alert.acknowledged``); the log event is ``dock.alert``.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from station.audit.log import append as audit
from station.catalog import write_txn
from station.errors import NotFoundError
from station.log import get
from station.timeutil import to_iso, utcnow

log = get()


def raise_alert(
    db: sqlite_utils.Database,
    code: str,
    message: str,
    *,
    device_id: str | None = None,
    slot: str | None = None,
    session_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> int:
    with write_txn(db):
        cur = db.execute(
            "insert into alerts (at, code, device_id, slot, session_id, message, data)"
            " values (?, ?, ?, ?, ?, ?, ?)",
            [
                to_iso(utcnow()),
                code,
                device_id,
                slot,
                session_id,
                message,
                json.dumps(data or {}, ensure_ascii=False),
            ],
        )
        alert_id = int(cur.lastrowid or 0)
        audit(
            db,
            "alert.raised",
            actor="station",
            subject=device_id or slot,
            data={"alert_id": alert_id, "code": code, "session_id": session_id},
        )
    log.warning("dock.alert", code=code, device_id=device_id, slot=slot, alert_id=alert_id)
    return alert_id


def acknowledge(db: sqlite_utils.Database, alert_id: int, *, actor: str) -> None:
    with write_txn(db):
        cur = db.execute(
            "update alerts set acknowledged_at = ?, acknowledged_by = ? where id = ?"
            " and acknowledged_at is null",
            [to_iso(utcnow()), actor, alert_id],
        )
        if cur.rowcount == 0:
            raise NotFoundError(f"无此未处理告警 / no open alert {alert_id}", where=str(alert_id))
        audit(db, "alert.acknowledged", actor=actor, subject=str(alert_id))


def list_alerts(db: sqlite_utils.Database, *, open_only: bool = True) -> list[dict[str, Any]]:
    sql = "select * from alerts"
    if open_only:
        sql += " where acknowledged_at is null"
    return [dict(r) for r in db.query(sql + " order by id")]
