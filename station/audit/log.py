"""Append-only, hash-chained audit entries.

``entry_hash = SHA-256(canonical JSON of {seq, at, actor, event, subject, data, prev_hash})``;
``prev_hash`` of the first entry is 64 zeros. Editing or removing any entry breaks the chain from
that point on, which ``station verify`` reports (R7).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlite_utils

from station.audit.head import after_commit as move_head
from station.catalog.txn import after_commit
from station.timeutil import to_iso, utcnow

GENESIS = "0" * 64


def canonical_json(obj: Any) -> bytes:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def entry_body(
    seq: int,
    at: str,
    actor: str,
    event: str,
    subject: str | None,
    data: dict[str, Any],
    prev_hash: str,
) -> dict[str, Any]:
    return {
        "seq": seq,
        "at": at,
        "actor": actor,
        "event": event,
        "subject": subject,
        "data": data,
        "prev_hash": prev_hash,
    }


def entry_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(body)).hexdigest()


def append(
    db: sqlite_utils.Database,
    event: str,
    *,
    actor: str,
    subject: str | None = None,
    data: dict[str, Any] | None = None,
    at: str | None = None,
) -> int:
    """Append one entry. Must run inside the caller's write transaction (``write_txn``)."""
    if not db.conn.in_transaction:
        raise RuntimeError("audit.append must run inside the change's write transaction")
    row = db.execute("select seq, entry_hash from audit_log order by seq desc limit 1").fetchone()
    seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
    at = at or to_iso(utcnow())
    payload = data or {}
    body = entry_body(seq, at, actor, event, subject, payload, prev)
    digest = entry_hash(body)
    db.execute(
        "insert into audit_log (seq, at, actor, event, subject, data, prev_hash, entry_hash)"
        " values (?, ?, ?, ?, ?, ?, ?, ?)",
        [seq, at, actor, event, subject, canonical_json(payload).decode("utf-8"), prev, digest],
    )
    after_commit(db, move_head)  # the head file and clock anchor move once this commits
    return seq
