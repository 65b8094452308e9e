"""One ingest run's bookkeeping, shared by its stages: the report, the counters and progress
callbacks, and the session row (opened and closed through ``station.ingest.sessions``).

The copy stage counts files and bytes read (``on_bytes``, ``file_copied``); the store stage adds
each file's result (``add_results``, under a lock: in production the stages are two threads).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from station.catalog import write_txn
from station.config import Settings
from station.custody import Owner
from station.hashing.copy import ProveBehind
from station.ingest import sessions
from station.ingest.model import FileResult, IngestContext, IngestProgress, IngestReport
from station.ingest.rows import RowBuilder
from station.ingest.sources import SourceEntry
from station.timeutil import to_iso, utcnow
from station.vault import Vault


@dataclass
class Staged:
    """One source file on its way through the stages."""

    entry: SourceEntry
    staged: Path | None
    sha256: str | None
    size: int
    failure: str | None = None
    outcome: str | None = None  # preset for skipped/failed
    damaged: str | None = None
    verified: bool = False  # the vault copy under its hash was re-read and matched in this run
    existing: tuple[tuple[int, int, int, int], str | None] | None = None  # (identity, sha256)
    repaired: bool = False
    behind: ProveBehind | None = None  # the copy's re-read from the device, made during the copy


# (file, outcome, error, damage) as the store stage decided it
Result = tuple[Staged, str, str | None, str | None]


class RunBook:
    def __init__(
        self,
        vault: Vault,
        db: sqlite_utils.Database,
        settings: Settings,
        volume: Path,
        ctx: IngestContext,
        actor: str,
        progress: Callable[[IngestProgress], None] | None,
        stop: threading.Event | None,
        owner: Owner,
    ) -> None:
        self.vault = vault
        self.db = db
        self.settings = settings
        self.volume = volume
        self.ctx = ctx
        self.actor = actor
        self.owner = owner
        self.progress_cb = progress
        self.stop = stop or threading.Event()
        self.chunk = settings.ingest.chunk_kib * 1024
        self.report = IngestReport(session_id=0)
        self.files_total = 0
        self.bytes_total = 0
        self.files_done = 0
        self.bytes_done = 0
        self.current: str | None = None
        self._last_progress = 0.0
        self.created_session = False
        self.lock = threading.Lock()
        self.no_room = 0  # files refused for lack of free space
        self.rows: RowBuilder

    # ---- progress -------------------------------------------------------------------------
    def progress(self, force: bool = False) -> None:
        if self.progress_cb is None:
            return
        now = time.monotonic()
        if not force and now - self._last_progress < 0.25:
            return
        self._last_progress = now
        self.progress_cb(
            IngestProgress(
                self.files_total, self.files_done, self.bytes_total, self.bytes_done, self.current
            )
        )

    def on_bytes(self, n: int) -> None:
        self.bytes_done += n
        self.report.bytes_read += n
        self.progress()

    def file_copied(self) -> None:
        self.files_done += 1
        self.progress(force=True)

    def add_results(self, results: list[Result]) -> None:
        with self.lock:
            for s, outcome, error, damaged in results:
                self.report.files.append(
                    FileResult(
                        s.entry.path,
                        s.entry.rel,
                        outcome,
                        s.sha256,
                        s.size,
                        error,
                        damaged,
                        verified=s.verified and outcome in ("new", "held"),
                        repaired=s.repaired,
                    )
                )

    # ---- the session row ------------------------------------------------------------------
    def open_session(self, entries: list[SourceEntry]) -> None:
        files = [e for e in entries if e.kind == "file"]
        self.files_total = len(files)
        self.bytes_total = sum(e.size for e in files)
        with write_txn(self.db):
            if self.ctx.session_id is None:
                self.ctx.session_id = sessions.start(
                    self.db,
                    kind=self.ctx.kind,
                    slot=self.ctx.slot or str(self.volume),
                    owner=self.owner.id,
                    started_at=to_iso(utcnow()),
                    actor=self.actor,
                    audit_data={
                        "kind": self.ctx.kind,
                        "volume": str(self.volume),
                        "device_id": self.ctx.device_id,
                        "officer_id": self.ctx.officer_id,
                    },
                    device_id=self.ctx.device_id,
                    officer_id=self.ctx.officer_id,
                    unit_id=self.ctx.unit_id,
                    drift_s=self.ctx.drift_s,
                )
                self.created_session = True
            sessions.update(
                self.db,
                self.ctx.session_id,
                files_total=self.files_total,
                bytes_total=self.bytes_total,
            )
        self.report.session_id = int(self.ctx.session_id or 0)
        self.rows = RowBuilder(self.vault, self.settings, self.ctx, self.report.session_id)

    def close_session(self) -> None:
        r = self.report
        if r.aborted == "stopped":
            state = "interrupted"
        elif r.aborted:
            state = "interrupted" if r.aborted == "volume gone" else "failed"
        else:
            state = "failed" if r.count("failed") else "done"
        with write_txn(self.db):
            sessions.update(
                self.db,
                r.session_id,
                files_done=self.files_done,
                bytes_done=self.bytes_done,
                files_new=r.count("new"),
                files_held=r.count("held"),
                files_failed=r.count("failed"),
            )
            if self.created_session:
                sessions.end(
                    self.db,
                    r.session_id,
                    state=state,
                    ended_at=to_iso(utcnow()),
                    actor=self.actor,
                    audit_data={"state": state, **r.summary()},
                    message=r.aborted,
                )
