"""Enrolled devices, their secrets, and alerts (R4; DESIGN.md invariant 5)."""

from __future__ import annotations

import json
import secrets
from typing import Any

import sqlite_utils

from station.audit.log import append as audit
from station.audit.protect import seal
from station.catalog import write_txn
from station.errors import NotFoundError, StationError
from station.log import get
from station.recorder.base import OFFICER_RE, SERIAL_RE, UNIT_RE
from station.timeutil import to_iso, utcnow
from station.usb_dock.checks import Enrolment

log = get()


def enrol(
    db: sqlite_utils.Database,
    device_id: str,
    *,
    officer_id: str,
    unit_id: str,
    actor: str,
    officer_name: str | None = None,
    unit_name: str | None = None,
    model: str | None = None,
    driver: str = "serial",
    usb_serial: str | None = None,
    secret: bytes | None = None,
) -> bytes:
    """Bind a device to an officer and unit; returns the secret to provision into the recorder.

    Re-enrolling replaces the binding and (when a new secret is given or none exists) the secret.
    """
    if not SERIAL_RE.match(device_id):
        raise StationError(
            f"device id {device_id!r} must be 7 letters/digits / 设备编号应为7位", where="DEVICE_ID"
        )
    if not OFFICER_RE.match(officer_id):
        raise StationError(
            f"执法证号格式不对（2–32 位字母或数字）/ certificate number {officer_id!r} must be "
            "2 to 32 letters or digits",
            where="--officer",
        )
    if not UNIT_RE.match(unit_id):
        raise StationError(f"unit number {unit_id!r} must be 12 digits / 单位编号应为12位数字")
    if driver not in ("serial", "mass-storage"):
        raise StationError(f"unknown driver {driver!r}", hint="serial or mass-storage")
    now = to_iso(utcnow())
    with write_txn(db):
        db.execute(
            "insert into units (unit_id, name) values (?, ?) on conflict(unit_id) do update set"
            " name = coalesce(excluded.name, units.name)",
            [unit_id, unit_name or unit_id],
        )
        db.execute(
            "insert into officers (officer_id, name, unit_id) values (?, ?, ?)"
            " on conflict(officer_id) do update set name = coalesce(excluded.name, officers.name),"
            " unit_id = excluded.unit_id",
            [officer_id, officer_name, unit_id],
        )
        db.execute(
            "insert into devices (device_id, model, driver, officer_id, unit_id, enrolled,"
            " enrolled_at, enrolled_by, usb_serial) values (?, ?, ?, ?, ?, 1, ?, ?, ?)"
            " on conflict(device_id) do update set model = coalesce(excluded.model, devices.model),"
            " driver = excluded.driver, officer_id = excluded.officer_id,"
            " unit_id = excluded.unit_id, enrolled = 1, enrolled_at = excluded.enrolled_at,"
            " enrolled_by = excluded.enrolled_by,"
            " usb_serial = coalesce(excluded.usb_serial, devices.usb_serial)",
            [device_id, model, driver, officer_id, unit_id, now, actor, usb_serial],
        )
        existing = db.execute(
            "select secret_hex from device_secrets where device_id = ?", [device_id]
        ).fetchone()
        if secret is None and existing:
            key = bytes.fromhex(existing[0])
        else:
            key = secret or secrets.token_bytes(32)
            db.execute(
                "insert into device_secrets (device_id, secret_hex, created_at, created_by)"
                " values (?, ?, ?, ?) on conflict(device_id) do update set"
                " secret_hex = excluded.secret_hex, created_at = excluded.created_at,"
                " created_by = excluded.created_by",
                [device_id, key.hex(), now, actor],
            )
        audit(
            db,
            "device.enrolled",
            actor=actor,
            subject=device_id,
            data={
                "officer_id": officer_id,
                "unit_id": unit_id,
                "driver": driver,
                "new_secret": secret is not None or not existing,
                **seal(db, ("devices", [device_id]), ("device_secrets", [device_id])),
            },
        )
    log.info("device.enrolled", device_id=device_id, officer_id=officer_id, unit_id=unit_id)
    return key


def revoke(db: sqlite_utils.Database, device_id: str, *, actor: str) -> None:
    with write_txn(db):
        cur = db.execute("update devices set enrolled = 0 where device_id = ?", [device_id])
        if cur.rowcount == 0:
            raise NotFoundError(f"no device {device_id} / 无此设备", where=device_id)
        db.execute("delete from device_secrets where device_id = ?", [device_id])
        audit(
            db,
            "device.revoked",
            actor=actor,
            subject=device_id,
            data=seal(db, ("devices", [device_id]), ("device_secrets", [device_id])),
        )
    log.info("device.revoked", device_id=device_id)


def enrolment(db: sqlite_utils.Database, device_id: str) -> Enrolment | None:
    row = db.execute(
        "select device_id, enrolled, officer_id, unit_id, service_state, service_since"
        " from devices where device_id = ?",
        [device_id],
    ).fetchone()
    if row is None:
        return None
    return Enrolment(row[0], bool(row[1]), row[2], row[3], row[4] or "in_service", row[5])


def device_for_usb_serial(db: sqlite_utils.Database, usb_serial: str) -> str | None:
    row = db.execute(
        "select device_id from devices where usb_serial = ? or device_id = ?",
        [usb_serial, usb_serial],
    ).fetchone()
    return row[0] if row else None


def secret_for(db: sqlite_utils.Database, device_id: str) -> bytes | None:
    row = db.execute(
        "select secret_hex from device_secrets where device_id = ?", [device_id]
    ).fetchone()
    return bytes.fromhex(row[0]) if row else None


def seen(db: sqlite_utils.Database, device_id: str, *, model: str | None, driver: str) -> None:
    """Record that a device was docked (known or not: unknown ones are listed for enrolment)."""
    now = to_iso(utcnow())
    with write_txn(db):
        db.execute(
            "insert into devices (device_id, model, driver, first_seen_at, last_seen_at)"
            " values (?, ?, ?, ?, ?) on conflict(device_id) do update set"
            " last_seen_at = excluded.last_seen_at,"
            " model = coalesce(devices.model, excluded.model)",
            [device_id, model, driver, now, now],
        )


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
            raise NotFoundError(f"no open alert {alert_id} / 无此未处理告警", where=str(alert_id))
        audit(db, "alert.acknowledged", actor=actor, subject=str(alert_id))


def list_alerts(db: sqlite_utils.Database, *, open_only: bool = True) -> list[dict[str, Any]]:
    sql = "select * from alerts"
    if open_only:
        sql += " where acknowledged_at is null"
    return [dict(r) for r in db.query(sql + " order by id")]


def list_devices(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in db.query(
            "select d.device_id, d.model, d.driver, d.officer_id, o.name as officer_name,"
            " d.unit_id, d.enrolled, d.enrolled_at, d.last_seen_at, d.usb_serial,"
            " d.service_state, d.service_since"
            " from devices d left join officers o using (officer_id) order by d.device_id"
        )
    ]
