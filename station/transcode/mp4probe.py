"""What a plain MP4/MOV original holds, read from its boxes in Python — without starting ffprobe.

A recorder's file is nearly always one ``moov`` with H.264 (or H.265) video and AAC audio. For
such a file the transcode job needs only: the container (MP4/MOV), each track's kind, codec and
sample count, the movie's duration and its creation time. These are read here from ``mvhd``,
``hdlr``, ``stsd`` (with the AAC object type from ``esds``) and ``stts``, with the values ffprobe
gives for them:

- duration: ``mvhd`` duration / time scale, rounded to the microsecond (libavformat's
  ``av_rescale`` into ``AV_TIME_BASE``), as ffprobe's ``format.duration``;
- creation time: ``mvhd`` creation time (seconds since 1904; a small value counts as Unix time,
  as libavformat does), as ffprobe's ``format.tags.creation_time``;
- frames: the sum of ``stts`` sample counts (ffprobe's ``nb_frames``).

Anything else answers ``None`` and the caller asks ffprobe, which stays the authority: no
``moov`` or more than one, boxes that do not tile the file exactly (a truncated recording),
fragments (``moof``/``mvex``), a zero duration or time scale, an audio or video track whose
codec is not H.264/H.265/AAC or that has no samples, a ``mdta`` metadata handler (keys that can
set the creation time too), a version or size this reader does not know. So the choice of
method, the damage checks and the recording's times (R1, R2) are those ffprobe would give
(tests/test_transcode_mp4probe.py compares the two on real files).
"""

from __future__ import annotations

import datetime as dt
import os
import struct
from pathlib import Path

from station.ingest import mp4boxes
from station.ingest.mp4boxes import esds_decoder_config
from station.ingest.mp4head import mvhd_values
from station.transcode.probe import MediaInfo, StreamInfo

# libavformat's name for every file its mov demuxer reads
FORMAT_NAME = "mov,mp4,m4a,3gp,3g2,mj2"
_TOP_LEVEL = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"pdin", b"meta"}
_VIDEO = {b"avc1": "h264", b"avc3": "h264", b"hvc1": "hevc", b"hev1": "hevc"}
# sample descriptions of text, timecode and data tracks (GPS, captions, metadata)
_OTHER = {b"tx3g", b"text", b"tmcd", b"mebx", b"c608", b"c708", b"wvtt", b"stpp", b"gpmd",
          b"camm", b"rtp ", b"urim", b"mett", b"metx"}  # fmt: skip
_AAC_OBJECT_TYPES = {0x40, 0x66, 0x67, 0x68}  # MPEG-4 AAC, MPEG-2 AAC main/LC/SSR
_MOOV_MAX = 256 << 20  # a moov larger than this is left to ffprobe


class _Unsure(Exception):
    """Something this reader does not handle: ffprobe decides."""


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """Child boxes of ``data[start:end]`` as (type, payload start, payload end); they must tile
    the range exactly."""
    try:
        return mp4boxes.boxes(data, start, end)
    except mp4boxes.NotPlain as exc:
        raise _Unsure(str(exc)) from exc


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int]:
    found = [(s, e) for k, s, e in _boxes(data, start, end) if k == kind]
    if len(found) != 1:
        raise _Unsure(f"{len(found)} {kind!r} boxes")
    return found[0]


def _top_level(path: Path) -> bytes:
    """The ``moov`` box's payload, after checking that the top-level boxes tile the file."""
    moov: bytes | None = None
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        pos = boxes = 0
        while pos < size:
            boxes += 1
            if boxes > mp4boxes.MAX_BOXES:
                raise _Unsure("too many top-level boxes")
            head = f.read(16) if f.seek(pos) == pos else b""
            if len(head) < 8:
                raise _Unsure("a top-level box header is cut off")
            box_size, kind = struct.unpack_from(">I4s", head)
            hlen = 8
            if box_size == 1:
                if len(head) < 16:
                    raise _Unsure("a large top-level box header is cut off")
                (box_size,) = struct.unpack_from(">Q", head, 8)
                hlen = 16
            elif box_size == 0:
                box_size = size - pos
            if kind not in _TOP_LEVEL or box_size < hlen or pos + box_size > size:
                raise _Unsure(f"top-level box {kind!r} at {pos} is not a plain MP4's")
            if kind == b"moov":
                if moov is not None or box_size - hlen > _MOOV_MAX:
                    raise _Unsure("a second or oversized moov")
                f.seek(pos + hlen)
                moov = f.read(box_size - hlen)
                if len(moov) != box_size - hlen:
                    raise _Unsure("moov cut off")
            pos += box_size
    if moov is None:
        raise _Unsure("no moov")
    return moov


def _mvhd(data: bytes, start: int, end: int) -> tuple[float, dt.datetime | None]:
    version = data[start]
    if version == 1:
        if end - start < 32:
            raise _Unsure("short mvhd")
        created, _mod, scale, duration = struct.unpack_from(">QQIQ", data, start + 4)
    elif version == 0:
        if end - start < 20:
            raise _Unsure("short mvhd")
        created, _mod, scale, duration = struct.unpack_from(">IIII", data, start + 4)
    else:
        raise _Unsure(f"mvhd version {version}")
    try:
        seconds, creation = mvhd_values(version, created, scale, duration)
    except (OverflowError, OSError, ValueError) as exc:
        raise _Unsure("creation time out of range") from exc
    if seconds is None:
        raise _Unsure("no movie duration")
    return seconds, creation


def _aac_object_type(data: bytes, start: int, end: int) -> int:
    """The object type of the ``esds`` box's decoder configuration."""
    try:
        body, _ = esds_decoder_config(data, start, end)
    except ValueError as exc:
        raise _Unsure(str(exc)) from exc
    return data[body]


def _audio_codec(data: bytes, start: int, end: int) -> str:
    """``mp4a`` sample entry (payload ``start:end``) → "aac" when its esds says AAC."""
    # SampleEntry (8 bytes), sound description version 0 (20 bytes; QuickTime v1 +16, v2 +36)
    version = struct.unpack_from(">H", data, start + 8)[0]
    children = start + {0: 28, 1: 44, 2: 64}.get(version, -1)
    if children < start:
        raise _Unsure(f"sound description version {version}")
    boxes = _boxes(data, children, end)
    for kind, s, e in list(boxes):
        if kind == b"wave":  # QuickTime: esds inside a wave box
            boxes += _boxes(data, s, e)
    esds = [(s, e) for k, s, e in boxes if k == b"esds"]
    if len(esds) != 1:
        raise _Unsure("mp4a without one esds")
    if _aac_object_type(data, *esds[0]) not in _AAC_OBJECT_TYPES:
        raise _Unsure("mp4a that is not AAC")
    try:  # the decoder ffprobe opens takes this configuration
        mp4boxes.check_asc(mp4boxes.decoder_specific_info(data, *esds[0]))
    except ValueError as exc:
        raise _Unsure(str(exc)) from exc
    return "aac"


def _track(data: bytes, start: int, end: int, index: int) -> StreamInfo:
    mdia = _child(data, start, end, b"mdia")
    hs, he = _child(data, *mdia, b"hdlr")
    if he - hs < 12:
        raise _Unsure("hdlr cut off")
    handler = data[hs + 8 : hs + 12]
    stbl = _child(data, *_child(data, *mdia, b"minf"), b"stbl")
    ss, se = _child(data, *stbl, b"stsd")
    ts, te = _child(data, *stbl, b"stts")
    entries = struct.unpack_from(">I", data, ts + 4)[0]
    if ts + 8 + 8 * entries > te:
        raise _Unsure("stts cut off")
    frames = sum(struct.unpack_from(">I", data, ts + 8 + 8 * i)[0] for i in range(entries))
    sample_entries = _boxes(data, ss + 8, se)
    if se - ss < 8 or struct.unpack_from(">I", data, ss + 4)[0] != len(sample_entries):
        raise _Unsure("stsd entry count")
    if handler not in (b"vide", b"soun"):
        # libavformat takes a track's kind from its sample description too (an mp4a entry
        # under any handler is audio): only descriptions known to be text or data pass.
        fourccs = {k for k, _, _ in sample_entries}
        if not fourccs <= _OTHER:
            raise _Unsure(f"track handler {handler!r} with {sorted(fourccs)!r}")
        name = next(iter(fourccs), b"none").decode("latin-1")
        return StreamInfo(index, "other", name, frames=frames)
    if len(sample_entries) != 1 or frames == 0:
        raise _Unsure("an audio or video track with no samples or several descriptions")
    fourcc, es, ee = sample_entries[0]
    if handler == b"vide":
        if fourcc not in _VIDEO:
            raise _Unsure(f"video codec {fourcc!r}")
        return StreamInfo(index, "video", _VIDEO[fourcc], frames=frames)
    if fourcc != b"mp4a":
        raise _Unsure(f"audio codec {fourcc!r}")
    return StreamInfo(index, "audio", _audio_codec(data, es, ee), frames=frames)


def quick_probe(path: Path) -> MediaInfo | None:
    """The MediaInfo of a plain H.264/H.265 + AAC MP4/MOV, or None: then ask ffprobe."""
    try:
        moov = _top_level(path)
        if b"mdta" in moov:
            raise _Unsure("mdta metadata")
        mp4boxes.check_moov(moov)  # a moov ffprobe reads as a plain file's
        boxes = _boxes(moov)
        kinds = [k for k, _, _ in boxes]
        if b"mvex" in kinds or kinds.count(b"mvhd") != 1:
            raise _Unsure("fragments, or not one mvhd")
        duration, creation = _mvhd(moov, *next((s, e) for k, s, e in boxes if k == b"mvhd"))
        traks = [(s, e) for k, s, e in boxes if k == b"trak"]
        streams = [_track(moov, s, e, i) for i, (s, e) in enumerate(traks)]
        size = path.stat().st_size
    except (_Unsure, mp4boxes.NotPlain, struct.error, IndexError, OSError):
        return None
    if not any(s.kind in ("video", "audio") for s in streams):
        return None
    return MediaInfo(FORMAT_NAME, duration, size, streams, creation)
