"""Helpers for the integrity tests: recordings stored the way the ingest engine stores them
(content-addressed file, mode 0444, catalog row, sealed audit entry in the same transaction)."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import sqlite_utils

from station.audit import append
from station.audit.seal import recording_seal
from station.catalog import write_txn
from station.vault import Vault


def store_recording(
    vault: Vault,
    db: sqlite_utils.Database,
    content: bytes,
    *,
    seq: int = 1,
    officer: str = "000123",
    device: str = "DSJ0001",
    audit: bool = True,
) -> dict[str, Any]:
    sha = hashlib.sha256(content).hexdigest()
    path = vault.original_path(sha, "mp4")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.chmod(path, 0o444)
    name = f"{device}_{officer}_20261101083000_{seq}.MP4"
    row: dict[str, Any] = {
        "sha256": sha,
        "size": len(content),
        "ext": "mp4",
        "media_kind": "video",
        "vault_path": str(path.relative_to(vault.home)),
        "device_id": device,
        "officer_id": officer,
        "unit_id": "320412000000",
        "method": "body camera DSJ-X1 / serial driver",
        "recorded_at_device": "2026-11-01T08:30:00",
        "recorded_at": "2026-11-01T00:30:01.500000Z",
        "drift_s": 1.5,
        "original_name": name,
        "original_path": f"DCIM/{name}",
        "important": 0,
        "sequence": seq,
        "ingested_at": "2026-11-01T10:00:00.000000Z",
    }
    with write_txn(db):
        db["recordings"].insert(row)
        if audit:
            append(
                db,
                "ingest.file_stored",
                actor="dock",
                subject=sha,
                data={"outcome": "new", **recording_seal(row)},
            )
    return row


def store_derivative(
    vault: Vault, db: sqlite_utils.Database, original: dict[str, Any], content: bytes
) -> int:
    sha = hashlib.sha256(content).hexdigest()
    path = vault.archival_path(original["sha256"], "mp4-h264", "mp4")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.chmod(path, 0o444)
    with write_txn(db):
        db["derivatives"].insert(
            {
                "original_sha256": original["sha256"],
                "profile": "mp4-h264",
                "sha256": sha,
                "size": len(content),
                "ext": "mp4",
                "vault_path": str(path.relative_to(vault.home)),
                "state": "done",
                "created_at": "2026-11-01T10:05:00.000000Z",
            }
        )
        append(db, "transcode.done", actor="transcode", subject=original["sha256"])
        return int(db.execute("select max(id) from derivatives").fetchone()[0])
