"""The ingest engine.

For each file on a recorder volume, in this order (DESIGN.md invariants 1–3, R7):

0. check the vault's free space against the file's size (a sparse or huge file is refused before
   a byte is written);
1. copy it into this run's own staging folder (``staging/<owner>/``, see ``custody``) with **one
   read of the source**, hashing (SHA-256) on the way;
2. flush the staged copies of a batch (one ``syncfs``), drop them from the page cache and re-read
   them from disk: the hash must match; make them read-only (0444). Where the vault holds a file
   under that hash already, re-hash that file from disk too (cache dropped first);
3. under the vault-wide writer lock: give each copy its content-addressed name in ``originals/``
   with a rename that never replaces a file — or, when the vault's file is there and matched,
   discard the copy (``held``), or when it did not match, replace the rotten file atomically with
   the verified copy (``vault.repaired``, the rotten one kept in ``quarantine/``); flush; commit
   the catalog rows and audit entries of the batch in one transaction.

A file is reported verified only if the vault copy under its hash was re-read from disk and
matched **in this run** and was committed (DESIGN.md invariant 2, R7); only those may be cleared
from a recorder. Copying (source-bound) and verifying/committing (vault-bound) run in two threads
with a bounded queue between them, so the vault re-read overlaps the next file's copy.
"""

from __future__ import annotations

import errno
import json
import os
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from station import audit
from station.audit.seal import recording_seal
from station.catalog import write_txn
from station.config import Settings
from station.custody import Owner, WriterLock, owner_alive, reap_dead_owners
from station.errors import (
    IngestError,
    StationError,
    VaultFullError,
    VolumeGoneError,
    is_disk_full,
)
from station.hashing.copy import (
    PIPELINE_MIN,
    Reader,
    copy_and_hash_pipelined,
    fsync_dir,
    hash_file,
    move_no_replace,
    open_source,
    prefetch,
    syncfs,
)
from station.hashing.copy import copy_and_hash as _copy_and_hash
from station.ingest.media import damage_check, ext_of
from station.ingest.model import (
    FileResult,
    IngestContext,
    IngestProgress,
    IngestReport,
)
from station.ingest.rows import AUDITED, RowBuilder
from station.ingest.sources import SourceEntry, entries_for_files, enumerate_volume
from station.log import get
from station.timeutil import from_timestamp, to_iso, utcnow
from station.vault import Vault

log = get()

BATCH_FILES = 1024
PREFETCH_FILES = 16
PREFETCH_MAX_FILE = 4 << 20
PREFETCH_BYTES = 32 << 20
BATCH_BYTES = 16 << 20  # large files commit one by one, so verify overlaps the next copy
_GONE = (errno.ENODEV, errno.ENXIO, errno.ENOTCONN, errno.ESHUTDOWN, errno.ENOMEDIUM)
MARGIN_MIN = 64 << 10
_ORIGINAL = re.compile(r"^[0-9a-f]{64}(\.[0-9a-z]{1,8})?$")
MARGIN_MAX = 256 << 20


def free_space_margin(total: int) -> int:
    """Room kept free beside each file: 1 % of the vault's file system, 64 KiB to 256 MiB (for
    the catalog, its journal and other runs' copies)."""
    return max(MARGIN_MIN, min(MARGIN_MAX, total // 100))


@dataclass
class _Staged:
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


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class _Abort(Exception):
    def __init__(self, reason: str, error: StationError | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


Opener = Callable[[Path], Reader]


class _Run:
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
        opener: Opener,
        owner: Owner,
    ) -> None:
        self.owner = owner
        self.vault = vault
        self.db = db
        self.settings = settings
        self.volume = volume
        self.ctx = ctx
        self.actor = actor
        self.progress_cb = progress
        self.stop = stop or threading.Event()
        self.opener = opener
        self.chunk = settings.ingest.chunk_kib * 1024
        self.report = IngestReport(session_id=0)
        self.files_total = 0
        self.bytes_total = 0
        self.files_done = 0
        self.bytes_done = 0
        self.current: str | None = None
        self._last_progress = 0.0
        self.q: queue.Queue[list[_Staged] | None] = queue.Queue(maxsize=2)
        self.commit_error: BaseException | None = None
        self.seq = 0
        self.created_session = False
        self.lock = threading.Lock()
        self.copier_done = threading.Event()
        self.known_dirs: set[Path] = set()
        self._ahead: dict[Path, Reader] = {}
        self.no_room = 0  # files refused for lack of free space

    # ---- progress -------------------------------------------------------------------------
    def _progress(self, force: bool = False) -> None:
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

    def _on_bytes(self, n: int) -> None:
        self.bytes_done += n
        self.report.bytes_read += n
        self._progress()

    # ---- session --------------------------------------------------------------------------
    def open_session(self, entries: list[SourceEntry]) -> None:
        files = [e for e in entries if e.kind == "file"]
        self.files_total = len(files)
        self.bytes_total = sum(e.size for e in files)
        with write_txn(self.db):
            if self.ctx.session_id is None:
                cur = self.db.execute(
                    "insert into sessions (kind, slot, device_id, officer_id, unit_id, started_at,"
                    " state, drift_s, owner) values (?, ?, ?, ?, ?, ?, 'running', ?, ?)",
                    [
                        self.ctx.kind,
                        self.ctx.slot or str(self.volume),
                        self.ctx.device_id,
                        self.ctx.officer_id,
                        self.ctx.unit_id,
                        to_iso(utcnow()),
                        self.ctx.drift_s,
                        self.owner.id,
                    ],
                )
                self.ctx.session_id = int(cur.lastrowid or 0)
                self.created_session = True
                audit.append(
                    self.db,
                    "session.started",
                    actor=self.actor,
                    subject=f"session:{self.ctx.session_id}",
                    data={
                        "kind": self.ctx.kind,
                        "volume": str(self.volume),
                        "device_id": self.ctx.device_id,
                        "officer_id": self.ctx.officer_id,
                    },
                )
            self.db.execute(
                "update sessions set files_total = ?, bytes_total = ? where id = ?",
                [self.files_total, self.bytes_total, self.ctx.session_id],
            )
        self.report.session_id = int(self.ctx.session_id or 0)
        self.rows = RowBuilder(self.db, self.vault, self.settings, self.ctx, self.report.session_id)

    def close_session(self) -> None:
        r = self.report
        if r.aborted == "stopped":
            state = "interrupted"
        elif r.aborted:
            state = "interrupted" if r.aborted == "volume gone" else "failed"
        else:
            state = "failed" if r.count("failed") else "done"
        with write_txn(self.db):
            self.db.execute(
                "update sessions set files_done = ?, bytes_done = ?, files_new = ?,"
                " files_held = ?, files_failed = ? where id = ?",
                [
                    self.files_done,
                    self.bytes_done,
                    r.count("new"),
                    r.count("held"),
                    r.count("failed"),
                    r.session_id,
                ],
            )
            if self.created_session:
                self.db.execute(
                    "update sessions set state = ?, ended_at = ?, message = ? where id = ?",
                    [state, to_iso(utcnow()), r.aborted, r.session_id],
                )
                audit.append(
                    self.db,
                    "session.ended",
                    actor=self.actor,
                    subject=f"session:{r.session_id}",
                    data={"state": state, **r.summary()},
                )

    # ---- stage 1: copy ------------------------------------------------------------------
    def _volume_alive(self) -> bool:
        try:
            os.stat(self.volume)
            os.listdir(self.volume)
        except OSError:
            return False
        return True

    def copy_all(self, entries: list[SourceEntry]) -> None:
        try:
            self._copy_all(entries)
        finally:
            self._close_ahead()

    def _copy_all(self, entries: list[SourceEntry]) -> None:
        batch: list[_Staged] = []
        batch_bytes = 0
        ahead = 0  # index up to which small source files were asked for in advance
        try:
            for i, entry in enumerate(entries):
                ahead = self._read_ahead(entries, i, ahead)
                if self.stop.is_set():
                    raise _Abort("stopped")
                if entry.kind != "file":
                    what = (
                        "symlink, not followed"
                        if entry.kind == "symlink"
                        else "not a regular file (device node, fifo or socket), not read"
                    )
                    log.warning("ingest.file_skipped", path=entry.rel, reason=what)
                    batch.append(_Staged(entry, None, None, 0, failure=what, outcome="skipped"))
                    continue
                staged = self._copy_one(entry)
                batch.append(staged)
                batch_bytes += staged.size
                if len(batch) >= BATCH_FILES or batch_bytes >= BATCH_BYTES:
                    self._put(batch)
                    batch, batch_bytes = [], 0
        except _Abort as abort:
            self.report.aborted = abort.reason
            self._put(batch)
            self._put(None)
            if abort.error is not None:
                raise abort.error from None
            return
        self._put(batch)
        self._put(None)

    def _read_ahead(self, entries: list[SourceEntry], i: int, ahead: int) -> int:
        """Ask the kernel to read the next small files while this one is copied."""
        ahead = max(ahead, i + 1)
        budget = 0
        while ahead < len(entries) and ahead - i <= PREFETCH_FILES:
            e = entries[ahead]
            if e.kind == "file" and e.size <= PREFETCH_MAX_FILE:
                budget += e.size
                if budget > PREFETCH_BYTES:
                    break
                if self.opener is open_source:
                    # open it now and keep the descriptor for the copy: one open per file
                    try:
                        reader = open_source(e.path)
                        os.posix_fadvise(reader.fd, 0, 0, os.POSIX_FADV_WILLNEED)
                        self._ahead[e.path] = reader
                    except OSError:
                        pass  # the copy's own open reports it
                else:
                    prefetch(e.path)
            ahead += 1
        return ahead

    def _close_ahead(self) -> None:
        for reader in self._ahead.values():
            reader.close()
        self._ahead.clear()

    def _put(self, item: list[_Staged] | None) -> None:
        if item is not None and not item:
            return
        while True:
            if self.commit_error is not None:
                raise _Abort("vault error")
            try:
                self.q.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _no_room(self, entry: SourceEntry) -> str | None:
        """Why ``entry`` cannot fit in the vault now (its size plus a margin), or None."""
        try:
            st = os.statvfs(self.owner.dir)
        except OSError:
            return None  # the copy itself reports what is wrong with the vault
        free = st.f_bavail * st.f_frsize
        need = entry.size + free_space_margin(st.f_blocks * st.f_frsize)
        if free >= need:
            return None
        self.no_room += 1
        log.error("ingest.no_space", path=entry.rel, size=entry.size, free=free, need=need)
        return (
            "存储空间不足，文件未复制 / not enough free space in the vault: the file needs "
            f"{entry.size} bytes, {free} are free"
        )

    def _copy_one(self, entry: SourceEntry) -> _Staged:
        self.current = entry.rel
        self.seq += 1
        room = self._no_room(entry)
        if room is not None:
            ahead = self._ahead.pop(entry.path, None)
            if ahead is not None:
                ahead.close()
            return _Staged(entry, None, None, 0, failure=room, outcome="failed")
        staged = self.owner.part()
        try:
            reader = self._ahead.pop(entry.path, None) or self.opener(entry.path)
        except OSError as exc:
            return self._read_failure(entry, exc)
        done_before = self.bytes_done
        try:
            try:
                out = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise self._vault_error(exc, staged) from exc
            try:
                try:
                    copier = (
                        copy_and_hash_pipelined if entry.size >= PIPELINE_MIN else _copy_and_hash
                    )
                    sha, size = copier(
                        reader,
                        out,
                        chunk=self.chunk,
                        on_bytes=self._on_bytes,
                        should_stop=self.stop.is_set,
                    )
                except InterruptedError:
                    staged.unlink(missing_ok=True)
                    raise _Abort("stopped") from None
                except OSError as exc:
                    staged.unlink(missing_ok=True)
                    if exc.filename == "<vault>":
                        raise self._vault_error(exc, staged) from exc
                    self.bytes_done = done_before
                    return self._read_failure(entry, exc)
            finally:
                os.close(out)
        finally:
            reader.close()
        if size != entry.size:
            log.warning("ingest.size_changed", path=entry.rel, listed=entry.size, read=size)
        self.files_done += 1
        self._progress(force=True)
        return _Staged(entry, staged, sha, size)

    def _vault_error(self, exc: OSError, path: Path) -> _Abort:
        if is_disk_full(exc):
            err: StationError = VaultFullError(
                "存储已满 / the vault's disk is full; ingest stopped, nothing partial kept",
                where=str(self.vault.home),
                hint="free space or extend the vault; the recorder was not cleared",
            )
            return _Abort("vault full", err)
        return _Abort(
            "vault error",
            IngestError(f"cannot write to the vault: {exc.strerror}", where=str(path)),
        )

    def _read_failure(self, entry: SourceEntry, exc: OSError) -> _Staged:
        if exc.errno in _GONE or not self._volume_alive():
            err = VolumeGoneError(
                "记录仪已断开 / the recorder volume went away during ingest",
                where=str(self.volume),
                hint="dock the recorder again; verified files are kept",
            )
            raise _Abort("volume gone", err)
        msg = f"read error: {exc.strerror or exc}"
        log.error("ingest.read_failed", path=entry.rel, error=msg, errno=exc.errno)
        return _Staged(entry, None, None, 0, failure=msg, outcome="failed")

    # ---- stage 2: verify, store, commit ---------------------------------------------------
    def commit_loop(self) -> None:
        try:
            while True:
                batch = self.q.get()
                if batch is None:
                    return
                self._commit_batch(batch)
        except BaseException as exc:
            self.commit_error = exc
            while True:  # drain so the copier never blocks, and remove what it staged
                try:
                    item = self.q.get(timeout=0.5)
                except queue.Empty:
                    if self.copier_done.is_set():
                        return
                    continue
                if item is None:
                    return
                for s in item:
                    if s.staged:
                        s.staged.unlink(missing_ok=True)

    def _commit_batch(self, batch: list[_Staged]) -> None:
        results: list[tuple[_Staged, str, str | None, str | None]] = []
        staged_any = [s for s in batch if s.staged is not None]
        if staged_any:
            try:
                syncfs(self.vault.staging)
            except OSError as exc:
                self._cleanup(batch)
                raise self._vault_error(exc, self.vault.staging).error or exc from exc
        try:
            if self.settings.ingest.verify_after_write:
                for s in staged_any:  # drop the copies from the cache, re-read them from disk
                    assert s.staged is not None
                    prefetch(s.staged, from_disk=True)
            for s in staged_any:  # no lock held: other runs copy and prove meanwhile
                self._prove(s)
            with WriterLock(self.vault):  # invariant 8: one writer names and commits at a time
                linked: list[Path] = []
                try:
                    here: dict[Path, bool] = {}
                    if staged_any:
                        self.owner.naming([self._final(s) for s in staged_any if s.staged])
                    for s in batch:
                        results.append(self._place(s, linked, here))
                    if linked or staged_any:
                        # one flush for every new name of the batch (directories included),
                        # instead of an fsync per content-addressed folder
                        syncfs(self.vault.originals)
                    self._write_rows(results)
                    self.owner.named_committed()
                except BaseException:
                    # committed nowhere, and no other run could count these names as stored
                    # while this run held the writer lock: take back what this batch linked
                    for p in linked:
                        try:
                            os.chmod(p, 0o600)
                            p.unlink()
                        except OSError:
                            pass
                    raise
        except BaseException as exc:
            self._cleanup(batch)
            if isinstance(exc, OSError) and is_disk_full(exc):
                raise self._vault_error(exc, self.vault.originals).error or exc from exc
            raise
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

    def _cleanup(self, batch: list[_Staged]) -> None:
        for s in batch:
            if s.staged is not None:
                s.staged.unlink(missing_ok=True)

    def _final(self, s: _Staged) -> Path:
        """Where the vault keeps this content: the catalog's path for it, else its
        content-addressed name."""
        assert s.sha256 is not None
        row = self.db.execute(
            "select vault_path, state from recordings where sha256 = ?", [s.sha256]
        ).fetchone()
        if row is not None and row[0] and row[1] != "purged":
            return self.vault.home / row[0]
        return self.vault.original_path(s.sha256, ext_of(s.entry.rel))

    def _prove(self, s: _Staged) -> None:
        """Re-read the staged copy from disk; where the vault holds a file under its hash
        already, re-hash that file from disk too (its cached pages dropped first)."""
        assert s.staged is not None and s.sha256 is not None
        entry = s.entry
        s.damaged = damage_check(s.staged, ext_of(entry.rel))  # headers only; advisory
        if not self.settings.ingest.verify_after_write:
            os.chmod(s.staged, 0o444)
            return
        again, size = hash_file(s.staged, chunk=self.chunk, from_disk=True, prefetched=True)
        if again != s.sha256 or size != s.size:
            s.staged.unlink(missing_ok=True)
            s.staged = None
            log.error("ingest.verify_mismatch", path=entry.rel, copied=s.sha256, reread=again)
            s.outcome, s.failure = "failed", "校验不一致 / vault copy did not match on re-read"
            return
        s.verified = True
        os.chmod(s.staged, 0o444)
        final = self._final(s)
        try:
            st = final.stat()
        except OSError:
            return
        s.existing = (_identity(st), self._rehash(final))

    def _rehash(self, path: Path) -> str | None:
        try:
            return hash_file(path, chunk=self.chunk, from_disk=True)[0]
        except OSError as exc:
            log.error("ingest.vault_copy_unreadable", path=str(path), error=str(exc))
            return None

    def _place(
        self, s: _Staged, linked: list[Path], here: dict[Path, bool]
    ) -> tuple[_Staged, str, str | None, str | None]:
        """Under the writer lock: name the copy in the vault, or prove the vault's own file
        (held), or repair a rotten one. ``here`` holds the names this batch placed."""
        if s.staged is None:
            return s, s.outcome or "failed", s.failure, s.damaged
        assert s.sha256 is not None
        final = self._final(s)
        if final.parent not in self.known_dirs:
            final.parent.mkdir(parents=True, exist_ok=True)
            self.known_dirs.add(final.parent)
        if move_no_replace(s.staged, final):
            linked.append(final)
            here[final] = s.verified
            s.staged = None
            return s, "new", None, s.damaged
        if final in here:  # the same content twice in this batch: proven a moment ago
            s.staged.unlink()
            s.staged = None
            s.verified = s.verified and here[final]
            return s, "held", None, s.damaged
        if not self.settings.ingest.verify_after_write:
            s.staged.unlink()
            s.staged = None
            if os.path.getsize(final) != s.size:  # not proven either way: never verified
                log.error("ingest.vault_copy_mismatch", sha256=s.sha256, path=str(final))
                return (
                    s,
                    "failed",
                    "库内同名文件不一致 / the vault already holds a different file under this "
                    "hash; run `station verify`",
                    s.damaged,
                )
            return s, "held", None, s.damaged
        st = final.stat()
        found = (
            s.existing[1]
            if s.existing is not None and s.existing[0] == _identity(st)
            else self._rehash(final)  # placed by another run since: prove it now
        )
        if found == s.sha256:
            s.staged.unlink()
            s.staged = None
            here[final] = True
            return s, "held", None, s.damaged
        self._repair(s, final, found, st.st_size)
        here[final] = True
        return s, "held", None, s.damaged

    def _repair(self, s: _Staged, final: Path, found: str | None, found_size: int) -> None:
        """The vault's file under this hash is rotten: keep it aside in ``quarantine/`` for
        whoever investigates, put the verified copy in its place with one atomic rename (the
        name never stops holding a whole file), and record it at once (R7)."""
        assert s.staged is not None and s.sha256 is not None
        quarantine = self.vault.home / "quarantine"
        quarantine.mkdir(exist_ok=True)
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
        kept: Path | None = quarantine / f"{final.name}.{stamp}.rotten"
        assert kept is not None
        try:
            os.link(final, kept)
        except OSError as exc:
            log.error("ingest.quarantine_failed", path=str(final), error=str(exc))
            kept = None
        os.rename(s.staged, final)
        s.staged = None
        s.repaired = True
        fsync_dir(final.parent)
        rel = str(final.relative_to(self.vault.home))
        data = {
            "session_id": self.report.session_id,
            "path": rel,
            "found_sha256": found,
            "found_size": found_size,
            "source_path": s.entry.rel,
            "quarantined": str(kept.relative_to(self.vault.home)) if kept else None,
        }
        message = (
            "库内原始文件已损坏，已用本次校验通过的副本修复 / a rotten vault copy of "
            f"{s.sha256[:16]} was replaced with this session's verified copy ({rel})"
        )
        with write_txn(self.db):
            audit.append(self.db, "vault.repaired", actor=self.actor, subject=s.sha256, data=data)
            cur = self.db.execute(
                "insert into alerts (at, code, device_id, slot, session_id, message, data)"
                " values (?, 'vault_repaired', ?, ?, ?, ?, ?)",
                [
                    to_iso(utcnow()),
                    self.ctx.device_id,
                    self.ctx.slot,
                    self.report.session_id,
                    message,
                    json.dumps(data, ensure_ascii=False),
                ],
            )
            audit.append(
                self.db,
                "alert.raised",
                actor=self.actor,
                subject=s.sha256,
                data={
                    "alert_id": int(cur.lastrowid or 0),
                    "code": "vault_repaired",
                    "session_id": self.report.session_id,
                },
            )
        log.error("ingest.vault_repaired", **data, sha256=s.sha256)

    # ---- catalog rows ---------------------------------------------------------------------
    def _sighting(
        self, s: _Staged, outcome: str, error: str | None, sid: int, now: str | None = None
    ) -> None:
        self.db.execute(
            "insert into sightings (session_id, sha256, source_path, source_size,"
            " source_mtime, outcome, error, at) values (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                sid,
                s.sha256,
                s.entry.rel,
                s.entry.size,
                to_iso(from_timestamp(s.entry.mtime)),
                outcome,
                error,
                now or to_iso(utcnow()),
            ],
        )

    def _revive(self, s: _Staged, sid: int) -> None:
        """A recording purged by retention turns up again on a recorder: it is evidence in the
        vault again (the link just made), never dropped; its tombstone stays (R7, R9)."""
        self.db.execute("update recordings set state = 'stored' where sha256 = ?", [s.sha256])
        self._sighting(s, "new", None, sid)
        audit.append(
            self.db,
            "recording.restored_by_ingest",
            actor=self.actor,
            subject=s.sha256,
            data={"session_id": sid, "source_path": s.entry.rel, "previous_state": "purged"},
        )
        log.warning("ingest.purged_recording_returned", sha256=s.sha256, path=s.entry.rel)

    def _write_rows(self, results: list[tuple[_Staged, str, str | None, str | None]]) -> None:
        now = to_iso(utcnow())
        sid = self.report.session_id
        with write_txn(self.db):
            for s, outcome, error, damaged in results:
                entry = s.entry
                if outcome in ("new", "held"):
                    # the catalog decides: a file linked by a run that crashed before its commit
                    # is new; one committed by a concurrent session meanwhile is held
                    known = self.db.execute(
                        "select state from recordings where sha256 = ?", [s.sha256]
                    ).fetchone()
                    outcome = "held" if known else "new"
                    if known and known[0] == "purged":
                        self._revive(s, sid)
                        outcome = "new"
                        s.outcome = outcome
                        continue
                if outcome == "new":
                    assert s.sha256 is not None
                    row = self.rows.recording(entry, s.sha256, s.size, damaged, now)
                    cols = ", ".join(row)
                    marks = ", ".join("?" for _ in row)
                    self.db.execute(
                        f"insert into recordings ({cols}) values ({marks})", list(row.values())
                    )
                    audit.append(
                        self.db,
                        "recording.ingested",
                        actor=self.actor,
                        subject=s.sha256,
                        data={**{k: row[k] for k in AUDITED}, **recording_seal(row)},
                    )
                    log.info(
                        "ingest.file_stored",
                        sha256=s.sha256,
                        path=entry.rel,
                        size=s.size,
                        damaged=damaged,
                    )
                elif outcome == "held":
                    audit.append(
                        self.db,
                        "recording.sighted",
                        actor=self.actor,
                        subject=s.sha256,
                        data={"session_id": sid, "source_path": entry.rel},
                    )
                    log.info("ingest.file_held", sha256=s.sha256, path=entry.rel)
                else:
                    audit.append(
                        self.db,
                        f"ingest.file_{outcome}",
                        actor=self.actor,
                        subject=f"session:{sid}",
                        data={"source_path": entry.rel, "error": error},
                    )
                self._sighting(s, outcome, error, sid, now)
                s.outcome = outcome
            self.db.execute(
                "update sessions set files_done = ?, bytes_done = ? where id = ?",
                [self.files_done, self.bytes_done, sid],
            )
        for i, (s, _o, error, damaged) in enumerate(results):
            results[i] = (s, s.outcome or _o, error, damaged)


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
) -> IngestReport:
    # a run without a given owner takes its own, released (staging emptied) however it ends
    held = nullcontext(owner) if owner is not None else Owner.acquire(vault, ctx.kind)
    with held as own:
        return _run_owned(
            vault, db, settings, volume, entries, ctx, actor, progress, stop, opener, own
        )


def _run_owned(
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
    owner: Owner,
) -> IngestReport:
    run = _Run(vault, db, settings, volume, ctx, actor, progress, stop, opener, owner)
    started = time.monotonic()
    run.open_session(entries)
    log.info(
        "ingest.started",
        session_id=run.report.session_id,
        volume=str(volume),
        files=run.files_total,
        bytes=run.bytes_total,
    )
    committer = threading.Thread(target=run.commit_loop, name="ingest-commit", daemon=False)
    committer.start()
    error: BaseException | None = None
    try:
        run.copy_all(entries)
    except BaseException as exc:
        error = exc
    finally:
        run.copier_done.set()
        committer.join()
    if isinstance(error, _Abort) or (error is None and run.commit_error is not None):
        error = run.commit_error
        if error is not None and run.report.aborted is None:
            run.report.aborted = "vault error"
    if error is None and run.no_room and run.report.aborted is None:
        # the files that fit were stored; the rest were refused before a byte was written
        error = VaultFullError(
            "存储空间不足，部分文件未复制 / the vault has too little free space for "
            f"{run.no_room} file(s); those were not copied",
            where=str(vault.home),
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
    run._progress(force=True)
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
) -> IngestReport:
    """Ingest every file on a mounted recorder volume (or any folder).

    ``owner``: the live owner of the session ``ctx.session_id`` (a dock session holds its own
    for its whole life); without one the run takes one for itself (DESIGN.md invariant 8).
    Raises VaultFullError / VolumeGoneError / IngestError after committing what was verified;
    the exception's ``report`` field then holds the partial report.
    """
    entries = enumerate_volume(volume)
    return _run(vault, db, settings, volume, entries, ctx, actor, progress, stop, opener, owner)


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
) -> IngestReport:
    """Ingest the given files under ``base`` (an inbox drop). Files outside ``base`` fail."""
    entries, outside = entries_for_files(files, base)
    report = _run(vault, db, settings, base, entries, ctx, actor, progress, stop, opener, owner)
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
                if path.parent.parent != vault.originals or not _ORIGINAL.match(path.name):
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
        rows = [
            (r[0], r[1], r[2], r[3])
            for r in db.execute(
                "select id, owner, state, clearing from sessions"
                " where state = 'running' or clearing = 'intent'"
            )
        ]
        dead = [r for r in rows if not owner_alive(vault, r[1])]
        interrupted = 0
        for sid, _owner, state, clearing in dead:
            if state == "running":
                interrupted += 1
                db.execute(
                    "update sessions set state = 'interrupted', ended_at = ?,"
                    " message = 'station restarted during the session' where id = ?",
                    [to_iso(utcnow()), sid],
                )
                audit.append(
                    db,
                    "session.interrupted",
                    actor=actor,
                    subject=f"session:{sid}",
                    data={"reason": "its owner ended without closing it"},
                )
            if clearing == "intent":
                # the intent to delete was audited, the results never were: which files went
                # is unknown until someone looks at the recorder or the inbox
                db.execute(
                    "update sessions set clearing = 'interrupted',"
                    " message = coalesce(message || '; ', '') || ? where id = ?",
                    ["清除中断，结果未知 / clearing interrupted: results unknown", sid],
                )
                audit.append(
                    db,
                    "session.clearing_interrupted",
                    actor=actor,
                    subject=f"session:{sid}",
                    data={"reason": "its owner ended between the clearing intent and results"},
                )
    if reaped or interrupted:
        log.warning("ingest.recovered", staging_reaped=reaped, sessions_interrupted=interrupted)
    return {"staging_reaped": reaped, "sessions_interrupted": interrupted}
