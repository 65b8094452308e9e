"""The ingest engine: a run over a recorder volume (or an inbox drop), as two stages.

For each file (DESIGN.md invariants 1–3, R7):

1. the copy stage (``copy_stage``): free space checked, the file copied into this run's own
   staging folder (``staging/<owner>/``, see ``custody``) with one read of the source, hashed on
   the way;
2. the store stage (``store_stage``): the staged copies flushed, dropped from the page cache and
   re-read from disk (the hash must match); under the vault-wide writer lock named in
   ``originals/`` (or proven held, or a rotten vault copy repaired) and committed with their
   catalog rows and audit entries (``catalog_rows``) in one transaction.

A file is reported verified only if the vault copy under its hash was re-read from disk and
matched **in this run** and was committed; only those may be cleared from a recorder. The stages
run in two threads with a bounded queue between them in production (the vault re-read overlaps
the next file's copy) or one after the other (``pipeline``). The run's session row, counters
and report: ``bookkeeping``; how I/O errors are named: ``failures``; start-up recovery of what
dead owners left: ``recover_at_startup`` below.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import sqlite_utils

from station.catalog import write_txn
from station.config import Settings
from station.custody import Owner, WriterLock, owner_alive, reap_dead_owners
from station.errors import IngestError, VaultFullError
from station.hashing.copy import open_source
from station.ingest import sessions
from station.ingest.bookkeeping import RunBook
from station.ingest.copy_stage import CopyStage, Opener, free_space_margin
from station.ingest.model import (
    FileResult,
    IngestContext,
    IngestProgress,
    IngestReport,
)
from station.ingest.pipeline import run_stages
from station.ingest.sources import SourceEntry, entries_for_files, enumerate_volume
from station.ingest.store_stage import ORIGINAL, StoreStage
from station.log import get
from station.timeutil import to_iso, utcnow
from station.vault import Vault

log = get()

__all__ = [
    "FileResult",
    "IngestContext",
    "IngestProgress",
    "IngestReport",
    "Opener",
    "free_space_margin",
    "ingest_files",
    "ingest_volume",
    "recover_at_startup",
]


def _run(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    volume: Path,
    entries: list[SourceEntry],
    ctx: IngestContext,
    actor: str,
    progress: Callable[[IngestProgress], None] | None,
    stop: threading.Event | None,
    opener: Opener,
    owner: Owner | None,
    threaded: bool,
) -> IngestReport:
    # a run without a given owner takes its own, released (staging emptied) however it ends
    held = nullcontext(owner) if owner is not None else Owner.acquire(vault, ctx.kind)
    with held as own:
        run = RunBook(vault, db, settings, volume, ctx, actor, progress, stop, own)
        return _drive(run, entries, opener, threaded)


def _drive(
    run: RunBook, entries: list[SourceEntry], opener: Opener, threaded: bool
) -> IngestReport:
    """Copy and store ``entries`` under ``run``'s owner; close the session however it ends."""
    started = time.monotonic()
    run.open_session(entries)
    log.info(
        "ingest.started",
        session_id=run.report.session_id,
        volume=str(run.volume),
        files=run.files_total,
        bytes=run.bytes_total,
    )
    store = StoreStage(run)
    error, store_error = run_stages(
        CopyStage(run, opener).batches(entries),
        store.commit,
        store.discard,
        threaded=threaded,
        merge=lambda batches: [s for batch in batches for s in batch],
    )
    if error is None and store_error is not None:
        # the store stage failed (the vault, the catalog): copying stopped there
        error = store_error
        if run.report.aborted is None:
            run.report.aborted = "vault error"
    if error is None and run.no_room and run.report.aborted is None:
        # the files that fit were stored; the rest were refused before a byte was written
        error = VaultFullError(
            "存储空间不足，部分文件未复制 / the vault has too little free space for "
            f"{run.no_room} file(s); those were not copied",
            where=str(run.vault.home),
            hint="free space or extend the vault; those files stay on the recorder",
        )
    if isinstance(error, VaultFullError):
        run.report.aborted = "vault full"
    run.report.elapsed_s = time.monotonic() - started
    try:
        run.close_session()
    except sqlite3.Error as exc:
        # e.g. the disk is full for the catalog too: the rows of every verified file are
        # committed already; the session stays "running" and is closed as interrupted at the
        # next start-up (recover_at_startup). Report the first error, not this one.
        log.error("ingest.session_close_failed", session_id=run.report.session_id, error=str(exc))
        if error is None:
            raise
    run.progress(force=True)
    log.info("ingest.finished", **run.report.summary())
    if error is not None:
        if isinstance(error, IngestError):
            error.report = run.report
        raise error
    return run.report


def ingest_volume(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    volume: Path,
    ctx: IngestContext,
    *,
    actor: str,
    progress: Callable[[IngestProgress], None] | None = None,
    stop: threading.Event | None = None,
    opener: Opener = open_source,
    owner: Owner | None = None,
    threaded: bool = True,
) -> IngestReport:
    """Ingest every file on a mounted recorder volume (or any folder).

    ``owner``: the live owner of the session ``ctx.session_id`` (a dock session holds its own
    for its whole life); without one the run takes one for itself (DESIGN.md invariant 8).
    Raises VaultFullError / VolumeGoneError / IngestError after committing what was verified;
    the exception's ``report`` field then holds the partial report. ``threaded``: the copy
    and store stages in two threads (production) or one after the other (``False``).
    """
    entries = enumerate_volume(volume)
    return _run(
        vault, db, settings, volume, entries, ctx, actor, progress, stop, opener, owner, threaded
    )


def ingest_files(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    files: list[Path],
    base: Path,
    ctx: IngestContext,
    *,
    actor: str,
    progress: Callable[[IngestProgress], None] | None = None,
    stop: threading.Event | None = None,
    opener: Opener = open_source,
    owner: Owner | None = None,
    threaded: bool = True,
) -> IngestReport:
    """Ingest the given files under ``base`` (an inbox drop). Files outside ``base`` fail."""
    entries, outside = entries_for_files(files, base)
    report = _run(
        vault, db, settings, base, entries, ctx, actor, progress, stop, opener, owner, threaded
    )
    for name in outside:
        log.error("ingest.outside_base", path=name, base=str(base))
        report.files.append(
            FileResult(Path(name), name, "failed", error=f"不在采集目录内 / not inside {base}")
        )
    return report


def recover_at_startup(
    vault: Vault, db: sqlite_utils.Database, *, actor: str = "station"
) -> dict[str, int]:
    """Reap what dead owners left: their staging folders, their sessions still ``running``, and
    clearing intents they never completed (DESIGN.md invariant 8). Work of a live owner — another
    ``station ingest``, a dock session, an inbox pass, in this process or another — is never
    touched, so this is safe to run at any time."""

    def uncommitted(paths: list[Path]) -> None:
        # a dead owner named these in originals/ and died before committing their rows; a
        # file no catalog row claims was never stored nor verified (its source was never
        # cleared): it goes. Under the writer lock no run commits a row for it meanwhile.
        with WriterLock(vault):
            for path in paths:
                if path.parent.parent != vault.originals or not ORIGINAL.match(path.name):
                    continue  # only content-addressed originals are ever named by a batch
                rel = str(path.relative_to(vault.home))
                claimed = db.execute(
                    "select 1 from recordings where vault_path = ? and state != 'purged'", [rel]
                ).fetchone()
                if claimed is None and path.is_file() and not path.is_symlink():
                    os.chmod(path, 0o600)
                    path.unlink()
                    log.warning("ingest.uncommitted_removed", path=rel)

    reaped = reap_dead_owners(vault, uncommitted)
    with write_txn(db):
        dead = [r for r in sessions.unfinished(db) if not owner_alive(vault, r[1])]
        interrupted = 0
        for sid, _owner, state, clearing in dead:
            if state == "running":
                interrupted += 1
                sessions.interrupted(db, sid, at=to_iso(utcnow()), actor=actor)
            if clearing == "intent":
                sessions.clearing_interrupted(db, sid, actor=actor)
    if reaped or interrupted:
        log.warning("ingest.recovered", staging_reaped=reaped, sessions_interrupted=interrupted)
    return {"staging_reaped": reaped, "sessions_interrupted": interrupted}
