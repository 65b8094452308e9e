"""A recording's duration and creation time from its MP4/QuickTime movie header (``mvhd``),
read at ingest without starting a process (R1: the first compliance figure is exact).

Reads only box headers and the one ``mvhd`` box: a few small reads however large the file, with
the ``moov`` box at the start or at the end (recorders write it last). The values are the ones
ffprobe reports as the format's ``duration`` and ``creation_time`` (the transcode probe reads
them again later; both go through ``station.ingest.timing.probe_updates``). Anything unexpected
— another container, a damaged or truncated file — gives ``None``, and a zero time scale or an
unknown duration no duration: the end then stays the start until the probe runs, as for any
other format.

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

# Containers with ISO base media boxes (ISO/IEC 14496-12) a recorder writes.
EXTENSIONS = frozenset({"mp4", "mov", "m4v", "3gp"})
_MAX_BOXES = 4096  # a sane file has a handful of top-level boxes; never walk a corrupt one long
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
    ``AV_TIME_BASE``, halves away from zero), none for a zero time scale or a zero / all-ones
    duration; a version-0 creation time below 1970 in 1904 seconds read as Unix time (recorders
    that write it so), a version-1 one past 2^63 as none, and none for 0 or a time on
    1970-01-01 (ffprobe's tag then says "1970-01-01…", which the probe reads as no time); a
    version-1 time before 1970 is a date before 1970, as ffprobe says it.
    Raises ``OverflowError``/``OSError``/``ValueError`` for a creation time no date can hold."""
    all_ones = (1 << (64 if version == 1 else 32)) - 1
    seconds = None
    if scale > 0 and duration not in (0, all_ones):
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


def mpeg4_descriptor(data: bytes, at: int, end: int) -> tuple[int, int, int]:
    """(tag, body start, body end) of the MPEG-4 descriptor at ``at`` (ISO/IEC 14496-1 8.3.3:
    a tag byte, then a length in up to four 7-bit bytes), read inside ``data[:end]``."""
    if at >= end:
        raise ValueError("descriptor cut off")
    tag, at = data[at], at + 1
    length = 0
    for _ in range(4):
        if at >= end:
            raise ValueError("descriptor length cut off")
        byte, at = data[at], at + 1
        length = (length << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    return tag, at, at + length


def esds_decoder_config(data: bytes, start: int, end: int) -> tuple[int, int]:
    """(body start, body end) of the DecoderConfigDescriptor (tag 4) inside the ES descriptor
    (tag 3) of an ``esds`` box whose payload is ``data[start:end]``; the body's first byte is
    the object type. Raises ``ValueError`` for anything else, or for a descriptor that starts
    outside the box."""
    tag, body, _ = mpeg4_descriptor(data, start + 4, end)  # after the box's version and flags
    if tag != 0x03:
        raise ValueError("esds without an ES descriptor")
    if body + 3 > end:
        raise ValueError("ES descriptor cut off")
    flags = data[body + 2]
    body += 3 + (2 if flags & 0x80 else 0)  # ES_ID, flags, dependsOn_ES_ID
    if flags & 0x40:
        if body >= end:
            raise ValueError("ES descriptor URL cut off")
        body += 1 + data[body]  # URL
    if flags & 0x20:
        body += 2  # OCR_ES_ID
    tag, body, body_end = mpeg4_descriptor(data, body, end)
    if tag != 0x04 or body >= end:
        raise ValueError("esds without a decoder configuration")
    return body, body_end


def _parse_mvhd(f: BinaryIO, start: int, end: int) -> MovieHeader | None:
    f.seek(start)
    version = f.read(4)[0]
    if version == 1:
        fmt, need = ">QQIQ", 28
    elif version == 0:
        fmt, need = ">IIII", 16
    else:
        return None
    if start + 4 + need > end:
        return None
    created, _modified, timescale, duration = struct.unpack(fmt, f.read(need))
    return MovieHeader(*mvhd_values(version, created, timescale, duration))


def movie_header(path: Path) -> MovieHeader | None:
    """The movie header of the file at ``path``, or None (not an MP4, no readable ``mvhd``)."""
    try:
        with open(path, "rb") as f:
            end = os.fstat(f.fileno()).st_size
            for kind, a, b in _boxes(f, 0, end):
                if kind == b"moov":
                    for inner, c, d in _boxes(f, a, b):
                        if inner == b"mvhd":
                            return _parse_mvhd(f, c, d)
                    return None
    except (OSError, struct.error, IndexError, OverflowError, ValueError):
        return None
    return None
