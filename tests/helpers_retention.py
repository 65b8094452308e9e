"""Test helpers for the cases/retention/report tests: real files in a real vault, real catalog
rows (no mocks). Recordings are content-addressed bytes stored mode 0444 like ingest does (R7)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import sqlite_utils

from station.catalog import write_txn
from station.vault import Vault


def add_recording(
    vault: Vault,
    db: sqlite_utils.Database,
    *,
    recorded_at: str | None,
    content: bytes | None = None,
    officer: str = "100001",
    device: str = "DSJ0001",
    unit: str = "330100000001",
    ingested_at: str | None = None,
    delay_s: float | None = 3600.0,
    important: bool = False,
    ext: str = "MP4",
    end_at: str | None = None,
    size: int | None = None,
    category: str | None = "patrol",
) -> str:
    data = content if content is not None else os.urandom(256)
    sha = hashlib.sha256(data).hexdigest()
    path = vault.original_path(sha, ext)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o444)
    row: dict[str, Any] = {
        "sha256": sha,
        "size": size if size is not None else len(data),
        "ext": ext,
        "media_kind": "video",
        "vault_path": str(path.relative_to(vault.home)),
        "state": "stored",
        "device_id": device,
        "officer_id": officer,
        "unit_id": unit,
        "recorded_at": recorded_at,
        "end_at": end_at or recorded_at,
        "original_name": f"{device}_{officer}_{sha[:6]}.{ext}",
        "original_path": f"DCIM/{sha[:8]}.{ext}",
        "important": int(important),
        "ingested_at": ingested_at or recorded_at or "2026-01-01T00:00:00.000000Z",
        "ingest_delay_s": delay_s,
        "category": category,  # R9: known routine unless a test says otherwise
    }
    with write_txn(db):
        db["recordings"].insert(row)
    return sha


def add_derivative(
    vault: Vault, db: sqlite_utils.Database, original: str, content: bytes | None = None
) -> tuple[int, Path]:
    data = content if content is not None else os.urandom(128)
    path = vault.archival_path(original, "mp4-h264", "mp4")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o444)
    with write_txn(db):
        pk = (
            db["derivatives"]
            .insert(
                {
                    "original_sha256": original,
                    "profile": "mp4-h264",
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "size": len(data),
                    "ext": "mp4",
                    "vault_path": str(path.relative_to(vault.home)),
                    "state": "done",
                    "created_at": "2026-01-01T00:00:00.000000Z",
                }
            )
            .last_pk
        )
    return int(pk), path


def audit_events(db: sqlite_utils.Database, subject: str | None = None) -> list[str]:
    if subject is None:
        return [r["event"] for r in db.query("select event from audit_log order by seq")]
    return [
        r["event"]
        for r in db.query("select event from audit_log where subject = ? order by seq", [subject])
    ]


def add_disc_job(
    db: sqlite_utils.Database,
    case_number: str,
    states: dict[str, str],
    *,
    location: str | None = None,
    job_state: str = "verified",
) -> int:
    """A disc job for one case, as the disc part records it (tables of migration 0050): one
    disc per copy in ``states`` ({"A": "verified", "B": "built"}). The reports read it through
    the disc part's ``disc_case_copies`` view."""
    with write_txn(db):
        job = db.execute(
            "insert into disc_jobs (media, state, out_dir, discs_total, bytes_total, plan,"
            " created_at, created_by) values ('dvd', ?, '/tmp/x', 1, 1, '{}', ?, 'clerk')",
            [job_state, "2026-11-01T00:00:00.000000Z"],
        ).lastrowid
        db.execute(
            "insert into disc_job_cases (job_id, case_number) values (?, ?)", [job, case_number]
        )
        db.execute(
            "insert into disc_contents (job_id, disc_no, case_number, sha256, recording_sha256,"
            " role, path, size) values (?, 1, ?, ?, ?, 'original', 'a.mp4', 1)",
            [job, case_number, "0" * 64, "0" * 64],
        )
        for copy, state in states.items():
            db.execute(
                "insert into disc_images (job_id, disc_no, copy, volume_id, media, state,"
                " payload_bytes, files, location) values (?, 1, ?, 'V', 'dvd', ?, 1, 1, ?)",
                [job, copy, state, location],
            )
    return int(job or 0)


def approve_all(vault: Vault, db: sqlite_utils.Database, settings: Any, now: Any) -> list[str]:
    """A supervisor approves the whole proposed purge list at ``now`` (R9), through the same
    function `station retention approve --all` calls."""
    from station.retention import approval

    if not approval.open_proposals(db):
        return []
    out = approval.approve(
        vault, db, settings, [], actor="boss", reason="无保存意义", all_open=True, now=now
    )
    return out.approved
