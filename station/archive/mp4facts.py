"""The format facts a metadata record lists (格式名称, 视频编码, 音频编码, 分辨率, 帧率, 音频采样率,
时长), read from a plain MP4/MOV's boxes in Python — the values ffprobe reports, without starting
ffprobe (whose first run in a disc build loads ffmpeg's shared libraries from a cold cache).

``station.transcode.mp4probe.quick_probe`` decides whether the file is plain enough (one
``moov`` tiling the file, no fragments, H.264/H.265 video, AAC audio) and gives the container,
the codecs and the movie duration. This module adds, from the same ``moov``:

- resolution: of the first video track, from its H.264 sequence parameter set (``avcC``): the
  macroblock size less the cropping, as the H.264 decoder reports it, and the sample entry's
  width and height where libavcodec takes those instead ("container cropping": the same size
  rounded up to 16, no top or left crop, not larger);
- frame rate: ffprobe's ``avg_frame_rate`` of that track — the ``mdhd`` time scale × the sample
  count over the sum of the ``stts`` durations (libavformat's mov demuxer), reduced;
- sample rate: of the first audio track, from its AAC AudioSpecificConfig (``esds``), for AAC LC
  only: with an explicit "no SBR" extension any rate; with none, 32 kHz and up (implicit HE-AAC,
  which doubles the decoder's rate, is only used with a core of 24 kHz or less).

Anything else — H.265 (its parameter sets are not read here), an SPS this parser does not know
(``seq_scaling_matrix``), HE-AAC, a ``stts`` whose durations ffmpeg would adjust — answers
``None`` and the caller asks ffprobe. tests/test_archive_mp4facts.py compares both on
ffmpeg-made files.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path
from typing import Any

from station.ingest.mp4boxes import decoder_specific_info
from station.transcode import mp4probe

_INT_MAX = (1 << 31) - 1
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025,
              8000, 7350)  # fmt: skip
_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


class _Unsure(Exception):
    """Not read here: ffprobe decides."""


class _Bits:
    """An H.264 RBSP read bit by bit (emulation prevention bytes removed)."""

    def __init__(self, nal: bytes) -> None:
        out = bytearray()
        zeros = 0
        for b in nal:
            if zeros >= 2 and b == 3:
                zeros = 0
                continue
            out.append(b)
            zeros = zeros + 1 if b == 0 else 0
        self.data, self.pos = bytes(out), 0

    def bit(self) -> int:
        if self.pos >= len(self.data) * 8:
            raise _Unsure("SPS cut off")
        b = (self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return b

    def bits(self, n: int) -> int:
        v = 0
        for _ in range(n):
            v = (v << 1) | self.bit()
        return v

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise _Unsure("bad Exp-Golomb code")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def h264_size(sps: bytes) -> tuple[int, int, int, int]:
    """(width, height, crop left, crop top) an H.264 decoder gives for this SPS NAL unit
    (ITU-T H.264 7.3.2.1.1; the cropped frame of 7.4.2.1.1)."""
    if not sps or sps[0] & 0x1F != 7:
        raise _Unsure("not an SPS")
    r = _Bits(sps[1:])
    profile = r.bits(8)
    r.bits(16)  # constraint flags, level
    # the ranges libavcodec's SPS parser enforces (h264_ps.c): outside them it drops the SPS
    # and ffprobe reports the sample entry's size instead — leave those to ffprobe
    if r.ue() > 31:
        raise _Unsure("sps_id out of range")
    chroma = 1
    separate = 0
    if profile in _HIGH_PROFILES:
        chroma = r.ue()
        if chroma > 3:
            raise _Unsure("chroma_format_idc")
        if chroma == 3:
            separate = r.bit()
        if r.ue() > 6 or r.ue() > 6:  # bit_depth_luma_minus8, bit_depth_chroma_minus8
            raise _Unsure("bit depth")
        r.bit()  # qpprime_y_zero_transform_bypass_flag
        if r.bit():
            raise _Unsure("seq_scaling_matrix_present")  # x264 writes its matrices in the PPS
    if r.ue() > 12:
        raise _Unsure("log2_max_frame_num")
    poc_type = r.ue()
    if poc_type == 0:
        if r.ue() > 12:
            raise _Unsure("log2_max_poc_lsb")
    elif poc_type == 1:
        r.bit()
        r.se()
        r.se()
        cycle = r.ue()
        if cycle > 255:
            raise _Unsure("poc_cycle_length")
        for _ in range(cycle):
            r.se()
    elif poc_type != 2:
        raise _Unsure("pic_order_cnt_type")
    if r.ue() > 16:
        raise _Unsure("too many reference frames")  # max_num_ref_frames
    r.bit()  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_units = r.ue() + 1
    frame_mbs_only = r.bit()
    if not frame_mbs_only:
        r.bit()  # mb_adaptive_frame_field_flag
    r.bit()  # direct_8x8_inference_flag
    left = right = top = bottom = 0
    if r.bit():
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
    array_type = 0 if separate else chroma
    sub_w, sub_h = {1: (2, 2), 2: (2, 1), 3: (1, 1)}.get(array_type, (1, 1))
    unit_x = 1 if array_type == 0 else sub_w
    unit_y = (2 - frame_mbs_only) * (1 if array_type == 0 else sub_h)
    width = width_mbs * 16
    height = height_units * 16 * (2 - frame_mbs_only)
    cl, cr, ct, cb = left * unit_x, right * unit_x, top * unit_y, bottom * unit_y
    if cl + cr >= width or ct + cb >= height:
        raise _Unsure("cropping larger than the picture")
    return width - cl - cr, height - ct - cb, cl, ct


def _align16(n: int) -> int:
    return (n + 15) & ~15


def _video_facts(moov: bytes, trak: tuple[int, int]) -> tuple[str, float]:
    """(resolution, frame rate) of an H.264 track."""
    mdia = mp4probe._child(moov, *trak, b"mdia")
    ms, me = mp4probe._child(moov, *mdia, b"mdhd")
    version = moov[ms]
    at = ms + (20 if version == 1 else 12)
    if version > 1 or at + 4 > me:
        raise _Unsure("mdhd version or cut off")
    timescale = struct.unpack_from(">I", moov, at)[0]
    stbl = mp4probe._child(moov, *mp4probe._child(moov, *mdia, b"minf"), b"stbl")
    ss, se = mp4probe._child(moov, *stbl, b"stsd")
    entries = mp4probe._boxes(moov, ss + 8, se)
    if len(entries) != 1 or entries[0][0] not in (b"avc1", b"avc3"):
        raise _Unsure("not one H.264 sample entry")
    _, es, ee = entries[0]
    if ee - es < 78:
        raise _Unsure("visual sample entry cut off")
    box_w, box_h = struct.unpack_from(">HH", moov, es + 24)
    # VisualSampleEntry: 78 bytes, then its boxes
    avcc = [(s, e) for k, s, e in mp4probe._boxes(moov, es + 78, ee) if k == b"avcC"]
    if len(avcc) != 1:
        raise _Unsure("not one avcC")
    cs, ce = avcc[0]
    if ce - cs < 8 or moov[cs] != 1 or moov[cs + 5] & 0x1F < 1:
        raise _Unsure("avcC version or no SPS")
    (n,) = struct.unpack_from(">H", moov, cs + 6)
    if cs + 8 + n > ce:
        raise _Unsure("avcC cut off")
    width, height, crop_left, crop_top = h264_size(moov[cs + 8 : cs + 8 + n])
    sizes = (_align16(box_w), _align16(box_h)), (_align16(width), _align16(height))
    if box_w and box_h and sizes[0] != sizes[1]:
        raise _Unsure("the SPS and the sample entry disagree on the size")
    if (
        box_w > 0
        and box_h > 0
        and not crop_left
        and not crop_top
        and _align16(box_w) == _align16(width)
        and _align16(box_h) == _align16(height)
        and box_w <= width
        and box_h <= height
    ):  # libavcodec's container cropping
        width, height = box_w, box_h
    ts, te = mp4probe._child(moov, *stbl, b"stts")
    (count,) = struct.unpack_from(">I", moov, ts + 4)
    if count == 0 or ts + 8 + 8 * count > te:
        raise _Unsure("stts empty or cut off")
    frames = duration = 0
    for i in range(count):
        n_samples, delta = struct.unpack_from(">II", moov, ts + 8 + 8 * i)
        if delta >= 1 << 31 or (i and i + 1 == count and n_samples == 1):
            raise _Unsure("stts durations ffmpeg may adjust")  # negative; a last odd sample
        frames += n_samples
        duration += n_samples * delta
    if not 0 < timescale <= _INT_MAX or frames <= 0 or duration <= 0 or frames > _INT_MAX:
        raise _Unsure("no frame rate")
    rate = Fraction(timescale * frames, duration)
    if rate.numerator > _INT_MAX or rate.denominator > _INT_MAX:
        raise _Unsure("frame rate av_reduce would approximate")
    return f"{width}x{height}", float(rate)


def _asc_rate(moov: bytes, entry: tuple[int, int]) -> int:
    """The sample rate the AAC decoder gives, from the ``mp4a`` entry's AudioSpecificConfig."""
    es, ee = entry
    if ee - es < 28:
        raise _Unsure("sound sample entry cut off")
    version = struct.unpack_from(">H", moov, es + 8)[0]
    children = es + {0: 28, 1: 44, 2: 64}.get(version, -1)
    if children < es:
        raise _Unsure("sound description version")
    boxes = mp4probe._boxes(moov, children, ee)
    for kind, s, e in list(boxes):
        if kind == b"wave":
            boxes += mp4probe._boxes(moov, s, e)
    esds = [(s, e) for k, s, e in boxes if k == b"esds"]
    if len(esds) != 1:
        raise _Unsure("not one esds")
    return _asc_check(_decoder_specific(moov, *esds[0]))


def _asc_check(asc: bytes) -> int:
    """The decoder's sample rate for an AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1) of plain
    AAC LC: with no extension at 32 kHz and up, or with a sync extension saying "no SBR"
    (``0x2b7``, object type 5, flag 0 — what ffmpeg's encoder writes) at any rate."""
    if len(asc) < 2:
        raise _Unsure("short AudioSpecificConfig")
    head = int.from_bytes(asc[:2], "big")
    aot, index, channels = head >> 11, (head >> 7) & 0xF, (head >> 3) & 0xF
    if aot != 2 or index >= len(_AAC_RATES) or channels == 0 or head & 0x3:
        raise _Unsure("not plain AAC LC")  # dependsOnCoreCoder / extensionFlag set
    rate = _AAC_RATES[index]
    if len(asc) == 2:
        if rate < 32000:
            raise _Unsure("implicit SBR possible")
        return rate
    bits = int.from_bytes(asc, "big")  # bits 16-26, 27-31 and 32 of five bytes
    ext, ext_aot, sbr = (bits >> 13) & 0x7FF, (bits >> 8) & 0x1F, (bits >> 7) & 1
    if len(asc) != 5 or ext != 0x2B7 or ext_aot != 5 or sbr != 0:
        raise _Unsure("an AudioSpecificConfig with more than a 'no SBR' extension")
    return rate


def _decoder_specific(data: bytes, start: int, end: int) -> bytes:
    """The DecoderSpecificInfo (tag 5) of an ``esds`` box."""
    try:
        return decoder_specific_info(data, start, end)
    except ValueError as exc:
        raise _Unsure(str(exc)) from exc


def record_facts(path: Path) -> dict[str, Any] | None:
    """The record's format facts of ``path`` (the keys ``records.probe_file`` gives), or None
    when the boxes do not tell them as ffprobe would: then ask ffprobe."""
    info = mp4probe.quick_probe(path)
    if info is None:
        return None
    video = info.video[0] if info.video else None
    audio = info.audio[0] if info.audio else None
    try:
        moov = mp4probe._top_level(path)
        boxes = mp4probe._boxes(moov)
        traks = [(s, e) for k, s, e in boxes if k == b"trak"]
        resolution = fps = rate = None
        if video is not None:
            if video.codec != "h264":
                raise _Unsure("video other than H.264")
            resolution, fps = _video_facts(moov, traks[video.index])
        if audio is not None:
            trak = traks[audio.index]
            mdia = mp4probe._child(moov, *trak, b"mdia")
            stbl = mp4probe._child(moov, *mp4probe._child(moov, *mdia, b"minf"), b"stbl")
            ss, se = mp4probe._child(moov, *stbl, b"stsd")
            entries = mp4probe._boxes(moov, ss + 8, se)
            if len(entries) != 1:
                raise _Unsure("not one audio sample entry")
            rate = _asc_rate(moov, entries[0][1:])
    except (_Unsure, mp4probe._Unsure, struct.error, IndexError, OSError, ValueError):
        return None
    return {
        "format_name": info.format_name,
        "video_codec": video.codec if video else None,
        "audio_codec": audio.codec if audio else None,
        "resolution": resolution,
        "fps": fps,
        "sample_rate": rate,
        "duration": info.duration,
    }
