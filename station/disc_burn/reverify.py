"""Reading a job's images back again after they were built (``station disc verify``): the image
hash against the one recorded at build time, and every file through xorriso and 7-Zip (R12).
An image changed on disk since it was built is marked ``corrupt`` and may not be burned."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlite_utils

from station.audit.log import append as audit
from station.catalog import write_txn
from station.disc_burn.jobs import read_image
from station.disc_burn.progress import ProgressFn
from station.disc_burn.readback import Expected, ReadbackResult
from station.errors import NotFoundError, StationError
from station.log import get
from station.timeutil import to_iso, utcnow

log = get()


def verify_job(
    db: sqlite_utils.Database,
    job_id: int,
    *,
    actor: str,
    copy: str | None = None,
    progress: ProgressFn | None = None,
) -> list[tuple[dict[str, Any], ReadbackResult]]:
    """Read every image of the job (or one copy) back again and record the outcome."""
    rows = disc_rows(db, job_id)
    results = []
    for row in rows:
        if copy and row["copy"] != copy:
            continue
        if not row["image_path"] or not row["expected"]:
            raise StationError(
                f"该光盘没有映像 / disc {row['disc_no']} copy {row['copy']} of job {job_id} "
                f"has no image (state {row['state']})",
                where=f"job {job_id}",
                hint="build the job again",
            )
        image = Path(row["image_path"])
        if not image.is_file():
            raise NotFoundError(f"映像文件缺失 / image missing: {image}", where=str(image))
        expected = [Expected(**e) for e in json.loads(row["expected"])]
        result = read_image(
            image,
            expected,
            row["image_sha256"],
            job_id,
            row["disc_no"],
            row["copy"],
            image.stat().st_size,
            progress,
        )
        state = row["state"]
        if not result.ok:
            state = "corrupt"
        elif state in ("built", "corrupt"):
            state = "verified"
        now = to_iso(utcnow())
        event = "disc.image_verified" if result.ok else "disc.image_corrupt"
        with write_txn(db):
            db.table("disc_images").update(
                row["id"],
                {
                    "state": state,
                    "verified_by": actor,
                    "verified_at": now,
                    "verify_result": json.dumps(result.to_json(), ensure_ascii=False),
                },
            )
            for number in job_cases(db, job_id):
                audit(
                    db,
                    event,
                    actor=actor,
                    subject=number,
                    data={
                        "job_id": job_id,
                        "disc_no": row["disc_no"],
                        "copy": row["copy"],
                        "image_sha256": result.image_sha256,
                        "ok": result.ok,
                        "problems": result.problems()[:20],
                    },
                )
        if result.ok:
            log.info(event, job_id=job_id, disc_no=row["disc_no"], copy=row["copy"])
        else:
            log.error(
                event,
                job_id=job_id,
                disc_no=row["disc_no"],
                copy=row["copy"],
                problems=result.problems()[:20],
            )
        results.append(({**row, "state": state}, result))
    return results


def disc_rows(db: sqlite_utils.Database, job_id: int) -> list[dict[str, Any]]:
    if db.execute("select 1 from disc_jobs where id = ?", [job_id]).fetchone() is None:
        raise NotFoundError(f"找不到刻录任务 / no disc job {job_id}", where="disc_jobs")
    return list(
        db.query("select * from disc_images where job_id = ? order by disc_no, copy", [job_id])
    )


def job_cases(db: sqlite_utils.Database, job_id: int) -> list[str]:
    return [
        r[0]
        for r in db.execute(
            "select case_number from disc_job_cases where job_id = ? order by rowid", [job_id]
        ).fetchall()
    ]
