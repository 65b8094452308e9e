"""Copy a stream while hashing it, with exactly one read of the source.

The verify step re-reads the copy *from disk*: the copy is flushed (fsync), its pages are
dropped from the page cache with ``posix_fadvise(DONTNEED)``, then it is hashed again. A copy that
only ever existed in the page cache is never called verified (STYLE.md: "verifying from the page
cache" is a first-daemon mistake).

While a copy is written, its data is handed to the device behind the copy every
``WRITEBACK_STEP`` bytes (``sync_file_range(SYNC_FILE_RANGE_WRITE)``: writeback started, not
waited for), so the flush before the re-read finds little left to write, and one copy's flush
never waits on a burst of everyone's dirty pages (eight docks write at once).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol


class Reader(Protocol):
    def readinto(self, buffer: memoryview) -> int | None: ...

    def will_need(self) -> None:
        """Ask for the whole file to be read into the page cache now (read-ahead)."""
        ...

    def close(self) -> None: ...


class FdReader:
    """A plain file descriptor reader (no Python buffering: one read syscall per chunk)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def readinto(self, buffer: memoryview) -> int:
        return os.readv(self.fd, [buffer])

    def will_need(self) -> None:
        try:
            os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass  # advice only

    def close(self) -> None:
        os.close(self.fd)


def open_source(path: Path) -> FdReader:
    """Open a file on a recorder volume for reading, never through a symlink."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_NOATIME", 0))
    except PermissionError:
        fd = os.open(path, flags)  # O_NOATIME needs ownership; fall back
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    except OSError:
        pass
    return FdReader(fd)


def _write_all(dst_fd: int, part: memoryview) -> None:
    """Write all of ``part``; an OSError here is the vault's (marked ``<vault>``), not the
    recorder's, so the caller can tell a full disk from a bad source."""
    written = 0
    while written < len(part):
        try:
            written += os.write(dst_fd, part[written:])
        except OSError as exc:
            exc.filename = exc.filename or "<vault>"
            raise


WRITEBACK_STEP = 4 << 20
_SYNC_FILE_RANGE_WAIT_BEFORE = 1
_SYNC_FILE_RANGE_WRITE = 2
_SYNC_FILE_RANGE_WAIT_AFTER = 4
_sfr: Callable[..., int] | None = None
_sfr_ok = True


def _sync_file_range() -> Callable[..., int] | None:
    """libc's ``sync_file_range``, or None where there is none (or the file system said no)."""
    global _sfr, _sfr_ok
    if not _sfr_ok:
        return None
    if _sfr is None:
        fn = getattr(_c(), "sync_file_range", None)
        if fn is None:
            _sfr_ok = False
            return None
        fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
        fn.restype = ctypes.c_int
        _sfr = fn
    return _sfr


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing ``length`` bytes of ``fd`` from ``offset`` to the device, without waiting
    (advice for speed only: the flush before the commit is what makes the copy durable; any
    error of the device surfaces there)."""
    global _sfr_ok
    sfr = _sync_file_range()
    if sfr is None or length <= 0:
        return
    failed = sfr(fd, offset, length, _SYNC_FILE_RANGE_WRITE) != 0
    if failed and ctypes.get_errno() in (errno.ENOSYS, errno.EOPNOTSUPP):
        _sfr_ok = False


def _write_out_and_wait(fd: int, offset: int, length: int) -> None:
    """Write ``length`` bytes of ``fd`` from ``offset`` (0: to the end) to the device and wait
    until the device has them; raises the device's error (EIO, ENOSPC)."""
    sfr = _sync_file_range()
    if sfr is None:
        os.fdatasync(fd)
        return
    flags = _SYNC_FILE_RANGE_WAIT_BEFORE | _SYNC_FILE_RANGE_WRITE | _SYNC_FILE_RANGE_WAIT_AFTER
    if sfr(fd, offset, length, flags) != 0:
        err = ctypes.get_errno()
        if err in (errno.ENOSYS, errno.EOPNOTSUPP):
            os.fdatasync(fd)
            return
        raise OSError(err, os.strerror(err), "<vault>")


class ProveBehind:
    """Re-read a copy from the device while it is still being written, range by range, and
    hash what came back (R7: a copy is verified from disk, never from the page cache).

    The writer hands on each range once it has started its writeback (``upto``); this object's
    thread waits until the device holds the range (``sync_file_range`` with both waits), drops
    the range's pages from the cache (``POSIX_FADV_DONTNEED``: they are clean now, so they go),
    reads it back with ``pread`` and hashes it, then drops the pages it read. ``end`` hands on
    the rest: the last range is read until end of file, so a file longer than what was copied
    does not match. ``result`` waits for the last range: (sha256 hex, size) of what the device
    returned. The file's metadata is not durable yet: the store stage's ``fsync`` before the
    commit makes it so. The thread ends by itself after ``end`` or ``cancel`` (never left
    waiting), and closes its own descriptor."""

    def __init__(self, path: Path, chunk: int = 1 << 20) -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        self._chunk = chunk
        self._ranges: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._hash = hashlib.sha256()
        self._done = 0
        self._error: BaseException | None = None
        self._ended = False
        self._thread = threading.Thread(target=self._run, name="copy-prove", daemon=True)
        self._thread.start()

    @staticmethod
    def available() -> bool:
        """Whether ranges can be waited for one by one here (else the copy is proved after its
        flush, as a whole)."""
        return _sync_file_range() is not None

    @property
    def proved(self) -> int:
        """Bytes read back from the device and hashed so far."""
        return self._done

    def upto(self, end: int) -> None:
        """Bytes up to ``end`` were written and their writeback started."""
        self._ranges.put(end)

    def end(self) -> None:
        """Everything was written: prove the rest, to end of file."""
        self._ranges.put(-1)

    def cancel(self) -> None:
        self._ranges.put(None)

    def result(self) -> tuple[str, int]:
        """(sha256 hex, size) of the copy as read back from the device; raises the device's
        error, or RuntimeError when the proof was cancelled."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        if not self._ended:
            raise RuntimeError("proof cancelled")
        return self._hash.hexdigest(), self._done

    def _run(self) -> None:
        buf = bytearray(self._chunk)
        view = memoryview(buf)
        try:
            while True:
                end = self._ranges.get()
                if end is None:
                    return
                final = end < 0
                if not final and end <= self._done:
                    continue
                length = 0 if final else end - self._done
                _write_out_and_wait(self._fd, self._done, length)
                os.posix_fadvise(self._fd, self._done, length, os.POSIX_FADV_DONTNEED)
                start = self._done
                while final or self._done < end:
                    want = self._chunk if final else min(self._chunk, end - self._done)
                    n = os.preadv(self._fd, [view[:want]], self._done)
                    if n == 0:
                        break
                    self._hash.update(view[:n])
                    self._done += n
                os.posix_fadvise(self._fd, start, self._done - start, os.POSIX_FADV_DONTNEED)
                if final:
                    self._ended = True
                    return
        except BaseException as exc:
            self._error = exc
        finally:
            os.close(self._fd)


class _Writeback:
    """Tracks what was written and starts writeback every ``WRITEBACK_STEP`` bytes; with
    ``behind``, each range is handed on for its re-read one step later (its writeback has
    had that long)."""

    def __init__(self, fd: int, behind: ProveBehind | None = None) -> None:
        self.fd = fd
        self.behind = behind
        self.written = 0
        self.started = 0

    def wrote(self, n: int) -> None:
        self.written += n
        if self.written - self.started >= WRITEBACK_STEP:
            if self.behind is not None:
                self.behind.upto(self.started)
            start_writeback(self.fd, self.started, self.written - self.started)
            self.started = self.written

    def finish(self) -> None:
        start_writeback(self.fd, self.started, self.written - self.started)
        self.started = self.written
        if self.behind is not None:
            self.behind.end()


def copy_and_hash(
    reader: Reader,
    dst_fd: int,
    *,
    chunk: int = 1 << 20,
    on_bytes: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[str, int]:
    """Copy ``reader`` to ``dst_fd`` hashing on the way; return (sha256 hex, size).

    Raises OSError from either side unchanged (the caller knows which path it was) and
    InterruptedError when ``should_stop`` says so.
    """
    h = hashlib.sha256()
    buf = bytearray(chunk)
    view = memoryview(buf)
    total = 0
    wb = _Writeback(dst_fd)
    while True:
        if should_stop is not None and should_stop():
            raise InterruptedError("stopped")
        n = reader.readinto(view)
        if not n:
            break
        part = view[:n]
        h.update(part)
        _write_all(dst_fd, part)
        wb.wrote(n)
        total += n
        if on_bytes is not None:
            on_bytes(n)
    wb.finish()
    return h.hexdigest(), total


PIPELINE_MIN = 8 << 20  # files at least this large are read and hashed in parallel


def copy_and_hash_pipelined(
    reader: Reader,
    dst_fd: int,
    *,
    chunk: int = 1 << 20,
    buffers: int = 4,
    on_bytes: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    behind: ProveBehind | None = None,
) -> tuple[str, int]:
    """Like ``copy_and_hash``, with the source read in its own thread while the previous chunk
    is hashed and written (both release the GIL). Still exactly one read of the source.

    With ``behind`` the copy is re-read from the device as it goes (``ProveBehind``): it is
    handed every range, and the rest once the copy is complete; on any failure it is
    cancelled."""
    free: queue.Queue[bytearray] = queue.Queue()
    full: queue.Queue[tuple[bytearray, int] | BaseException] = queue.Queue()
    for _ in range(buffers):
        free.put(bytearray(chunk))
    cancel = threading.Event()

    def produce() -> None:
        try:
            while not cancel.is_set():
                if should_stop is not None and should_stop():
                    full.put(InterruptedError("stopped"))
                    return
                buf = free.get()
                if cancel.is_set():
                    return
                n = reader.readinto(memoryview(buf)) or 0
                full.put((buf, n))
                if n == 0:
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            full.put(exc)

    t = threading.Thread(target=produce, name="copy-read", daemon=True)
    t.start()
    h = hashlib.sha256()
    total = 0
    wb = _Writeback(dst_fd, behind)
    complete = False
    try:
        while True:
            item = full.get()
            if isinstance(item, BaseException):
                raise item
            buf, n = item
            if n == 0:
                complete = True
                wb.finish()
                break
            part = memoryview(buf)[:n]
            h.update(part)
            _write_all(dst_fd, part)
            wb.wrote(n)
            total += n
            free.put(buf)
            if on_bytes is not None:
                on_bytes(n)
    finally:
        if behind is not None and not complete:
            behind.cancel()
        cancel.set()
        free.put(bytearray(0))  # wake the reader if it waits for a buffer
        t.join()
    return h.hexdigest(), total


def evict(fd: int) -> None:
    """Drop the file's clean pages from the page cache (after it was flushed)."""
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass


def prefetch(path: Path, *, from_disk: bool = False) -> None:
    """Start reading ``path`` into the page cache in the background (``WILLNEED``).

    With ``from_disk`` its cached pages are dropped first, so what is read next comes from the
    device. Lets the reads of many small files overlap instead of waiting on each in turn.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return
    try:
        if from_disk:
            evict(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


def hash_file(
    path: Path, *, chunk: int = 1 << 20, from_disk: bool = True, prefetched: bool = False
) -> tuple[str, int]:
    """SHA-256 of a file; with ``from_disk`` its cached pages are dropped first (unless they were
    just dropped and re-read from the device by ``prefetch(from_disk=True)``) and after."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    try:
        if from_disk and not prefetched:
            evict(fd)
        h = hashlib.sha256()
        buf = bytearray(chunk)
        view = memoryview(buf)
        total = 0
        while True:
            n = os.readv(fd, [view])
            if not n:
                break
            h.update(view[:n])
            total += n
        if from_disk:
            evict(fd)
        return h.hexdigest(), total
    finally:
        os.close(fd)


_libc: ctypes.CDLL | None = None


def _c() -> ctypes.CDLL:
    """libc, loaded once (syncfs and renameat2 have no os-module wrapper)."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


def syncfs(path: Path) -> None:
    """Flush the whole file system holding ``path`` (one call for a batch of files)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        fn = getattr(_c(), "syncfs", None)
        if fn is None:
            os.fsync(fd)
            os.sync()
            return
        if fn(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)


def _fsync_opened(path: Path, flags: int) -> None:
    fd = os.open(path, os.O_RDONLY | flags | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush one file's data and inode to the device (it may be open read-only for this)."""
    _fsync_opened(path, os.O_NOFOLLOW)


def fsync_dir(path: Path) -> None:
    _fsync_opened(path, os.O_DIRECTORY)


def link_no_replace(src: Path, dst: Path) -> bool:
    """Give ``src`` the name ``dst`` unless ``dst`` exists; never overwrite (R7).

    Returns True if linked, False if ``dst`` already existed. ``src`` is left in place.
    """
    try:
        os.link(src, dst)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            return False
        raise
    return True


_RENAME_NOREPLACE = 1
_renameat2_ok = True


def move_no_replace(src: Path, dst: Path) -> bool:
    """Rename ``src`` to ``dst`` unless ``dst`` exists; never overwrite (R7). One atomic
    ``renameat2(RENAME_NOREPLACE)`` where the file system has it, else link + unlink.

    Returns True if moved (``src`` is gone), False if ``dst`` already existed (``src`` stays).
    """
    global _renameat2_ok
    if _renameat2_ok:
        fn = getattr(_c(), "renameat2", None)
        if fn is not None:
            at_fdcwd = -100
            rc = fn(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), _RENAME_NOREPLACE)
            if rc == 0:
                return True
            err = ctypes.get_errno()
            if err == errno.EEXIST:
                return False
            if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise OSError(err, os.strerror(err), str(dst))
        _renameat2_ok = False  # this file system (or libc) has no RENAME_NOREPLACE
    if not link_no_replace(src, dst):
        return False
    os.unlink(src)
    return True
