"""The derivative job queue in the catalog (one ``derivatives`` row per original and profile).

States: queued → running → done | failed; a failure that may pass (ffmpeg crashed, verification
mismatch, archival disk full) goes back to queued with ``next_try_at`` pushed out (exponential
back-off) until ``transcode.max_attempts``; a damaged original fails at once (retrying cannot
help). Every final state change writes its audit entry in the same transaction (DESIGN inv. 3).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from station.audit.log import append
from station.audit.seal import stored_recording_seal
from station.catalog import write_txn
from station.config import Settings
from station.log import get
from station.timeutil import to_iso, utcnow

log = get()

MEDIA_KINDS = ("video", "audio")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Job:
    id: int
    original_sha256: str
    profile: str
    attempts: int
    original_path: str  # vault_path of the original, relative to the home
    original_ext: str


def backoff_s(attempts: int, base_s: float, cap_s: float) -> float:
    """Delay before try number ``attempts + 1``: base, 2×base, 4×base … capped."""
    return float(min(cap_s, base_s * (2 ** max(0, attempts - 1))))


def enqueue_missing(db: sqlite_utils.Database, settings: Settings) -> int:
    """Queue a job for every stored recording without a row for the configured profile."""
    profile = settings.transcode.profile
    if profile == "off":
        return 0
    now = to_iso(utcnow())
    with write_txn(db):
        cur = db.execute(
            "insert into derivatives (original_sha256, profile, state, created_at)"
            " select r.sha256, ?, 'queued', ? from recordings r"
            " where r.state = 'stored' and r.media_kind in ('video', 'audio')"
            " and not exists (select 1 from derivatives d"
            "   where d.original_sha256 = r.sha256 and d.profile = ?)",
            [profile, now, profile],
        )
        n = cur.rowcount
    if n:
        log.info("transcode.enqueued", count=n, profile=profile)
    return int(n)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def requeue_orphans(db: sqlite_utils.Database) -> int:
    """Re-queue jobs left "running" by a worker of this host that no longer exists (a crash)."""
    host = socket.gethostname()
    n = 0
    with write_txn(db):
        rows = db.execute(
            "select id, claimed_by from derivatives where state = 'running'"
        ).fetchall()
        for job_id, claimed in rows:
            who, _, pid = (claimed or "").rpartition(":")
            if who == host and pid.isdigit() and _pid_alive(int(pid)):
                continue
            db.execute(
                "update derivatives set state = 'queued', claimed_by = null, started_at = null,"
                " next_try_at = null where id = ?",
                [job_id],
            )
            log.warning("transcode.job_requeued", job=job_id, claimed_by=claimed)
            n += 1
    return n


def claim_next(db: sqlite_utils.Database, *, now: dt.datetime | None = None) -> Job | None:
    when = to_iso(now or utcnow())
    with write_txn(db):
        row = db.execute(
            "select d.id, d.original_sha256, d.profile, d.attempts, r.vault_path, r.ext"
            " from derivatives d join recordings r on r.sha256 = d.original_sha256"
            " where d.state = 'queued' and (d.next_try_at is null or d.next_try_at <= ?)"
            " order by d.next_try_at is not null, d.next_try_at, d.id limit 1",
            [when],
        ).fetchone()
        if row is None:
            return None
        db.execute(
            "update derivatives set state = 'running', started_at = ?, claimed_by = ?,"
            " attempts = attempts + 1 where id = ?",
            [when, worker_id(), row[0]],
        )
    return Job(row[0], row[1], row[2], row[3] + 1, row[4], row[5])


def seconds_until_due(db: sqlite_utils.Database, *, now: dt.datetime | None = None) -> float | None:
    """0 when a queued job is due, the wait until the next one, None when nothing is queued."""
    row = db.execute(
        "select count(*), min(next_try_at), sum(next_try_at is null) from derivatives"
        " where state = 'queued'"
    ).fetchone()
    if not row or not row[0]:
        return None
    if row[2]:
        return 0.0
    from station.timeutil import parse_iso

    wait = (parse_iso(row[1]) - (now or utcnow())).total_seconds()
    return max(0.0, wait)


def count_due(db: sqlite_utils.Database, *, now: dt.datetime | None = None) -> int:
    when = to_iso(now or utcnow())
    row = db.execute(
        "select count(*) from derivatives where state = 'queued'"
        " and (next_try_at is null or next_try_at <= ?)",
        [when],
    ).fetchone()
    return int(row[0])


def mark_done(
    db: sqlite_utils.Database,
    job: Job,
    *,
    actor: str,
    fields: dict[str, Any],
    recording_updates: dict[str, Any],
) -> None:
    """The derivative is in place and verified: record the link and its audit entry together."""
    now = to_iso(utcnow())
    with write_txn(db):
        db["derivatives"].update(  # type: ignore[union-attr]
            job.id,
            {
                **fields,
                "state": "done",
                "partial": 0,
                "error": None,
                "failure": None,
                "finished_at": now,
                "next_try_at": None,
                "claimed_by": None,
            },
        )
        if recording_updates:
            db["recordings"].update(job.original_sha256, recording_updates)  # type: ignore[union-attr]
        append(
            db,
            "derivative.created",
            actor=actor,
            subject=job.original_sha256,
            data={
                "profile": job.profile,
                "sha256": fields.get("sha256"),
                "size": fields.get("size"),
                "vault_path": fields.get("vault_path"),
                "method": fields.get("method"),
                "ffmpeg_version": fields.get("ffmpeg_version"),
                "recording_updates": recording_updates,
            },
        )
        if "recorded_at" in recording_updates:
            # R1: the start came from the container's creation time; R7: the row is sealed
            # again by its own entry.
            append(
                db,
                "recording.times_probed",
                actor=actor,
                subject=job.original_sha256,
                data={
                    "set": recording_updates,
                    **stored_recording_seal(db, job.original_sha256),
                },
            )


def mark_failed(
    db: sqlite_utils.Database,
    job: Job,
    *,
    actor: str,
    failure: str,
    error: str,
    fields: dict[str, Any] | None = None,
    flag_recording: bool = False,
    recording_updates: dict[str, Any] | None = None,
) -> None:
    """Final failure. A damaged original is flagged on its recording for a clerk (damaged=1)."""
    now = to_iso(utcnow())
    updates = dict(recording_updates or {})
    with write_txn(db):
        if flag_recording:
            # keep what ingest already noticed (its header check), add what ffmpeg said
            row = db.execute(
                "select damage_reason from recordings where sha256 = ?", [job.original_sha256]
            ).fetchone()
            earlier = row[0] if row and row[0] else None
            reason = f"{earlier} | transcode: {error}" if earlier else error
            updates.update({"damaged": 1, "damage_reason": reason[:4000]})
        db["derivatives"].update(  # type: ignore[union-attr]
            job.id,
            {
                **(fields or {}),
                "state": "failed",
                "failure": failure,
                "error": error,
                "finished_at": now,
                "next_try_at": None,
                "claimed_by": None,
            },
        )
        if updates:
            db["recordings"].update(job.original_sha256, updates)  # type: ignore[union-attr]
        append(
            db,
            "derivative.failed",
            actor=actor,
            subject=job.original_sha256,
            data={
                "profile": job.profile,
                "failure": failure,
                "error": error[:2000],
                "attempts": job.attempts,
                "flagged": flag_recording,
                "partial": bool((fields or {}).get("partial")),
                "salvage_path": (fields or {}).get("vault_path"),
                "salvage_sha256": (fields or {}).get("sha256"),
            },
        )


def reschedule(
    db: sqlite_utils.Database,
    job: Job,
    settings: Settings,
    *,
    actor: str,
    failure: str,
    error: str,
    count_attempt: bool = True,
) -> str:
    """A failure that may pass: back to queued with back-off, or failed after max attempts.

    Returns the new state. ``count_attempt=False`` (disk full, station stopping) does not use up
    one of the job's attempts.
    """
    cfg = settings.transcode
    attempts = job.attempts if count_attempt else job.attempts - 1
    if count_attempt and attempts >= cfg.max_attempts:
        mark_failed(
            db,
            job,
            actor=actor,
            failure=failure,
            error=f"gave up after {attempts} attempts / 已重试 {attempts} 次: {error}",
        )
        return "failed"
    delay = backoff_s(max(1, attempts), cfg.retry_base_s, cfg.retry_max_s)
    if failure == "stopped":
        delay = 0.0
    nxt = to_iso(utcnow() + dt.timedelta(seconds=delay))
    with write_txn(db):
        db.execute(
            "update derivatives set state = 'queued', attempts = ?, next_try_at = ?, error = ?,"
            " failure = ?, claimed_by = null, started_at = null where id = ?",
            [attempts, nxt, error, failure, job.id],
        )
    log.info(
        "transcode.job_rescheduled",
        job=job.id,
        failure=failure,
        attempts=attempts,
        next_try_at=nxt,
    )
    return "queued"


def retry(
    db: sqlite_utils.Database,
    *,
    actor: str,
    shas: list[str] | None = None,
    all_failed: bool = False,
) -> list[str]:
    """Put failed (or queued, backing-off) jobs back to run now. Returns the originals' hashes."""
    where = ["state in ('failed', 'queued')"]
    params: list[Any] = []
    if shas:
        clauses = []
        for sha in shas:
            clauses.append("original_sha256 like ?")
            params.append(sha.lower() + "%")
        where.append("(" + " or ".join(clauses) + ")")
    elif not all_failed:
        return []
    else:
        where = ["state = 'failed'"]
    done: list[str] = []
    with write_txn(db):
        rows = db.execute(
            f"select id, original_sha256, profile, state, failure from derivatives"
            f" where {' and '.join(where)}",
            params,
        ).fetchall()
        for job_id, sha, profile, state, failure in rows:
            db.execute(
                "update derivatives set state = 'queued', attempts = 0, next_try_at = null"
                " where id = ?",
                [job_id],
            )
            append(
                db,
                "derivative.retry",
                actor=actor,
                subject=sha,
                data={"profile": profile, "previous_state": state, "failure": failure},
            )
            done.append(sha)
    return done


def status(db: sqlite_utils.Database, *, limit: int = 50) -> dict[str, Any]:
    counts = {
        row[0]: row[1]
        for row in db.execute("select state, count(*) from derivatives group by state")
    }
    rows = [
        dict(r)
        for r in db.query(
            "select d.original_sha256, d.profile, d.state, d.method, d.attempts, d.next_try_at,"
            " d.failure, d.error, d.partial, d.vault_path, r.original_name, r.damaged"
            " from derivatives d join recordings r on r.sha256 = d.original_sha256"
            " where d.state != 'done' order by d.state, d.id limit ?",
            [limit],
        )
    ]
    for r in rows:
        r["partial"] = bool(r["partial"])
        r["damaged"] = bool(r["damaged"])
    return {"counts": counts, "pending_or_failed": rows}


def command_json(argv: list[str]) -> str:
    return json.dumps(argv, ensure_ascii=False)
