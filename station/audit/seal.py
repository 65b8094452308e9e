"""What an audit entry must carry so that ``station verify`` can tell an edited catalog row (R7).

A ``recordings`` row is changed only through the station, and every change writes an audit entry
(DESIGN.md invariant 3). The entry that creates a row — and any later entry that legitimately
changes one of the fields below — carries them in ``data["row"]``::

    append(db, "ingest.file_stored", actor=..., subject=sha256,
           data={..., **stored_recording_seal(db, sha256)})   # after the insert, same txn

Verify compares the row as it is now with the newest such entry; the entries themselves are
hash-chained and covered by signed checkpoints, so editing both the row and its entry is caught
as well. A part that legitimately deletes a row writes ``data={"row_removed": True}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Fields fixed at ingest (R5 metadata, identity, where the file lives). Fields clerks fill in
# later (proves, category, producer) and the retention state are not sealed.
SEALED_RECORDING_FIELDS = (
    "sha256",
    "size",
    "ext",
    "vault_path",
    "device_id",
    "officer_id",
    "unit_id",
    "method",
    "recorded_at_device",
    "recorded_at",
    "drift_s",
    "original_name",
    "original_path",
    "important",
    "first_session_id",
    "ingested_at",
)


def sealed_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    return {f: row.get(f) for f in SEALED_RECORDING_FIELDS}


def recording_seal(row: Mapping[str, Any]) -> dict[str, Any]:
    """The ``data`` keys to merge into the audit entry that writes ``row``."""
    return {"row": sealed_fields(row)}


def row_differences(row: Mapping[str, Any], recorded: Mapping[str, Any]) -> dict[str, Any]:
    """Fields whose value now differs from the audited one: ``{field: [audited, now]}``."""
    out: dict[str, Any] = {}
    for f in SEALED_RECORDING_FIELDS:
        if f not in recorded:
            continue
        was, now = recorded[f], row.get(f)
        if isinstance(was, int | float) and isinstance(now, int | float):
            same = float(was) == float(now)
        else:
            same = was == now
        if not same:
            out[f] = [was, now]
    return out


def stored_recording_seal(db: Any, sha256: str) -> dict[str, Any]:
    """``recording_seal`` of the row as SQLite stored it (defaults filled in): call it inside
    the transaction that inserted or changed the row, after the change."""
    cur = db.execute("select * from recordings where sha256 = ?", [sha256])
    row = cur.fetchone()
    if row is None:
        raise KeyError(sha256)
    names = [d[0] for d in cur.description]
    return recording_seal(dict(zip(names, row, strict=True)))
