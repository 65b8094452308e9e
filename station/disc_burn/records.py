"""Burns and where the discs are kept, in the catalog (R12, R13); disc status per case (R17)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import sqlite_utils

from station.audit.log import append as audit
from station.catalog import write_txn
from station.disc_burn.burn import burn_image, choose_target, find_drives, read_back_disc
from station.disc_burn.jobs import COPIES
from station.disc_burn.progress import DiscProgress, ProgressFn, check_stop
from station.disc_burn.reverify import disc_rows, job_cases
from station.errors import BurnError, NotFoundError, NotVerifiedError, StationError
from station.log import get
from station.timeutil import to_iso, utcnow

log = get()


def _rows(db: sqlite_utils.Database, job_id: int, copy: str, disc_no: int | None) -> list[Any]:
    if copy not in COPIES:
        raise StationError(f"份别只能是 A 或 B / copy must be A or B, not {copy!r}")
    rows = [r for r in disc_rows(db, job_id) if r["copy"] == copy]
    if disc_no is not None:
        rows = [r for r in rows if r["disc_no"] == disc_no]
        if not rows:
            raise NotFoundError(f"没有该光盘 / job {job_id} has no disc {disc_no}")
    for r in rows:
        if r["state"] not in ("verified", "burned"):
            raise NotVerifiedError(
                f"disc {r['disc_no']} copy {copy} of job {job_id} is {r['state']}",
                where=r["image_path"] or f"job {job_id}",
                hint=f"run `station disc verify {job_id}` first",
            )
    return rows


def mark_burned(
    db: sqlite_utils.Database,
    job_id: int,
    copy: str,
    *,
    by: str,
    location: str,
    actor: str,
    disc_no: int | None = None,
) -> list[dict[str, Any]]:
    """Record that copy ``copy`` (all discs, or one) was burned elsewhere and where it is kept."""
    if not by.strip() or not location.strip():
        raise StationError("刻录人和存放位置不能为空 / --by and --location must not be empty")
    rows = _rows(db, job_id, copy, disc_no)
    now = to_iso(utcnow())
    with write_txn(db):
        for r in rows:
            db.table("disc_images").update(
                r["id"],
                {
                    "state": "burned",
                    "burned_by": by,
                    "burned_at": now,
                    "burn_device": "elsewhere",
                    "location": location,
                },
            )
            for number in job_cases(db, job_id):
                audit(
                    db,
                    "disc.marked_burned",
                    actor=actor,
                    subject=number,
                    data={
                        "job_id": job_id,
                        "disc_no": r["disc_no"],
                        "copy": copy,
                        "volume_id": r["volume_id"],
                        "image_sha256": r["image_sha256"],
                        "burned_by": by,
                        "location": location,
                    },
                )
    log.info("disc.marked_burned", job_id=job_id, copy=copy, discs=len(rows), by=by)
    return [{**r, "state": "burned", "burned_by": by, "location": location} for r in rows]


def burn(
    db: sqlite_utils.Database,
    job_id: int,
    copy: str,
    *,
    actor: str,
    device: str | None = None,
    disc_no: int | None = None,
    location: str | None = None,
    xorrecord: str = "",
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
) -> list[dict[str, Any]]:
    """Burn copy ``copy`` of a job's discs, reading each disc back (exactly the image's length)."""
    rows = _rows(db, job_id, copy, disc_no)
    try:
        target = choose_target(device, [] if device else find_drives())
    except StationError as exc:
        log.error("disc.no_drive", job_id=job_id, copy=copy, device=device, error=exc.message)
        raise
    done = []
    for r in rows:
        check_stop(stop)
        image = Path(r["image_path"])
        size = int(r["image_size"])

        def pct(p: float, r: Any = r, size: int = size) -> None:
            if progress:
                progress(
                    DiscProgress("burn", job_id, r["disc_no"], copy, int(size * p / 100), size)
                )

        def read_tick(n: int, r: Any = r, size: int = size, acc: list[int] = [0]) -> None:  # noqa: B006
            acc[0] += n
            if progress:
                progress(DiscProgress("readback", job_id, r["disc_no"], copy, acc[0], size))

        log.info("disc.burn_started", job_id=job_id, disc_no=r["disc_no"], copy=copy, target=target)
        burn_image(image, target, xorrecord=xorrecord, tick=pct)
        digest, got = read_back_disc(target, size, read_tick)
        match = got == size and digest == r["image_sha256"]
        now = to_iso(utcnow())
        with write_txn(db):
            db.execute(
                "update disc_images set state = ?, burned_by = ?, burned_at = ?, burn_device = ?,"
                " burn_readback = ?, location = coalesce(?, location) where id = ?",
                [
                    "burned" if match else r["state"],
                    actor,
                    now,
                    target,
                    "match" if match else f"mismatch {digest} ({got} bytes)",
                    location,
                    r["id"],
                ],
            )
            for number in job_cases(db, job_id):
                audit(
                    db,
                    "disc.burned" if match else "disc.burn_failed",
                    actor=actor,
                    subject=number,
                    data={
                        "job_id": job_id,
                        "disc_no": r["disc_no"],
                        "copy": copy,
                        "device": target,
                        "readback_sha256": digest,
                        "image_sha256": r["image_sha256"],
                        "match": match,
                    },
                )
        if not match:
            log.error("disc.burn_mismatch", job_id=job_id, disc_no=r["disc_no"], copy=copy)
            raise BurnError(
                f"disc {r['disc_no']} copy {copy} read back differently from its image "
                f"/ 回读结果与映像不一致 (sha256 {digest}, {got} of {size} bytes)",
                where=target,
                hint="discard this disc and burn again on a new blank",
            )
        log.info("disc.burned", job_id=job_id, disc_no=r["disc_no"], copy=copy)
        done.append({**r, "state": "burned", "burn_device": target, "burn_readback": "match"})
    return done


def case_disc_status(
    db: sqlite_utils.Database, only_incomplete: bool = False
) -> list[dict[str, Any]]:
    """Per long-term case (R11): are both copies (R12) verified, and burned, and where are they
    kept (R13)? Read from the view ``disc_case_copies`` (the case's latest job that did not fail;
    a copy counts when every disc holding the case is verified, or burned after verification)."""
    copies: dict[str, dict[str, Any]] = {}
    for row in db.query("select * from disc_case_copies"):
        copies.setdefault(row["case_number"], {})[row["copy"]] = row
    out = []
    for c in db.query(
        "select number, name, long_term_reason from cases where long_term_reason is not null"
        " order by number"
    ):
        mine = copies.get(c["number"], {})
        status: dict[str, Any] = {
            "case": c["number"],
            "name": c["name"],
            "long_term_reason": c["long_term_reason"],
            "job_id": next((r["job_id"] for r in mine.values()), None),
        }
        for copy in COPIES:
            got: dict[str, Any] | None = mine.get(copy)
            status[f"verified_{copy}"] = bool(got and got["verified"])
            status[f"burned_{copy}"] = bool(got and got["burned"])
            status[f"location_{copy}"] = got["location"] if got else None
        status["both_verified"] = status["verified_A"] and status["verified_B"]
        status["both_burned"] = status["burned_A"] and status["burned_B"]
        if not (only_incomplete and status["both_verified"] and status["both_burned"]):
            out.append(status)
    return out
