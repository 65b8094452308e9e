"""Writing one ISO image with pycdlib: ISO 9660 level 3 + Joliet + Rock Ridge 1.09 + UDF 2.60,
so Windows, macOS and Linux read it and files over 4 GiB work (multi-extent / UDF).

Streamed: pycdlib reads each source file from the vault while writing, with a 1 MiB block size;
nothing is loaded into memory. Written to a hidden temporary name in the output folder, fsynced,
then renamed: a half-written image never carries the final name, and on any error (disk full,
stop request) the temporary file is removed (R12: no half image is ever called ready).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pycdlib

from station import __version__
from station.disc_burn.layout import Layout
from station.disc_burn.media import SECTOR, Media
from station.disc_burn.progress import DiscProgress, ProgressFn, check_stop
from station.errors import StationError
from station.log import get

log = get()

BLOCKSIZE = 1 << 20


class ImageTooLargeError(StationError):
    """The laid-out image is larger than the disc / 光盘映像超过光盘容量."""

    exit_code = 24


class OutputFullError(StationError):
    """The output disk is full; the unfinished image was removed / 输出磁盘已满，映像已删除."""

    exit_code = 25


@dataclass(frozen=True)
class ImageSpec:
    volume_id: str
    job_id: int
    disc_no: int
    discs_total: int
    copy: str


def _compose(
    home: Path, layout: Layout, support: dict[str, bytes], spec: ImageSpec
) -> pycdlib.PyCdlib:
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
        vol_set_ident=f"STATION_JOB_{spec.job_id}",
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
        if e.file is not None:
            iso.add_file(str(home / e.file.source), **kw)
        else:
            data = support[e.path]
            iso.add_fp(io.BytesIO(data), len(data), **kw)
    return iso


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
) -> int:
    """Write the image to ``out`` (temp name, fsync, rename); return its size in bytes."""
    iso = _compose(home, layout, support, spec)
    try:
        size = int(iso.pvd.space_size) * SECTOR
        if size > media.capacity:
            raise ImageTooLargeError(
                f"image {out.name} needs {size} bytes, a {media.label} holds {media.capacity}",
                where=str(out),
                hint="plan again with bigger media",
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.partial")

        def on_progress(done: int, total: int, _opaque: Any = None) -> None:
            check_stop(stop)
            if progress is not None:
                progress(DiscProgress("build", spec.job_id, spec.disc_no, spec.copy, done, total))

        try:
            with open(tmp, "wb") as f:
                iso.write_fp(f, blocksize=BLOCKSIZE, progress_cb=on_progress)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, out)
            dfd = os.open(out.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                log.error("disc.output_full", image=str(out), size=size)
                raise OutputFullError(
                    f"the output disk filled up while writing {out.name} ({size} bytes needed)",
                    where=str(out.parent),
                    hint="free space or choose another --out folder, then build again",
                ) from exc
            if isinstance(exc, OSError):
                raise StationError(
                    f"cannot write image {out.name}: {exc.strerror or exc}",
                    where=str(out.parent),
                ) from exc
            raise
    finally:
        iso.close()
    drop_cache(out)
    return size
