"""Device service states (R4, seeds 000 第十七条, 002 附件1 第十四条、第十五条).

A device is ``in_service``, ``in_repair`` (送修: handed to the information centre) or
``retired``. Events are dated and kept (``device_events``): ``damaged`` (a fault was noticed;
the device must stop being used), ``in_repair``, ``in_service`` (back), ``retired``. A device in
repair or retired is refused at the dock (``station.usb_dock.checks``).

R4's "inspected from time to time": ``inspected`` events (``station devices inspect``) with
their result; a fault found at an inspection is also a ``damaged`` event, so its 24 hours run.
The device report shows each device's last inspection and those not inspected for
``INSPECT_DAYS``.

R4's 24 hours: a damaged device goes for repair within 24 hours. ``late_repairs`` lists every
damage not followed by ``in_repair`` within 24 hours — still waiting, or handed in late.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlite_utils

from station.audit.log import append as audit
from station.audit.protect import seal
from station.catalog import write_txn
from station.errors import NotFoundError, StationError
from station.log import get
from station.timeutil import to_iso, utcnow

log = get()

STATES = {
    "in_service": "在用 / in service",
    "in_repair": "送修 / in repair",
    "retired": "报废停用 / retired",
}
HAND_IN = dt.timedelta(hours=24)
INSPECT_DAYS = 90  # a device not inspected for this long is named in the device report


def _device(db: sqlite_utils.Database, device_id: str) -> dict[str, Any]:
    rows = list(db.query("select * from devices where device_id = ?", [device_id]))
    if not rows:
        raise NotFoundError(f"没有这个设备 / no device {device_id}", where=device_id)
    return rows[0]


def record(
    db: sqlite_utils.Database,
    device_id: str,
    event: str,
    *,
    actor: str,
    at: dt.datetime | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Record a dated event; ``in_repair``/``in_service``/``retired`` also set the state."""
    if event not in ("damaged", "inspected", *STATES):
        raise StationError(f"未知状态 / unknown state {event!r}", where="STATE")
    when = to_iso(at or utcnow())
    with write_txn(db):
        dev = _device(db, device_id)
        if dev["service_state"] == "retired" and event != "retired":
            raise StationError(
                f"设备 {device_id} 已报废 / device {device_id} is retired", where=device_id
            )
        db.execute(
            "insert into device_events (device_id, event, at, note, recorded_at, recorded_by)"
            " values (?, ?, ?, ?, ?, ?)",
            [device_id, event, when, note, to_iso(utcnow()), actor],
        )
        if event in STATES:
            db.execute(
                "update devices set service_state = ?, service_since = ? where device_id = ?",
                [event, when, device_id],
            )
        audit(
            db,
            f"device.{event}",
            actor=actor,
            subject=device_id,
            data={
                "at": when,
                "note": note,
                "previous": dev["service_state"],
                **seal(db, ("devices", [device_id])),
            },
        )
    log.info(f"device.{event}", device_id=device_id, at=when)
    return {**_device(db, device_id), "event": event, "at": when}


def last_inspections(db: sqlite_utils.Database) -> dict[str, str]:
    """device -> the time of its latest inspection (R4)."""
    if "device_events" not in db.table_names():
        return {}
    return {
        d: at
        for d, at in db.execute(
            "select device_id, max(at) from device_events where event = 'inspected'"
            " group by device_id"
        )
    }


def events(db: sqlite_utils.Database, device_id: str) -> list[dict[str, Any]]:
    return list(
        db.query("select * from device_events where device_id = ? order by at, id", [device_id])
    )


def late_repairs(db: sqlite_utils.Database, now: dt.datetime) -> list[dict[str, Any]]:
    """Damages not handed in for repair within 24 hours (R4): open ones older than 24 h, and
    ones handed in late. One row per damage event."""
    if "device_events" not in db.table_names():
        return []
    out = []
    for dmg in db.query(
        "select d.*, (select min(e.at) from device_events e where e.device_id = d.device_id"
        " and e.event in ('in_repair', 'retired') and e.at >= d.at) as handed_in"
        " from device_events d where d.event = 'damaged' order by d.at"
    ):
        damaged = dt.datetime.fromisoformat(dmg["at"])
        handed = dt.datetime.fromisoformat(dmg["handed_in"]) if dmg["handed_in"] else None
        if handed is not None and handed - damaged <= HAND_IN:
            continue
        if handed is None and now - damaged <= HAND_IN:
            continue
        late_h = ((handed or now) - damaged).total_seconds() / 3600.0
        out.append(
            {
                "device": dmg["device_id"],
                "damaged_at": dmg["at"],
                "handed_in_at": dmg["handed_in"],
                "hours": round(late_h, 1),
                "note": dmg["note"],
                "status": (
                    f"超过 24 小时送修 / handed in after {late_h:.0f} h"
                    if handed
                    else f"已 {late_h:.0f} 小时未送修 / not handed in for {late_h:.0f} h"
                ),
            }
        )
    return out
