"""Stage 2, bound to the vault: prove, name and commit each batch of staged copies.

1. flush the staged copies of a batch (an ``fsync`` of each: their data went to the device behind
   the copy already, see ``hashing.copy``; never a ``syncfs``, which would wait on every other
   writer of the vault's file system), drop them from the page cache and re-read them from disk:
   the hash must match; make them read-only (0444). A large copy was re-read from the device
   range by range while it was written (``ProveBehind``): its proof is that re-read, taken once
   the flush succeeded. Where the vault holds a file under that hash
   already, re-hash that file from disk too (cache dropped first). No lock is
   held meanwhile: other runs copy and prove at the same time.
2. under the vault-wide writer lock (DESIGN.md invariant 8), in one turn with the batches
   other runs of this process have ready (``group_commit``: one transaction, each batch in its
   own savepoint): give each copy its content-addressed name in ``originals/`` with a rename
   that never replaces a file — or, when the vault's file is there and matched, discard the
   copy (``held``), or when it did not match, replace the rotten file atomically with the
   verified copy (``vault.repaired``, the rotten one kept in ``quarantine/``); the turn flushes
   the folders that gained a name (an ``fsync`` of each, a ``syncfs`` when many did); then the
   catalog rows and audit entries of the batch (``catalog_rows``) are written in the turn's
   transaction, and it commits. If the batch's rows or the commit fail, the names this batch
   linked are taken back: no other run could have counted them as stored meanwhile.

A file is verified only if the vault copy under its hash was re-read from disk and matched in
this run and was committed (DESIGN.md invariant 2, R7).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import sqlite_utils

from station import audit
from station.catalog import write_txn
from station.errors import is_disk_full
from station.hashing.copy import (
    fsync_dir,
    fsync_file,
    hash_file,
    move_no_replace,
    prefetch,
)
from station.ingest import group_commit
from station.ingest.bookkeeping import Result, RunBook, Staged
from station.ingest.catalog_rows import CatalogRows
from station.ingest.failures import vault_error
from station.ingest.group_commit import Job
from station.ingest.media import damage_check, ext_of
from station.log import get
from station.timeutil import to_iso, utcnow

log = get()

ORIGINAL = re.compile(r"^[0-9a-f]{64}(\.[0-9a-z]{1,8})?$")


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class StoreStage:
    def __init__(self, book: RunBook) -> None:
        self.book = book
        self.rows = CatalogRows(book)
        self.known_dirs: set[Path] = set()

    def commit(self, batch: list[Staged]) -> None:
        results: list[Result] = []
        staged_any = [s for s in batch if s.staged is not None]
        t0 = time.monotonic()
        if staged_any:
            try:
                for s in staged_any:
                    assert s.staged is not None
                    fsync_file(s.staged)
            except OSError as exc:
                self.discard(batch)
                raise (
                    vault_error(self.book.vault.home, exc, self.book.vault.staging).error or exc
                ) from exc
        t_flushed = time.monotonic()
        marks: dict[str, float] = {}
        linked: list[Path] = []

        def place(db: sqlite_utils.Database) -> set[Path]:
            # under the writer lock (group_commit), no catalog transaction open: name them
            marks["locked"] = time.monotonic()
            here: dict[Path, bool] = {}
            # another run may have committed the same content meanwhile: its path is this
            # batch's name now, listed before it is created
            self._write_naming(db, staged_any, listed)
            marks["named"] = time.monotonic()
            for s in batch:
                results.append(self._place(db, s, linked, here))
            marks["placed"] = time.monotonic()
            return {p.parent for p in linked}  # flushed by the turn, before its commit

        def rows(db: sqlite_utils.Database) -> None:
            # inside the turn's transaction, on the leading run's connection
            self.rows.write(db, results)

        def undo() -> None:
            # committed nowhere, and no other run could count these names as stored while
            # the writer lock was held: take back what this batch linked
            for p in linked:
                try:
                    os.chmod(p, 0o600)
                    p.unlink()
                except OSError:
                    pass
            linked.clear()

        job = Job(place, rows, undo)
        try:
            if self.book.settings.ingest.verify_after_write:
                for s in staged_any:  # drop the copies from the cache, re-read them from disk
                    assert s.staged is not None
                    if s.behind is None:  # (else re-read behind the copy already)
                        prefetch(s.staged, from_disk=True)
            for s in staged_any:  # no lock held: other runs copy and prove meanwhile
                self._prove(s)
            # the names this batch will create, written down durably before taking the lock
            # (the flushes overlap other runs' turns); re-checked under it
            listed = self._write_naming(self.book.db, staged_any, set())
            t_proved = time.monotonic()
            # invariant 8: named and committed under the writer lock, in one turn with the
            # batches other runs of this process have ready (group_commit)
            committed_hooks = group_commit.for_vault(self.book.vault).run(self.book.db, job)
            if listed:
                self.book.owner.named_committed()  # committed: the rows claim every name
            t_released = time.monotonic()
            for hook in committed_hooks:  # the audit head moves forward, the lock let go
                hook(self.book.db)
        except BaseException as exc:
            self.discard(batch)
            if isinstance(exc, OSError) and is_disk_full(exc):
                raise (
                    vault_error(self.book.vault.home, exc, self.book.vault.originals).error or exc
                ) from exc
            raise
        t_end = time.monotonic()
        self.book.add_results(results)
        t_locked = marks.get("locked", t_proved)
        log.info(
            "ingest.batch_committed",
            session_id=self.book.report.session_id,
            files=len(batch),
            bytes=sum(s.size for s in batch),
            group=job.group,
            flush_s=round(t_flushed - t0, 4),
            prove_s=round(t_proved - t_flushed, 4),
            lock_wait_s=round(t_locked - t_proved, 4),
            locked_s=round(t_released - t_locked, 4),
            naming_s=round(marks.get("named", t_locked) - t_locked, 4),
            place_s=round(marks.get("placed", t_locked) - marks.get("named", t_locked), 4),
            rows_s=round(t_released - marks.get("placed", t_locked), 4),
            head_s=round(t_end - t_released, 4),
        )

    def _write_naming(
        self, db: sqlite_utils.Database, staged: list[Staged], listed: set[Path]
    ) -> set[Path]:
        """Write down (``Owner.naming``, durably) the vault paths the staged copies would take
        now, unless ``listed`` holds them all already; returns what the list holds."""
        finals = {self._final(db, s) for s in staged if s.staged is not None}
        if not finals or finals <= listed:
            return listed
        every = listed | finals
        self.book.owner.naming(sorted(every))
        return every

    def discard(self, batch: list[Staged]) -> None:
        """Remove the staged copies of a batch that will not be stored."""
        for s in batch:
            if s.staged is not None:
                s.staged.unlink(missing_ok=True)

    def _final(self, db: sqlite_utils.Database, s: Staged) -> Path:
        """Where the vault keeps this content: the catalog's path for it (as ``db`` sees
        it), else its content-addressed name."""
        assert s.sha256 is not None
        row = db.execute(
            "select vault_path, state from recordings where sha256 = ?", [s.sha256]
        ).fetchone()
        if row is not None and row[0] and row[1] != "purged":
            return self.book.vault.home / row[0]
        return self.book.vault.original_path(s.sha256, ext_of(s.entry.rel))

    def _prove(self, s: Staged) -> None:
        """Re-read the staged copy from disk; where the vault holds a file under its hash
        already, re-hash that file from disk too (its cached pages dropped first)."""
        assert s.staged is not None and s.sha256 is not None
        entry = s.entry
        s.damaged = damage_check(s.staged, ext_of(entry.rel))  # headers only; advisory
        if not self.book.settings.ingest.verify_after_write:
            os.chmod(s.staged, 0o444)
            return
        if s.behind is not None:  # re-read from the device during the copy
            again, size = s.behind.result()
        else:
            again, size = hash_file(
                s.staged, chunk=self.book.chunk, from_disk=True, prefetched=True
            )
        if again != s.sha256 or size != s.size:
            s.staged.unlink(missing_ok=True)
            s.staged = None
            log.error("ingest.verify_mismatch", path=entry.rel, copied=s.sha256, reread=again)
            s.outcome, s.failure = "failed", "校验不一致 / vault copy did not match on re-read"
            return
        s.verified = True
        os.chmod(s.staged, 0o444)
        final = self._final(self.book.db, s)
        try:
            st = final.stat()
        except OSError:
            return
        s.existing = (_identity(st), self._rehash(final))

    def _rehash(self, path: Path) -> str | None:
        try:
            return hash_file(path, chunk=self.book.chunk, from_disk=True)[0]
        except OSError as exc:
            log.error("ingest.vault_copy_unreadable", path=str(path), error=str(exc))
            return None

    def _place(
        self, db: sqlite_utils.Database, s: Staged, linked: list[Path], here: dict[Path, bool]
    ) -> Result:
        """Under the writer lock: name the copy in the vault, or prove the vault's own file
        (held), or repair a rotten one. ``here`` holds the names this batch placed."""
        if s.staged is None:
            return s, s.outcome or "failed", s.failure, s.damaged
        assert s.sha256 is not None
        final = self._final(db, s)
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
        if not self.book.settings.ingest.verify_after_write:
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
        self._repair(db, s, final, found, st.st_size)
        here[final] = True
        return s, "held", None, s.damaged

    def _repair(
        self, db: sqlite_utils.Database, s: Staged, final: Path, found: str | None, found_size: int
    ) -> None:
        """The vault's file under this hash is rotten: keep it aside in ``quarantine/`` for
        whoever investigates, put the verified copy in its place with one atomic rename (the
        name never stops holding a whole file), and record it at once (R7)."""
        assert s.staged is not None and s.sha256 is not None
        quarantine = self.book.vault.home / "quarantine"
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
        rel = str(final.relative_to(self.book.vault.home))
        data = {
            "session_id": self.book.report.session_id,
            "path": rel,
            "found_sha256": found,
            "found_size": found_size,
            "source_path": s.entry.rel,
            "quarantined": str(kept.relative_to(self.book.vault.home)) if kept else None,
        }
        message = (
            "库内原始文件已损坏，已用本次校验通过的副本修复 / a rotten vault copy of "
            f"{s.sha256[:16]} was replaced with this session's verified copy ({rel})"
        )
        with write_txn(db):
            audit.append(db, "vault.repaired", actor=self.book.actor, subject=s.sha256, data=data)
            cur = db.execute(
                "insert into alerts (at, code, device_id, slot, session_id, message, data)"
                " values (?, 'vault_repaired', ?, ?, ?, ?, ?)",
                [
                    to_iso(utcnow()),
                    self.book.ctx.device_id,
                    self.book.ctx.slot,
                    self.book.report.session_id,
                    message,
                    json.dumps(data, ensure_ascii=False),
                ],
            )
            audit.append(
                db,
                "alert.raised",
                actor=self.book.actor,
                subject=s.sha256,
                data={
                    "alert_id": int(cur.lastrowid or 0),
                    "code": "vault_repaired",
                    "session_id": self.book.report.session_id,
                },
            )
        log.error("ingest.vault_repaired", **data, sha256=s.sha256)
