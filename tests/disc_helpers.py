"""Test helpers for the disc tests: real vault files with real hashes, and catalog rows for them
(the ingest engine is not needed for these). Everything lands in the test's own station home."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from typing import Any

import sqlite_utils

from station.audit.log import append as audit
from station.catalog import write_txn
from station.timeutil import to_iso, utcnow
from station.vault import Vault
from tests.recordings import store_derivative, store_recording

# R12: the label's facts a real station has set (placeholders are refused when building)
LABEL_TOML = """[station]
unit_id = "440300000001"
unit_name = "某市城市管理执法局"

[disc]
producer = "王五"
"""


def label_settings(settings: Any = None) -> Any:
    """Settings with a real producing unit, unit id and producer (R12)."""
    from station.config import Settings

    s = settings or Settings()
    s.station.unit_id, s.station.unit_name = "440300000001", "某市城市管理执法局"
    s.disc.producer = "王五"
    return s


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
    """Store ``content`` as the recorder file ``name`` through the ingest engine
    (tests/recordings.py), 1.5 s of clock drift; return its hash.

    Written as a row directly only where no file can be taken in: ``sparse_size`` (a
    planning-only row for a file of several GB that is never read), or a ``name`` longer than a
    Linux file name may be (255 bytes) — as an inbox drop from another system can name it."""
    add_people(db)
    if sparse_size is None and len(name.encode()) <= 255:
        assert content is not None
        return store_recording(vault, db, content, name=name, recorded_at=recorded_at, drift_s=1.5)
    if sparse_size is None:
        assert content is not None
        sha, size = hashlib.sha256(content).hexdigest(), len(content)
    else:
        sha, size = hashlib.sha256(name.encode()).hexdigest(), sparse_size  # never read
    ext = name.rsplit(".", 1)[-1].lower()
    path = vault.original_path(sha, ext)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        if sparse_size is None:
            f.write(content or b"")
        else:
            f.truncate(sparse_size)
    os.chmod(path, 0o444)
    now = to_iso(utcnow())
    with write_txn(db):
        db.execute(
            "insert into recordings (sha256, size, ext, media_kind, vault_path, device_id,"
            " officer_id, unit_id, method, recorded_at_device, recorded_at, drift_s, time_source,"
            " duration_s, original_name, original_path, ingested_at, producer)"
            " values (?, ?, ?, 'video', ?, 'DSJ0001', '100001', '440300000001',"
            " 'body camera DSJ-X1 / sim', ?, ?, 1.5, 'filename', 10.0, ?, ?, ?, '张三 100001')",
            [sha, size, ext, str(path.relative_to(vault.home)), recorded_at[:19],
             recorded_at, name, f"DCIM/{name}", now],
        )  # fmt: skip
    return sha


def add_derivative(
    vault: Vault,
    db: sqlite_utils.Database,
    original: str,
    content: bytes,
) -> str:
    """The archival derivative of ``original``, recorded as the transcode worker does
    (tests/recordings.py); its hash."""
    store_derivative(vault, db, original, content)
    return hashlib.sha256(content).hexdigest()


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
