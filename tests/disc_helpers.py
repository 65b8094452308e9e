"""Test helpers for the disc tests: real vault files with real hashes, and catalog rows for them
(the ingest engine is not needed for these). Everything lands in the test's own station home."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import sqlite_utils

from station.audit.log import append as audit
from station.catalog import write_txn
from station.timeutil import to_iso, utcnow
from station.vault import Vault


def data(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def add_people(db: sqlite_utils.Database) -> None:
    with write_txn(db):
        db.execute(
            "insert or ignore into units values ('440300000001', '某市城市管理执法局', '一中队')"
        )
        db.execute(
            "insert or ignore into officers (officer_id, name, unit_id)"
            " values ('100001', '张三', '440300000001')"
        )
        db.execute(
            "insert or ignore into devices (device_id, model, driver, officer_id, unit_id,"
            " enrolled) values ('DSJ0001', 'DSJ-X1', 'sim', '100001', '440300000001', 1)"
        )


def add_recording(
    vault: Vault,
    db: sqlite_utils.Database,
    content: bytes | None = None,
    *,
    name: str = "DSJ0001_100001_20260301093000_0001.MP4",
    recorded_at: str = "2026-03-01T01:30:00.000000Z",
    sparse_size: int | None = None,
) -> str:
    """Store ``content`` (or a sparse file of ``sparse_size``) as an original; return its hash."""
    add_people(db)
    if sparse_size is not None:
        sha = hashlib.sha256(name.encode()).hexdigest()  # not read: only for planning tests
        size = sparse_size
    else:
        assert content is not None
        sha = hashlib.sha256(content).hexdigest()
        size = len(content)
    ext = name.rsplit(".", 1)[-1].lower()
    path = vault.original_path(sha, ext)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        if sparse_size is not None:
            f.truncate(sparse_size)
        else:
            assert content is not None
            f.write(content)
    os.chmod(path, 0o444)
    now = to_iso(utcnow())
    with write_txn(db):
        db.execute(
            "insert into recordings (sha256, size, ext, media_kind, vault_path, device_id,"
            " officer_id, unit_id, method, recorded_at_device, recorded_at, drift_s, time_source,"
            " duration_s, original_name, original_path, ingested_at, producer)"
            " values (?, ?, ?, 'video', ?, 'DSJ0001', '100001', '440300000001',"
            " 'body camera DSJ-X1 / sim', ?, ?, 1.5, 'filename', 10.0, ?, ?, ?, '张三 100001')",
            [sha, size, ext, str(path.relative_to(vault.home)), recorded_at[:19], recorded_at,
             name, f"DCIM/{name}", now],
        )  # fmt: skip
        audit(db, "ingest.file_stored", actor="tester", subject=sha, data={"name": name})
    return sha


def add_derivative(
    vault: Vault,
    db: sqlite_utils.Database,
    original: str,
    content: bytes,
    profile: str = "mp4-h264",
) -> str:
    sha = hashlib.sha256(content).hexdigest()
    path = vault.archival_path(original, profile, "mp4")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    now = to_iso(utcnow())
    with write_txn(db):
        db.execute(
            "insert into derivatives (original_sha256, profile, sha256, size, ext, vault_path,"
            " state, ffmpeg_version, command, created_at, finished_at)"
            " values (?, ?, ?, ?, 'mp4', ?, 'done', '5.1', '[\"ffmpeg\"]', ?, ?)",
            [original, profile, sha, len(content), str(path.relative_to(vault.home)), now, now],
        )
        audit(db, "transcode.done", actor="tester", subject=sha, data={"original": original})
    return sha


def add_case(
    db: sqlite_utils.Database,
    number: str,
    name: str,
    shas: list[str],
    *,
    long_term_reason: int | None = 2,
) -> None:
    now = to_iso(utcnow())
    with write_txn(db):
        db.execute(
            "insert into cases (number, name, cause, party, unit_id, opened_at, long_term_reason,"
            " long_term_note, long_term_at, created_by) values (?, ?, '占道经营', '李四',"
            " '440300000001', ?, ?, '当事人申请行政复议', ?, 'tester')",
            [number, name, now, long_term_reason, now if long_term_reason else None],
        )
        for sha in shas:
            db.execute("insert into case_recordings values (?, ?, ?, 'tester')", [number, sha, now])
        audit(db, "case.created", actor="tester", subject=number, data={"name": name})


def tree_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
