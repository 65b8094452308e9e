"""The one way tests store a recording: through the ingest engine, as a recorder's card would be
taken in (a file in a folder → ``ingest_files``). The vault file, the catalog row, the session and
the audit entries are the engine's own, so a test never checks something the station never writes.

Raw rows remain only where the engine cannot make the case: planning rows for files of several
GB that are never read (``tests/disc_helpers.py`` ``sparse_size``), retention tables that need a
size or an ingest time no real file gives (``tests/helpers_retention.py``), and the tampering
tests that forge rows on purpose.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import os
import struct

import sqlite_utils

from station.config import Settings
from station.ingest.engine import IngestContext, ingest_files
from station.transcode import jobs
from station.vault import Vault

_cards = itertools.count(1)


def mp4(payload: bytes) -> bytes:
    """``payload`` inside the top-level boxes of an MP4 (ftyp, moov, mdat): a file the engine's
    damage check passes, for tests about anything but damaged media."""

    def box(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I4s", 8 + len(body), kind) + body

    return box(b"ftyp", b"isom\0\0\2\0isomiso2mp41") + box(b"moov", b"") + box(b"mdat", payload)


def store_recording(
    vault: Vault,
    db: sqlite_utils.Database,
    content: bytes,
    *,
    name: str = "DSJ0001_100001_20260301093000_0001.MP4",
    recorded_at: str | None = None,
    device: str = "DSJ0001",
    officer: str = "100001",
    unit: str | None = "440300000001",
    drift_s: float = 0.0,
    method: str = "body camera DSJ-X1 / serial driver",
    settings: Settings | None = None,
) -> str:
    """Store ``content`` as the recorder file ``name`` through the ingest engine; its SHA-256.

    The start time comes from the name (the recorder's wall clock, corrected by ``drift_s``), as
    at a dock; a name without a time starts at ``recorded_at`` (ISO 8601 UTC): the file's mtime,
    the engine's last resort, is set so that the corrected start is exactly that.
    """
    card = vault.home.parent / f"card-{os.getpid()}-{next(_cards)}"
    path = card / name
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    if recorded_at is not None:
        t = dt.datetime.fromisoformat(recorded_at.replace("Z", "+00:00")).timestamp() + drift_s
        os.utime(path, (t, t))
    ctx = IngestContext(
        kind="cli", device_id=device, officer_id=officer, unit_id=unit, drift_s=drift_s,
        method=method,
    )  # fmt: skip
    report = ingest_files(vault, db, settings or Settings(), [path], card, ctx, actor="tester")
    (result,) = report.files
    assert result.outcome in ("new", "held") and result.verified, result
    assert result.sha256 is not None
    return result.sha256


def store_derivative(
    vault: Vault,
    db: sqlite_utils.Database,
    original: str,
    content: bytes,
    *,
    settings: Settings | None = None,
) -> int:
    """Record ``content`` as the archival derivative of ``original`` the way the transcode
    worker's bookkeeping does: the job queued by ``enqueue_missing``, the file installed 0444,
    then ``mark_done`` (its row and its ``derivative.created`` entry). Returns the job's id."""
    cfg = settings or Settings()
    jobs.enqueue_missing(db, cfg)
    row = db.execute(
        "select d.id, d.attempts, r.vault_path, r.ext from derivatives d"
        " join recordings r on r.sha256 = d.original_sha256"
        " where d.original_sha256 = ? and d.profile = ? and d.state = 'queued'",
        [original, cfg.transcode.profile],
    ).fetchone()
    assert row is not None, f"no queued job for {original}"
    job = jobs.Job(row[0], original, cfg.transcode.profile, row[1], row[2], row[3])
    path = vault.archival_path(original, cfg.transcode.profile, "mp4")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(0o444)
    fields = {
        "sha256": hashlib.sha256(content).hexdigest(),
        "size": len(content),
        "ext": "mp4",
        "vault_path": str(path.relative_to(vault.home)),
        "ffmpeg_version": "ffmpeg version 5.1",
        "command": jobs.command_json(["ffmpeg", "-i", "original", "derivative.mp4"]),
    }
    jobs.mark_done(db, job, actor="transcode", fields=fields, recording_updates={})
    return int(row[0])
