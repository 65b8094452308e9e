"""Tags that follow the record: when the cases a derivative's container tags name (``case``)
differ from the cases its original is linked to now, a new derivative version is made.

Steps per stale derivative (only finished, complete ones): ffmpeg re-wraps the current version
(``-map 0 -c copy``, every stream, no re-encode) with the tags built afresh (transcode.meta) into
a temp file beside it → fsync → the packet stream hashes of old and new are compared (same
packets, only the tags differ) → SHA-256 → read-only → renamed to
``archival/…/<original>.<profile>.v<N>.<ext>`` → one transaction: the superseded version goes
into ``derivative_versions``, the row points at the new file, audit ``derivative.retagged``
(old and new hash, size, path, cases) → the superseded file is removed from the vault (it is
reproducible from the original; its hash stays in ``derivative_versions`` and the audit log, so
a disc or export that carries it can still be matched). The original is only ever read (R7).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import sqlite_utils

from station.audit import append
from station.catalog import write_txn
from station.config import Settings
from station.log import get
from station.timeutil import to_iso, utcnow
from station.transcode.binaries import Tools
from station.transcode.fileops import fsync_file, install, sha256_file
from station.transcode.meta import build_metadata, case_numbers, recording_row
from station.transcode.plan import GLOBAL_ARGS, STREAM_HASH
from station.transcode.runner import run_tool
from station.transcode.verify import parse_streamhash
from station.vault import Vault

log = get()

_STALE = (
    "select d.* from derivatives d where d.state = 'done' and d.partial = 0"
    " and (d.retag_failed_at is null or d.retag_failed_at <= :retry_before)"
    " and d.vault_path is not null and coalesce(d.tagged_cases, '') != coalesce(("
    "   select group_concat(case_number, ';') from ("
    "     select case_number from case_recordings c where c.sha256 = d.original_sha256"
    "     order by case_number)), '')"
)


def _retry_before(retry_s: float) -> str:
    return to_iso(utcnow() - dt.timedelta(seconds=retry_s))


def stale(db: sqlite_utils.Database, retry_s: float = 3600.0) -> list[dict[str, Any]]:
    """Finished derivatives whose tags name other cases than their original is linked to (one
    whose last try failed waits ``retry_s`` before the next)."""
    if "case_recordings" not in db.table_names():
        return []
    return list(db.query(_STALE + " order by d.id", {"retry_before": _retry_before(retry_s)}))


def count_stale(db: sqlite_utils.Database, retry_s: float = 3600.0) -> int:
    if "case_recordings" not in db.table_names():
        return 0
    sql = f"select count(*) from ({_STALE})"
    return int(db.execute(sql, {"retry_before": _retry_before(retry_s)}).fetchone()[0])


def _failed(db: sqlite_utils.Database, row: dict[str, Any], event: str, **kw: Any) -> None:
    log.error(event, sha256=row["original_sha256"], **kw)
    with write_txn(db):
        db.execute(
            "update derivatives set retag_failed_at = ? where id = ?", [to_iso(utcnow()), row["id"]]
        )


def rewrap_argv(
    binary: str, src: Path, dst: Path, ext: str, meta: dict[str, str | None]
) -> list[str]:
    """Every stream copied with its own tags; each global tag set anew — an empty value
    (``case=`` after the last case was unlinked) removes the tag (pure)."""
    fmt = "matroska" if ext.endswith(("mkv", "mka")) else "mp4"
    argv = [binary, *GLOBAL_ARGS, "-i", str(src), "-map", "0", "-c", "copy"]
    for key, value in sorted(meta.items()):
        argv += ["-metadata:g", f"{key}={value or ''}"]
    if fmt == "mp4":
        argv += ["-movflags", "+faststart+use_metadata_tags"]
    return [*argv, "-f", fmt, str(dst)]


def streamhash_argv(binary: str, src: Path, out: Path) -> list[str]:
    return [binary, *GLOBAL_ARGS, "-i", str(src), "-map", "0", "-c", "copy", "-f", "streamhash",
            "-hash", STREAM_HASH, str(out)]  # fmt: skip


def retag_one(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    tools: Tools,
    row: dict[str, Any],
    *,
    actor: str,
    stop: threading.Event | None = None,
    low_priority: bool = True,
) -> str | None:
    """Make the next version of one derivative; return its vault path, or None if skipped."""
    sha = row["original_sha256"]
    cases = case_numbers(db, sha)
    meta = build_metadata(recording_row(db, sha), cases, settings, row["profile"])
    old = vault.home / row["vault_path"]
    version = int(row.get("version") or 1) + 1
    ext = str(row["ext"] or old.suffix.lstrip("."))
    final = vault.archival_path(sha, row["profile"], f"v{version}.{ext}")
    tmp = final.with_name(f".tmp-{os.getpid()}-{final.name}")
    workdir = vault.run / "transcode" / f"{os.getpid()}-retag-{row['id']}"
    nice = settings.transcode.nice if low_priority else None
    try:
        made = run_tool(rewrap_argv(tools.ffmpeg, old, tmp, ext, meta), workdir=workdir,
                        nice=nice, stop=stop)  # fmt: skip
        if made.returncode != 0:
            _failed(db, row, "transcode.retag_failed", error=made.describe())
            return None
        fsync_file(tmp)
        hashes = []
        for src, name in ((old, "old"), (tmp, "new")):
            out = workdir / f"{name}.packets"
            run_tool(streamhash_argv(tools.ffmpeg, src, out), workdir=workdir, nice=nice, stop=stop)
            hashes.append(parse_streamhash(out.read_text() if out.exists() else ""))
        if not hashes[0] or hashes[0] != hashes[1]:
            _failed(db, row, "transcode.retag_mismatch", old=hashes[0], new=hashes[1])
            return None
        new_sha, size = sha256_file(tmp)
        install(tmp, final)
        rel = str(final.relative_to(vault.home))
        now = to_iso(utcnow())
        with write_txn(db):
            current = db.execute(
                "select sha256, version from derivatives where id = ?", [row["id"]]
            ).fetchone()
            if current is None or tuple(current) != (row["sha256"], row.get("version") or 1):
                final.unlink(missing_ok=True)  # someone else made this version meanwhile
                return None
            db.table("derivative_versions").insert(
                {
                    "derivative_id": row["id"],
                    "original_sha256": sha,
                    "profile": row["profile"],
                    "version": version - 1,
                    "sha256": row["sha256"],
                    "size": row["size"],
                    "vault_path": row["vault_path"],
                    "tagged_cases": row.get("tagged_cases"),
                    "superseded_at": now,
                    "superseded_by": actor,
                }
            )
            db.execute(
                "update derivatives set sha256 = ?, size = ?, vault_path = ?, version = ?,"
                " tagged_cases = ?, retag_failed_at = null where id = ?",
                [new_sha, size, rel, version, ";".join(cases), row["id"]],
            )
            append(
                db,
                "derivative.retagged",
                actor=actor,
                subject=sha,
                data={
                    "profile": row["profile"],
                    "version": version,
                    "sha256": new_sha,
                    "size": size,
                    "vault_path": rel,
                    "cases": cases,
                    "previous": {
                        "sha256": row["sha256"],
                        "size": row["size"],
                        "vault_path": row["vault_path"],
                        "cases": row.get("tagged_cases") or "",
                    },
                    "removed_from_vault": row["vault_path"],
                },
            )
        old.unlink(missing_ok=True)
        log.info("transcode.derivative_retagged", sha256=sha, version=version, cases=cases)
        return rel
    finally:
        tmp.unlink(missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)


def retag_stale(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    tools: Tools,
    *,
    actor: str,
    stop: threading.Event | None = None,
    low_priority: bool = True,
) -> int:
    """Bring every stale derivative's tags up to date; return how many new versions were made."""
    n = 0
    for row in stale(db, settings.transcode.retry_max_s):
        if stop is not None and stop.is_set():
            break
        if retag_one(
            vault, db, settings, tools, row, actor=actor, stop=stop, low_priority=low_priority
        ):
            n += 1
    return n
