"""How far behind the central copy is: read from the catalog only (cheap, no network)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlite_utils

from station.timeutil import utcnow


def fleet_status(db: sqlite_utils.Database, *, now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    state = {r[0]: r[1] for r in db.execute("select name, value from fleet_state")}
    counts = {
        r[0]: {"objects": r[1], "bytes": r[2] or 0}
        for r in db.execute(
            "select state, count(*), sum(size) from fleet_objects group by state order by state"
        )
    }
    oldest = db.execute(
        "select min(queued_at) from fleet_objects where state = 'queued'"
    ).fetchone()[0]
    lag_s = (now - dt.datetime.fromisoformat(oldest)).total_seconds() if oldest else 0.0
    failing = db.execute(
        "select count(*) from fleet_objects where state = 'queued' and attempts > 0"
    ).fetchone()[0]
    uploading = db.execute(
        "select count(*) from fleet_objects where state = 'queued' and upload_id is not null"
    ).fetchone()[0]
    freed = db.execute(
        "select count(*) from fleet_objects where freed_at is not null and state = 'confirmed'"
    ).fetchone()[0]
    outbox = db.execute("select count(*) from fleet_outbox").fetchone()[0]
    audit_seq = db.execute("select coalesce(max(seq), 0) from audit_log").fetchone()[0]
    central_seq = int(state.get("central_audit_seq") or 0)
    alerts = [
        dict(r)
        for r in db.query(
            "select id, at, code, message from alerts where code like 'fleet_%'"
            " and acknowledged_at is null order by id"
        )
    ]
    return {
        "enabled": state.get("enabled") == "1",
        "central_enabled": state.get("central") == "1",
        "objects": counts,
        "queued": counts.get("queued", {}).get("objects", 0),
        "queued_bytes": counts.get("queued", {}).get("bytes", 0),
        "oldest_queued_at": oldest,
        "lag_s": round(lag_s, 1),
        "failing": failing,
        "uploads_in_progress": uploading,
        "freed_local": freed,
        "outbox": outbox,
        "audit_seq": audit_seq,
        "central_audit_seq": central_seq,
        "central_audit_lag": max(0, audit_seq - central_seq),
        "last_sync_at": state.get("last_sync_at"),
        "last_ok_at": state.get("last_ok_at"),
        "last_error": state.get("last_error"),
        "alerts": alerts,
    }
