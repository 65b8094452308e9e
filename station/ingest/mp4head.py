"""A recording's duration and creation time from its MP4/QuickTime movie header (``mvhd``),
read at ingest without starting a process (R1: the first compliance figure is exact).

Reads the top-level box headers and the one ``moov`` box (its sample tables: a small part of
the file), at the start or at the end (recorders write it last). The values are the ones
ffprobe reports as the format's ``duration`` and ``creation_time`` (the transcode probe reads
them again later; both go through ``station.ingest.timing.probe_updates``). Anything unexpected
— another container, a damaged or truncated file, a ``moov`` ffprobe would refuse
(``mp4boxes.check_moov``) — gives ``None``, and a zero time scale or an unknown duration no
duration: the end then stays the start until the probe runs, as for any other format.

``mvhd_values`` turns the header's fields into those values with libavformat's rules; the
transcode job's box reader (``station.transcode.mp4probe``) uses it too, so the end written at
ingest and the one the probe writes later are the same number.
"""

from __future__ import annotations

import datetime as dt
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from station.ingest.mp4boxes import MISPLACED_AT_TOP, boxes, check_moov

# Containers with ISO base media boxes (ISO/IEC 14496-12) a recorder writes.
EXTENSIONS = frozenset({"mp4", "mov", "m4v", "3gp"})
_MAX_BOXES = 4096  # a sane file has a handful of top-level boxes; never walk a corrupt one long
_MOOV_MAX = 256 << 20  # a larger moov is left to ffprobe
EPOCH_1904_S = 2082844800  # seconds from 1904-01-01 to 1970-01-01
_UNIX_DAY_ONE = (dt.datetime(1970, 1, 1, tzinfo=dt.UTC), dt.datetime(1970, 1, 2, tzinfo=dt.UTC))


@dataclass(frozen=True)
class MovieHeader:
    duration_s: float | None
    creation_time: dt.datetime | None  # UTC; None when the recorder wrote 0 or 1970-01-01


def _boxes(f: BinaryIO, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of the boxes laid end to end in [start, end)."""
    pos = start
    for _ in range(_MAX_BOXES):
        if pos + 8 > end:
            return
        f.seek(pos)
        size, kind = struct.unpack(">I4s", f.read(8))
        head = 8
        if size == 1:  # a 64-bit size follows the type
            (size,) = struct.unpack(">Q", f.read(8))
            head = 16
        elif size == 0:  # the box runs to the end of its parent
            size = end - pos
        if size < head or pos + size > end:
            return
        yield kind, pos + head, pos + size
        pos += size


def mvhd_values(
    version: int, created: int, scale: int, duration: int
) -> tuple[float | None, dt.datetime | None]:
    """ffprobe's ``format.duration`` and ``creation_time`` from an ``mvhd``'s fields, with
    libavformat's rules: the duration rounded to the microsecond (``av_rescale`` into
    ``AV_TIME_BASE``, halves away from zero), none for a zero (or, as a signed number,
    negative) time scale or a zero / all-ones duration; a version-0 creation time below
    1970 in 1904 seconds read as Unix time (recorders that write it so), a version-1 one past
    2^63 as none, and none for 0 or a time on 1970-01-01 (ffprobe's tag then says
    "1970-01-01…", which the probe reads as no time); a version-1 time before 1970 is a date
    before 1970, as ffprobe says it.
    Raises ``OverflowError``/``OSError``/``ValueError`` for a creation time no date can hold."""
    all_ones = (1 << (64 if version == 1 else 32)) - 1
    seconds = None
    # a time scale past 2^31 is negative to libavformat, which then takes 1: left to ffprobe
    if 0 < scale < 1 << 31 and duration not in (0, all_ones):
        seconds = ((duration * 1_000_000 * 2 + scale) // (2 * scale)) / 1_000_000
    if version == 1 and created >= 1 << 63:
        created = 0
    elif version == 0 and 0 < created < EPOCH_1904_S:
        created += EPOCH_1904_S
    when = None
    if created:
        when = dt.datetime.fromtimestamp(created - EPOCH_1904_S, tz=dt.UTC)
        if _UNIX_DAY_ONE[0] <= when < _UNIX_DAY_ONE[1]:
            when = None
    return seconds, when


def _parse_mvhd(moov: bytes, start: int, end: int) -> MovieHeader | None:
    version = moov[start]
    if version == 1:
        fmt, need = ">QQIQ", 28
    elif version == 0:
        fmt, need = ">IIII", 16
    else:
        return None
    if start + 4 + need > end:
        return None
    created, _modified, timescale, duration = struct.unpack_from(fmt, moov, start + 4)
    return MovieHeader(*mvhd_values(version, created, timescale, duration))


def movie_header(path: Path) -> MovieHeader | None:
    """The movie header of the file at ``path``, or None (not an MP4, no readable ``mvhd``, or
    a ``moov`` ffprobe would not read as a plain file's: ``mp4boxes.check_moov``)."""
    try:
        with open(path, "rb") as f:
            end = os.fstat(f.fileno()).st_size
            top = list(_boxes(f, 0, end))
            if any(kind in MISPLACED_AT_TOP for kind, _, _ in top):
                return None  # a track or table outside the movie: ffprobe stumbles on it
            for kind, a, b in top:
                if kind == b"moov":
                    if b - a > _MOOV_MAX:
                        return None
                    f.seek(a)
                    moov = f.read(b - a)
                    if len(moov) != b - a:
                        return None
                    check_moov(moov)  # exactly one mvhd, and a moov ffprobe reads
                    mvhd = next((s, e) for k, s, e in boxes(moov) if k == b"mvhd")
                    return _parse_mvhd(moov, *mvhd)
    except (OSError, struct.error, IndexError, OverflowError, ValueError, StopIteration):
        return None
    return None
