"""Stage 1, bound to the recorder: copy each source file into the run's own staging folder
(``staging/<owner>/``) with one read of the source, hashing on the way, and hand the staged
copies on in batches.

Per file: the vault's free space is checked against its size first (a sparse or huge file is
refused before a byte is written); symlinks and special files are listed and skipped, never
read. The next small files are opened ahead through the run's opener and asked into the page
cache while this one is copied (each file is opened once). A read error fails that file; a
device that went away, a stop request or a vault that cannot be written ends the stage
(``failures.Abort``) after handing on what was copied.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Generator
from pathlib import Path

from station.hashing.copy import (
    PIPELINE_MIN,
    ProveBehind,
    Reader,
    copy_and_hash,
    copy_and_hash_pipelined,
)
from station.ingest.bookkeeping import RunBook, Staged
from station.ingest.failures import GONE, Abort, vault_error, volume_alive, volume_gone
from station.ingest.sources import SourceEntry
from station.log import get

log = get()

BATCH_FILES = 1024
BATCH_BYTES = 8 << 20  # large files commit one by one, so verify overlaps the next copy
PREFETCH_FILES = 16
PREFETCH_MAX_FILE = 4 << 20
PREFETCH_BYTES = 32 << 20
MARGIN_MIN = 64 << 10
MARGIN_MAX = 256 << 20

Opener = Callable[[Path], Reader]


def free_space_margin(total: int) -> int:
    """Room kept free beside each file: 1 % of the vault's file system, 64 KiB to 256 MiB (for
    the catalog, its journal and other runs' copies)."""
    return max(MARGIN_MIN, min(MARGIN_MAX, total // 100))


class CopyStage:
    def __init__(self, book: RunBook, opener: Opener) -> None:
        self.book = book
        self.opener = opener
        self._ahead: dict[Path, Reader] = {}

    def batches(self, entries: list[SourceEntry]) -> Generator[list[Staged], None, None]:
        """The staged copies, a batch at a time. On an abort the batch in hand is still
        handed on, then the abort's error (if any) is raised."""
        try:
            yield from self._batches(entries)
        finally:
            for reader in self._ahead.values():
                reader.close()
            self._ahead.clear()

    def _batches(self, entries: list[SourceEntry]) -> Generator[list[Staged], None, None]:
        book = self.book
        batch: list[Staged] = []
        batch_bytes = 0
        ahead = 0  # index up to which small source files were opened in advance
        try:
            for i, entry in enumerate(entries):
                ahead = self._read_ahead(entries, i, ahead)
                if book.stop.is_set():
                    raise Abort("stopped")
                if entry.kind != "file":
                    what = (
                        "symlink, not followed"
                        if entry.kind == "symlink"
                        else "not a regular file (device node, fifo or socket), not read"
                    )
                    log.warning("ingest.file_skipped", path=entry.rel, reason=what)
                    batch.append(Staged(entry, None, None, 0, failure=what, outcome="skipped"))
                    continue
                staged = self._copy_one(entry)
                batch.append(staged)
                batch_bytes += staged.size
                if len(batch) >= BATCH_FILES or batch_bytes >= BATCH_BYTES:
                    yield batch
                    batch, batch_bytes = [], 0
        except Abort as abort:
            book.report.aborted = abort.reason
            if batch:
                yield batch
            if abort.error is not None:
                raise abort.error from None
            return
        if batch:
            yield batch

    def _read_ahead(self, entries: list[SourceEntry], i: int, ahead: int) -> int:
        """Open the next small files now, through the run's opener (the production one or a
        test's failing one: the same path either way), and ask the kernel to read them while
        this one is copied. The copy uses the reader opened here."""
        ahead = max(ahead, i + 1)
        budget = 0
        while ahead < len(entries) and ahead - i <= PREFETCH_FILES:
            e = entries[ahead]
            if e.kind == "file" and e.size <= PREFETCH_MAX_FILE:
                budget += e.size
                if budget > PREFETCH_BYTES:
                    break
                try:
                    reader = self.opener(e.path)
                except OSError:
                    pass  # the copy's own open reports it
                else:
                    self._ahead[e.path] = reader
                    reader.will_need()
            ahead += 1
        return ahead

    def _no_room(self, entry: SourceEntry) -> str | None:
        """Why ``entry`` cannot fit in the vault now (its size plus a margin), or None."""
        try:
            st = os.statvfs(self.book.owner.dir)
        except OSError:
            return None  # the copy itself reports what is wrong with the vault
        free = st.f_bavail * st.f_frsize
        need = entry.size + free_space_margin(st.f_blocks * st.f_frsize)
        if free >= need:
            return None
        self.book.no_room += 1
        log.error("ingest.no_space", path=entry.rel, size=entry.size, free=free, need=need)
        return (
            "存储空间不足，文件未复制 / not enough free space in the vault: the file needs "
            f"{entry.size} bytes, {free} are free"
        )

    def _copy_one(self, entry: SourceEntry) -> Staged:
        book = self.book
        book.current = entry.rel
        room = self._no_room(entry)
        if room is not None:
            ahead = self._ahead.pop(entry.path, None)
            if ahead is not None:
                ahead.close()
            return Staged(entry, None, None, 0, failure=room, outcome="failed")
        staged = book.owner.part()
        try:
            reader = self._ahead.pop(entry.path, None) or self.opener(entry.path)
        except OSError as exc:
            return self._read_failure(entry, exc)
        done_before = book.bytes_done
        try:
            try:
                out = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise vault_error(book.vault.home, exc, staged) from exc
            behind: ProveBehind | None = None
            try:
                try:
                    copy: Callable[..., tuple[str, int]] = copy_and_hash
                    if entry.size >= PIPELINE_MIN:
                        # a large copy is re-read from the device behind the copy (R7), so its
                        # proof ends a moment after its last byte is written
                        if book.settings.ingest.verify_after_write and ProveBehind.available():
                            try:
                                behind = ProveBehind(staged, book.chunk)
                            except OSError:
                                behind = None  # proved after the copy, as a whole
                        copy = functools.partial(copy_and_hash_pipelined, behind=behind)
                    sha, size = copy(
                        reader,
                        out,
                        chunk=book.chunk,
                        on_bytes=book.on_bytes,
                        should_stop=book.stop.is_set,
                    )
                except InterruptedError:
                    staged.unlink(missing_ok=True)
                    raise Abort("stopped") from None
                except OSError as exc:
                    staged.unlink(missing_ok=True)
                    if exc.filename == "<vault>":
                        raise vault_error(book.vault.home, exc, staged) from exc
                    book.bytes_done = done_before
                    return self._read_failure(entry, exc)
            finally:
                os.close(out)
        finally:
            reader.close()
        if size != entry.size:
            log.warning("ingest.size_changed", path=entry.rel, listed=entry.size, read=size)
        book.file_copied()
        log.info("ingest.file_copied", session_id=book.report.session_id, path=entry.rel, size=size)
        return Staged(entry, staged, sha, size, behind=behind)

    def _read_failure(self, entry: SourceEntry, exc: OSError) -> Staged:
        if exc.errno in GONE or not volume_alive(self.book.volume):
            raise volume_gone(self.book.volume)
        msg = f"read error: {exc.strerror or exc}"
        log.error("ingest.read_failed", path=entry.rel, error=msg, errno=exc.errno)
        return Staged(entry, None, None, 0, failure=msg, outcome="failed")
