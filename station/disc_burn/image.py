"""Writing one ISO image with pycdlib: ISO 9660 level 3 + Joliet + Rock Ridge 1.09 + UDF, so
Windows, macOS and Linux read it and files over 4 GiB work (multi-extent / UDF). pycdlib is
asked for UDF "2.60"; the image declares UDF revision 1.02 (udfinfo ``udfrev=1.02``, 7-Zip
``Version = 1.02``), which is what the README states.

File times (every tree: ISO 9660, Rock Ridge, Joliet, UDF) are the recording's start time in
the station's zone (北京时间) for recordings and their archival copies, and the production time
for the disc's own files, so a court's file browser shows when each recording was made.

Streamed: pycdlib reads each source file from the vault while writing, with a 1 MiB block size;
nothing is loaded into memory. Both copies of a disc are written in the same pass
(``write_images``), and each image's SHA-256 is computed while it is written
(``HashFollower``), so no second pass over the sources or the images is needed. Written to a hidden
temporary name in the output folder, fsynced, then renamed: a half-written image never carries
the final name, and on any error (disk full, stop request) the temporary file is removed (R12: no
half image is ever called ready).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import os
import queue
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

import pycdlib

from station import __version__
from station.disc_burn.layout import Layout
from station.disc_burn.media import SECTOR, Media
from station.disc_burn.progress import DiscProgress, ProgressFn, check_stop
from station.errors import ImageTooLargeError, OutputFullError, StationError, is_disk_full
from station.log import get

log = get()

BLOCKSIZE = 1 << 20


@dataclass(frozen=True)
class ImageSpec:
    volume_id: str
    job_id: int
    disc_no: int
    discs_total: int
    copy: str
    file_times: Mapping[str, str] = field(default_factory=dict)  # disc path -> ISO 8601 time
    default_time: str | None = None  # for files not in file_times (the production time)
    tz: str = "Asia/Shanghai"  # the zone the times are written in (station.timezone)
    volume_set: str | None = None  # the volume set id (unit, station, job); default by job


def _set_dr_date(d: Any, t: dt.datetime) -> None:
    """An ISO 9660 / Rock Ridge short date (ECMA-119 9.1.5): local fields and the offset in
    15-minute units."""
    offset = t.utcoffset() or dt.timedelta(0)
    d.years_since_1900, d.month, d.day_of_month = t.year - 1900, t.month, t.day
    d.hour, d.minute, d.second = t.hour, t.minute, t.second
    d.gmtoffset = int(offset.total_seconds() // 900)


def _set_udf_time(ts: Any, t: dt.datetime) -> None:
    """A UDF timestamp (ECMA-167 1/7.3): local time, type 1, offset in minutes."""
    offset = t.utcoffset() or dt.timedelta(0)
    ts.year, ts.month, ts.day, ts.hour, ts.minute, ts.second = (
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )  # fmt: skip
    ts.centiseconds = ts.hundreds_microseconds = ts.microseconds = 0
    ts.timetype, ts.tz = 1, int(offset.total_seconds() // 60)


def _stamp(iso: pycdlib.PyCdlib, iso_path: str, joliet_path: str, udf_path: str,
           t: dt.datetime) -> None:  # fmt: skip
    """Give one file time ``t`` in every tree it is in."""
    records: list[Any] = []
    for first in (iso.get_record(iso_path=iso_path), iso.get_record(joliet_path=joliet_path)):
        more: Any = first
        while more is not None:  # a file over 4 GiB: one record per extent
            records.append(more)
            more = getattr(more, "data_continuation", None)
    for rec in records:
        _set_dr_date(rec.date, t)
        rr = getattr(rec, "rock_ridge", None)
        for entries in (rr.dr_entries, rr.ce_entries) if rr is not None else ():
            tf = getattr(entries, "tf_record", None) if entries is not None else None
            for name in ("creation_time", "access_time", "modification_time",
                         "attribute_change_time"):  # fmt: skip
                d = getattr(tf, name, None)
                if d is not None and hasattr(d, "years_since_1900"):
                    _set_dr_date(d, t)
    entry = iso.get_record(udf_path=udf_path)
    for name in ("access_time", "mod_time", "attr_time"):
        ts = getattr(entry, name, None)
        if ts is not None:
            _set_udf_time(ts, t)


def _file_time(spec: ImageSpec, path: str) -> dt.datetime | None:
    from zoneinfo import ZoneInfo

    from station.timeutil import parse_iso

    when = spec.file_times.get(path) or spec.default_time
    return parse_iso(when).astimezone(ZoneInfo(spec.tz)) if when else None


def _compose(
    home: Path, layout: Layout, support: dict[str, bytes], spec: ImageSpec, *, stub: bool = False
) -> pycdlib.PyCdlib:
    """The image laid out by pycdlib. ``stub``: the recordings' data is not read; each reads as
    ``_Hole`` blocks of its size (for ``_Recorder``, which learns every other byte of a copy)."""
    iso = pycdlib.PyCdlib()
    iso.new(
        interchange_level=3,
        joliet=3,
        rock_ridge="1.09",
        udf="2.60",
        vol_ident=spec.volume_id,
        sys_ident="LINUX",
        app_ident_str=f"STATION {__version__}",
        set_size=spec.discs_total,
        seqnum=spec.disc_no,
        vol_set_ident=spec.volume_set or f"STATION_JOB_{spec.job_id}",
    )
    for e in layout.entries:
        rr_name = e.path.rsplit("/", 1)[-1]
        if e.is_dir:
            iso.add_directory(
                iso_path="/" + e.iso_path,
                rr_name=rr_name,
                joliet_path="/" + e.joliet_path,
                udf_path="/" + e.path,
            )
            continue
        kw: dict[str, Any] = {
            "iso_path": "/" + e.iso_path + ";1",
            "rr_name": rr_name,
            "joliet_path": "/" + e.joliet_path,
            "udf_path": "/" + e.path,
            "file_mode": 0o100444,
        }
        if e.file is not None and stub:
            iso.add_fp(cast(BinaryIO, _Stub(e.file.size)), e.file.size, **kw)
        elif e.file is not None:
            source = _SourceFile(home / e.file.source, e.file.size)
            iso.add_fp(cast(BinaryIO, source), e.file.size, **kw)
        else:
            data = support[e.path]
            iso.add_fp(io.BytesIO(data), len(data), **kw)
        when = _file_time(spec, e.path)
        if when is not None:
            _stamp(iso, kw["iso_path"], kw["joliet_path"], kw["udf_path"], when)
    if getattr(iso, "_needs_reshuffle", False):
        iso._reshuffle_extents()  # extents are assigned lazily; they are needed just below
    # File data in ascending extents, so HashFollower can follow it: pycdlib writes its inodes
    # in the order they were added, and the layout adds the small support files (manifest,
    # read-me) after the recordings although they lie before them.
    with contextlib.suppress(AttributeError):
        iso.inodes.sort(key=_extent)
    return iso


class _SourceFile:
    """A recording in the vault as pycdlib reads it while writing: opened on the first read,
    closed once read to its end, and dropped from the page cache behind the reading, a window
    at a time (``POSIX_FADV_DONTNEED``) — a disc build reads gigabytes of old footage once, and
    keeping them cached would only push out what the station uses (and taking fresh pages for
    all of it costs system time). The same file object serves every copy of the image."""

    WINDOW = 32 << 20
    mode = "rb"

    def __init__(self, path: Path, size: int) -> None:
        self.path, self.size = path, size
        self.f: Any | None = None
        self.pos = 0
        self.dropped = 0  # [dropped, pos) is read but still cached

    def _open(self) -> Any:
        if self.f is None:
            self.f = open(self.path, "rb", buffering=0)  # noqa: SIM115
            self.f.seek(self.pos)
        return self.f

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else (self.pos + offset if whence == 1 else self.size)
        if self.f is not None:
            self.f.seek(self.pos)
        self.dropped = min(self.dropped, self.pos)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        f = self._open()
        data = f.read(self.size - self.pos if n < 0 else n)
        self.pos += len(data)
        if self.pos - self.dropped >= self.WINDOW or (self.pos >= self.size or not data):
            os.posix_fadvise(f.fileno(), self.dropped, self.pos - self.dropped,
                             os.POSIX_FADV_DONTNEED)  # fmt: skip
            self.dropped = self.pos
        if self.pos >= self.size or not data:
            self.close()
        return bytes(data)

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
            self.f = None


class _Hole(bytes):
    """A block of a recording in a stub composition: its bytes are not known, only its place."""


class _Stub:
    """A file object of ``size`` bytes that reads as ``_Hole`` blocks (nothing is read)."""

    mode = "rb"

    def __init__(self, size: int) -> None:
        self.size, self.pos = size, 0
        self._holes: dict[int, _Hole] = {}

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else (self.pos + offset if whence == 1 else self.size)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.pos if n < 0 else min(n, self.size - self.pos)
        self.pos += n
        hole = self._holes.get(n)
        if hole is None:
            hole = self._holes[n] = _Hole(n)
        return hole


class _Recorder:
    """A write target for a stub composition: keeps every write as (offset, length, bytes), with
    None for a recording's data (the same bytes on every copy); writes nothing."""

    def __init__(self) -> None:
        self.ops: list[tuple[int, int, bytes | None]] = []
        self.pos = self.end = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else (self.pos + offset if whence == 1 else self.end)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def write(self, data: bytes) -> int:
        n = len(data)
        self.ops.append((self.pos, n, None if isinstance(data, _Hole) else bytes(data)))
        self.pos += n
        self.end = max(self.end, self.pos)
        return n


class HashFollower:
    """The SHA-256 of a file written out of order, computed from its writes as they happen.

    pycdlib writes out of order: volume descriptors, directory records and the end of the image
    first, in small pieces, then each file's data in ascending extents. Small writes (metadata)
    are kept in memory; a large write is hashed in place once every byte before it is known —
    the kept small writes, and zeros for what was never written (a hole in a file reads as
    zeros). A write that lands on bytes already hashed makes the running hash unusable
    (``digest()`` is then None and the caller hashes the finished file instead).
    """

    SMALL = 1 << 16

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self._done = 0  # bytes [0, _done) are hashed
        self._small: dict[int, bytes] = {}
        self._bad = False

    def _fill(self, upto: int) -> None:
        """Hash [_done, upto) from the kept small writes and zeros."""
        small = self._small
        for off in sorted(o for o in small if o < upto):
            data = small.pop(off)
            if off < self._done or off + len(data) > upto:
                self._bad = True
                return
            self._zeros(off - self._done)
            self._h.update(data)
            self._done = off + len(data)
        self._zeros(upto - self._done)
        self._done = upto

    def _zeros(self, n: int) -> None:
        block = bytes(min(n, 1 << 20))
        while n > 0:
            self._h.update(block[: min(n, len(block))])
            n -= min(n, len(block))

    def feed(self, off: int, data: bytes) -> None:
        """``data`` was written at ``off``."""
        if self._bad:
            return
        if off < self._done:
            self._bad = True
        elif len(data) < self.SMALL:
            self._small[off] = bytes(data)
        else:
            self._fill(off)
            self._h.update(data)
            self._done = off + len(data)

    def digest(self, size: int) -> str | None:
        """The SHA-256 of the file (``size`` bytes, or up to its last write if that lies
        further), or None if the writes could not be followed."""
        if not self._bad:
            self._fill(max([size, *(o + len(d) for o, d in self._small.items())]))
        return None if self._bad else self._h.hexdigest()


class HashingWriter:
    """A file wrapper for ``PyCdlib.write_fp`` that computes the image's SHA-256 as it is
    written (``HashFollower``)."""

    SMALL = HashFollower.SMALL

    def __init__(self, f: Any) -> None:
        self.f = f
        self.follower = HashFollower()

    def seek(self, offset: int, whence: int = 0) -> int:
        return int(self.f.seek(offset, whence))

    def tell(self) -> int:
        return int(self.f.tell())

    def write(self, data: bytes) -> int:
        off = self.f.tell()
        n = self.f.write(data)
        self.follower.feed(off, data)
        return int(n)

    def digest(self, size: int) -> str | None:
        return self.follower.digest(size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.f, name)


def image_size(home: Path, layout: Layout, support: dict[str, bytes], spec: ImageSpec) -> int:
    """The exact size of the image, laid out but not written."""
    iso = _compose(home, layout, support, spec)
    try:
        return int(iso.pvd.space_size) * SECTOR
    finally:
        iso.close()


def drop_cache(path: Path) -> None:
    """Evict ``path`` from the page cache so the next read comes from the disk."""
    with contextlib.suppress(OSError), open(path, "rb") as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def write_image(
    home: Path,
    layout: Layout,
    support: dict[str, bytes],
    spec: ImageSpec,
    media: Media,
    out: Path,
    *,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
) -> tuple[int, str]:
    """Write the image to ``out`` (temp name, fsync, rename); return its size in bytes and its
    SHA-256, computed while writing."""
    done = write_images(home, layout, support, [spec], media, [out], progress=progress, stop=stop)
    return done[0]


def write_images(
    home: Path,
    layout: Layout,
    support: dict[str, bytes],
    specs: list[ImageSpec],
    media: Media,
    outs: list[Path],
    *,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
) -> list[tuple[int, str]]:
    """Write every copy of one disc (``specs[i]`` to ``outs[i]``: temp name, fsync, rename) in one
    pass over the recordings; return each image's size and SHA-256, computed while writing.

    The copies differ only in their volume descriptors and other file-system metadata (volume
    id, copy), never in a file's data or place. Each further copy is first laid out with its
    recordings stubbed (``_Recorder``: every write's place, and its bytes unless they are a
    recording's), then the first copy is written for real and every write goes to each copy:
    its own metadata, the first copy's recording data. If the copies' writes do not line up
    (``_Diverged``), each copy is written on its own."""
    if len(specs) > 1:
        try:
            return _write_together(home, layout, support, specs, media, outs, progress, stop)
        except _Diverged as exc:
            log.warning("disc.copies_written_apart", images=[str(o) for o in outs], why=str(exc))
    return [
        _write_together(home, layout, support, [spec], media, [out], progress, stop)[0]
        for spec, out in zip(specs, outs, strict=True)
    ]


class _Diverged(Exception):
    """The copies' writes do not line up (a different layout): write them one by one."""


def _sync_file_range() -> Any:
    """libc's ``sync_file_range`` (Linux), or None where there is none."""
    import ctypes

    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_SFR_WAIT_BEFORE, _SFR_WRITE, _SFR_WAIT_AFTER = 1, 2, 4


class WriteBehind:
    """Sends an image to the disk while it is written and drops what reached the disk from the
    page cache, window by window: the data pycdlib writes in ascending order is started to the
    disk every ``WINDOW`` bytes (``sync_file_range``), and the window before, once on the disk,
    is evicted (``POSIX_FADV_DONTNEED``).

    So the build never holds gigabytes of dirty or cached image pages, the final fsync has
    little left to write, and the read-back (R12) reads from the disk into pages recycled during
    the write — evicting two whole images at the end instead made every page the readers then
    took cost a fault in the kernel (measured: about 1 s of system time per GiB read)."""

    WINDOW = 32 << 20
    _call = _sync_file_range()

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.started = 0  # [0, started) has been sent to the disk
        self.dropped = 0  # [0, dropped) is on the disk and out of the page cache
        self.off = self._call is None

    def _sync(self, start: int, length: int, flags: int) -> None:
        if self._call(self.fd, start, length, flags) != 0:
            import ctypes

            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    def wrote(self, off: int, n: int) -> None:
        """``n`` bytes were written at ``off``; a small or out-of-order write is left to the
        final fsync."""
        end = off + n
        if self.off or n < HashFollower.SMALL or end - self.started < self.WINDOW:
            return
        self._sync(self.started, end - self.started, _SFR_WRITE)
        if self.started > self.dropped:
            span = self.started - self.dropped
            self._sync(self.dropped, span, _SFR_WAIT_BEFORE | _SFR_WRITE | _SFR_WAIT_AFTER)
            os.posix_fadvise(self.fd, self.dropped, span, os.POSIX_FADV_DONTNEED)
            self.dropped = self.started
        self.started = end


class _Copy(threading.Thread):
    """Writes one copy (unless it is the first, which the writing thread writes) and hashes it,
    from a bounded queue of (offset, bytes): each copy's hashing on its own thread, so the cores
    share it. Every copy goes to the disk while it is written (``WriteBehind``)."""

    def __init__(self, f: Any | None, fd: int | None = None) -> None:
        super().__init__(name="disc-copy", daemon=True)
        self.f = f
        self.follower = HashFollower()
        fd = f.fileno() if f is not None else fd
        self.behind = WriteBehind(fd) if fd is not None else None
        self.queue: queue.Queue[tuple[int, bytes] | None] = queue.Queue(maxsize=8)
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is not None:
                continue
            off, data = item
            try:
                if self.f is not None:
                    view, done = memoryview(data), 0
                    while done < len(view):
                        done += os.pwrite(self.f.fileno(), view[done:], off + done)
                self.follower.feed(off, data)
                if self.behind is not None:
                    self.behind.wrote(off, len(data))
            except BaseException as exc:  # re-raised in the writing thread
                self.error = exc

    def stop(self) -> None:
        if self.is_alive():
            self.queue.put(None)
            self.join()


class _TeeWriter:
    """A write target for ``PyCdlib.write_fp``: writes the first copy (``f``) and hands every
    write to each copy's ``_Copy`` thread — the first copy's to hash, every further copy's from
    its recorded writes (``ops``): its own metadata, the first copy's recording data."""

    def __init__(self, f: Any, others: list[Any], ops: list[list[tuple[int, int, bytes | None]]]):
        self.f = f
        self.ops = ops
        self.i = 0
        self.copies = [_Copy(None, f.fileno()), *(_Copy(o) for o in others)]

    def seek(self, offset: int, whence: int = 0) -> int:
        return int(self.f.seek(offset, whence))

    def tell(self) -> int:
        return int(self.f.tell())

    def write(self, data: bytes) -> int:
        for c in self.copies:
            if c.error is not None:
                raise c.error
        off = self.f.tell()
        data = data if isinstance(data, bytes) else bytes(data)
        blocks = [data]
        for ops in self.ops:
            if self.i >= len(ops) or ops[self.i][:2] != (off, len(data)):
                raise _Diverged(f"write {self.i} at {off} (+{len(data)})")
            blocks.append(ops[self.i][2] or data)
        self.i += 1
        n = self.f.write(data)
        for c, block in zip(self.copies, blocks, strict=True):
            c.queue.put((off, block))
        return int(n)

    def close(self) -> None:
        """Wait for the copy threads; raise what they met."""
        for c in self.copies:
            c.stop()
        for c in self.copies:
            if c.error is not None:
                raise c.error

    def finish(self) -> None:
        self.close()
        for ops in self.ops:
            if self.i != len(ops):
                raise _Diverged(f"{self.i} writes, the stub copy had {len(ops)}")


def _write_together(
    home: Path,
    layout: Layout,
    support: dict[str, bytes],
    specs: list[ImageSpec],
    media: Media,
    outs: list[Path],
    progress: ProgressFn | None,
    stop: threading.Event | None,
) -> list[tuple[int, str]]:
    ops: list[list[tuple[int, int, bytes | None]]] = []
    for spec in specs[1:]:
        stub = _compose(home, layout, support, spec, stub=True)
        try:
            rec = _Recorder()
            stub.write_fp(cast(BinaryIO, rec), blocksize=BLOCKSIZE)
            ops.append(rec.ops)
        finally:
            stub.close()
    first = specs[0]
    iso = _compose(home, layout, support, first)
    try:
        size = int(iso.pvd.space_size) * SECTOR
        for out in outs:
            if size > media.capacity:
                raise ImageTooLargeError(
                    f"image {out.name} needs {size} bytes, a {media.label} holds {media.capacity}",
                    where=str(out),
                    hint="plan again with bigger media",
                )
        outs[0].parent.mkdir(parents=True, exist_ok=True)
        tmps = [out.with_name(f".{out.name}.partial") for out in outs]

        def on_progress(done: int, total: int, _opaque: Any = None) -> None:
            check_stop(stop)
            if progress is not None:
                p = DiscProgress("build", first.job_id, first.disc_no, first.copy, done, total)
                progress(p)

        try:
            with contextlib.ExitStack() as stack:
                files = [stack.enter_context(open(tmp, "wb")) for tmp in tmps]
                tee = _TeeWriter(files[0], files[1:], ops)
                try:
                    iso.write_fp(cast(BinaryIO, tee), blocksize=BLOCKSIZE, progress_cb=on_progress)
                finally:
                    tee.close()
                tee.finish()
                written = []
                for f in files:
                    f.flush()
                    os.fsync(f.fileno())
                    written.append(os.fstat(f.fileno()).st_size)
            results = []
            for c, tmp, out, n in zip(tee.copies, tmps, outs, written, strict=True):
                digest = c.follower.digest(max(size, n))
                if digest is None:  # pycdlib wrote out of the order followed: hash the file
                    log.warning("disc.image_hash_second_pass", image=str(out))
                    digest = _hash_path(tmp)
                results.append((size, digest))
            for tmp, out in zip(tmps, outs, strict=True):
                os.replace(tmp, out)
            dfd = os.open(outs[0].parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except BaseException as exc:
            for tmp in tmps:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            out = outs[0]
            if isinstance(exc, OSError) and is_disk_full(exc):
                log.error("disc.output_full", image=str(out), size=size)
                raise OutputFullError(
                    f"the output disk filled up while writing {out.name} ({size} bytes needed)",
                    where=str(out.parent),
                    hint="free space or choose another --out folder, then build again",
                ) from exc
            if isinstance(exc, OSError):
                log.error("disc.image_write_failed", image=str(out), error=str(exc))
                raise StationError(
                    f"cannot write image {out.name}: {exc.strerror or exc}"
                    + (f" ({exc.filename})" if exc.filename else ""),
                    where=str(out.parent),
                    hint="if the file named is in the vault, run `station verify`",
                ) from exc
            raise
    finally:
        iso.close()
    for out in outs:
        drop_cache(out)
    return results


def _extent(ino: Any) -> int:
    """An inode's first sector; 0 for one without data (pycdlib writes nothing for it)."""
    try:
        return int(ino.extent_location())
    except pycdlib.pycdlibexception.PyCdlibInternalError:
        return 0


def _hash_path(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while block := f.read(BLOCKSIZE):
            h.update(block)
    return h.hexdigest()
