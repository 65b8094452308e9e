"""ISO base media boxes (ISO/IEC 14496-12) read from memory, for the readers that answer in
ffprobe's place (``mp4head``, ``station.transcode.mp4probe``, ``station.archive.mp4facts``).

A reader that answers instead of ffprobe must answer only where ffprobe would: ``check_moov``
refuses a ``moov`` that libavformat's mov demuxer would not read as a plain file — an unknown or
repeated box where a plain file has one (libavformat: "Duplicate stsd", "Multiple mdhd?"), a
sample table whose entry count does not fill its box exactly, sample sizes past 2^31 ("Invalid
sample size"), a chunk map naming chunks the chunk offsets do not have ("contradictionary STSC
and STCO"), sample counts that disagree between the tables. Every check raises ``NotPlain`` (a
``ValueError``); every read stays inside its box and the data given (R1: the times written at
ingest; R7: the derivative's checks; R12/R13: a disc's records — each what ffprobe says).
"""

from __future__ import annotations

import struct

MAX_BOXES = 4096  # boxes in one parent: a plain MP4 has a handful
_FREE = {b"free", b"skip"}
# what a plain file holds in each container libavformat reads, and which may repeat
_CHILDREN = {
    b"moov": {b"mvhd", b"trak", b"udta", b"iods", b"meta", b"uuid", *_FREE},
    b"trak": {b"tkhd", b"edts", b"mdia", b"udta", b"tref", b"meta", b"uuid", *_FREE},
    b"mdia": {b"mdhd", b"hdlr", b"minf", b"udta", b"elng", *_FREE},
    b"minf": {b"vmhd", b"smhd", b"nmhd", b"gmhd", b"hmhd", b"sthd", b"hdlr", b"dinf", b"stbl",
              *_FREE},
    b"stbl": {b"stsd", b"stts", b"ctts", b"cslg", b"stss", b"stps", b"sdtp", b"stsc", b"stsz",
              b"stco", b"co64", b"sgpd", b"sbgp", *_FREE},
}  # fmt: skip
_MANY = {b"trak", b"uuid", b"sgpd", b"sbgp", *_FREE}
# what a video or sound sample entry holds after its fixed fields
_ENTRY_CHILDREN = {
    b"vide": {b"avcC", b"hvcC", b"btrt", b"pasp", b"colr", b"clap", b"fiel", b"gama", b"uuid",
              b"mdcv", b"clli", b"st3d", b"sv3d", b"SA3D", *_FREE},
    b"soun": {b"esds", b"wave", b"chan", b"btrt", b"uuid", b"dOps", b"dac3", b"dec3", b"SA3D",
              *_FREE},
}  # fmt: skip
# boxes libavformat reads as parts of the movie wherever they stand: never inside udta
_STRUCTURAL = {*_CHILDREN, *(k for v in _CHILDREN.values() for k in v), b"mvex", b"moof",
               b"traf", b"trun", b"tfhd", b"mfhd", b"sidx", b"mdat", b"elst", b"dref", b"wave",
               b"esds", b"avcC", b"hvcC", b"ftyp"}  # fmt: skip
_STRUCTURAL -= {b"udta", b"meta", b"uuid", *_FREE}
# boxes of a movie that, standing at the top level, libavformat would read as parts of it
MISPLACED_AT_TOP = _STRUCTURAL - {b"moov", b"mdat", b"ftyp"}
_META_CHILDREN = {b"hdlr", b"ilst", b"keys", b"xml ", b"uuid", *_FREE}
# (version 0 size, version 1 size) of the full boxes with a time in them
_TIMED = {b"mvhd": (100, 112), b"tkhd": (84, 96), b"mdhd": (24, 36)}
_NEEDED = {
    b"moov": ({b"mvhd"},),
    b"trak": ({b"tkhd"}, {b"mdia"}),
    b"mdia": ({b"mdhd"}, {b"hdlr"}, {b"minf"}),
    b"minf": ({b"stbl"},),
    b"stbl": ({b"stsd"}, {b"stts"}, {b"stsc"}, {b"stsz"}, {b"stco", b"co64"}),
}
_INT_MAX = (1 << 31) - 1
_AAC = {0x40, 0x66, 0x67, 0x68}  # esds object types: MPEG-4 AAC, MPEG-2 AAC main/LC/SSR
_DECODER_CONFIG = {b"avc1": b"avcC", b"avc3": b"avcC", b"hvc1": b"hvcC", b"hev1": b"hvcC"}


class NotPlain(ValueError):
    """Boxes a reader in ffprobe's place does not answer for: ffprobe decides."""


def boxes(
    data: bytes, start: int = 0, end: int | None = None, *, to_end: bool = True
) -> list[tuple[bytes, int, int]]:
    """Child boxes of ``data[start:end]`` as (type, payload start, payload end); they must tile
    the range exactly, at most ``MAX_BOXES`` of them. ``to_end``: a size of 0 means "to the
    end of the parent" (where libavformat allows it)."""
    end = len(data) if end is None else end
    out: list[tuple[bytes, int, int]] = []
    pos = start
    while pos < end:
        if len(out) >= MAX_BOXES:
            raise NotPlain("too many boxes")
        if end - pos < 8:
            raise NotPlain("a box header is cut off")
        size, kind = struct.unpack_from(">I4s", data, pos)
        head = 8
        if size == 1:
            if end - pos < 16:
                raise NotPlain("a large box header is cut off")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            head = 16
        elif size == 0 and to_end:
            size = end - pos
        if size < head or pos + size > end:
            raise NotPlain(f"box {kind!r} does not fit")
        out.append((kind, pos + head, pos + size))
        pos += size
    return out


def _container(data: bytes, kind: bytes, start: int, end: int) -> dict[bytes, tuple[int, int]]:
    """The children of a ``kind`` container, each type known there and, but for the ones that
    may repeat, once; the needed ones present. {type: (start, end)} of the single ones."""
    children = boxes(data, start, end)
    single: dict[bytes, tuple[int, int]] = {}
    for k, s, e in children:
        if k not in _CHILDREN[kind]:
            raise NotPlain(f"{k!r} in {kind!r}")
        if k not in _MANY:
            if k in single:
                raise NotPlain(f"two {k!r} in {kind!r}")
            single[k] = (s, e)
    for need in _NEEDED[kind]:
        if len(need & single.keys()) != 1:
            raise NotPlain(f"{kind!r} without one of {sorted(need)!r}")
    for timed, sizes in _TIMED.items():
        if timed in single:
            ts, te = single[timed]
            if te - ts < 4 or data[ts] > 1 or te - ts < sizes[data[ts]]:
                raise NotPlain(f"{timed!r} version or size")  # libavformat: "Not yet implemented"
    if b"dinf" in single:
        _data_reference(data, *single[b"dinf"])
    if b"udta" in single:
        _user_data(data, *single[b"udta"])
    if b"meta" in single:
        _meta(data, *single[b"meta"])
    return single


def _data_reference(data: bytes, start: int, end: int) -> None:
    """``dinf``: one ``dref`` with one entry saying the media is in this file (flag 1) — any
    other reference makes libavformat look elsewhere for the samples."""
    inner = boxes(data, start, end)
    if len(inner) != 1 or inner[0][0] != b"dref":
        raise NotPlain("dinf without one dref")
    _, ds, de = inner[0]
    if de - ds < 8 or struct.unpack_from(">I", data, ds + 4)[0] != 1:
        raise NotPlain("dref entry count")
    entries = boxes(data, ds + 8, de, to_end=False)
    if (
        len(entries) != 1
        or entries[0][0] not in (b"url ", b"alis")
        or entries[0][2] - entries[0][1] != 4
        or data[entries[0][1] + 3] & 1 != 1
    ):
        raise NotPlain("dref that is not this file")


def _user_data(data: bytes, start: int, end: int) -> None:
    """``udta``: free-form items, but none libavformat would read as part of the movie."""
    for kind, s, e in boxes(data, start, end):
        if kind in _STRUCTURAL:
            raise NotPlain(f"{kind!r} in udta")
        if kind == b"meta":
            _meta(data, s, e)


def _meta(data: bytes, start: int, end: int) -> None:
    """``meta`` (a full box in MP4, a plain one in QuickTime): a handler and metadata lists."""
    try:
        inner = boxes(data, start + 4, end)
    except NotPlain:
        inner = boxes(data, start, end)
    for kind, _s, _e in inner:
        if kind not in _META_CHILDREN:
            raise NotPlain(f"{kind!r} in meta")


def _table(data: bytes, box: tuple[int, int], head: int, entry: int) -> int:
    """The entry count of a full box's table (``head`` bytes before the entries, the count in
    the last four of them), which must fill the box exactly."""
    s, e = box
    if e - s < head:
        raise NotPlain("a sample table cut off")
    (n,) = struct.unpack_from(">I", data, s + head - 4)
    if e - s != head + n * entry:
        raise NotPlain(f"a sample table of {n} entries in {e - s} bytes")
    return n


def _sample_tables(data: bytes, stbl: dict[bytes, tuple[int, int]]) -> None:
    """The sample tables of one track agree with each other as libavformat reads them."""
    n_stts = _table(data, stbl[b"stts"], 8, 8)
    s = stbl[b"stts"][0] + 8
    samples = sum(struct.unpack_from(">I", data, s + 8 * i)[0] for i in range(n_stts))
    ss, _se = stbl[b"stsz"]
    if stbl[b"stsz"][1] - ss < 12:
        raise NotPlain("stsz cut off")
    uniform, count = struct.unpack_from(">II", data, ss + 4)
    if uniform > _INT_MAX:
        raise NotPlain("sample size")
    if uniform == 0:
        _table(data, stbl[b"stsz"], 12, 4)
        if any(v > _INT_MAX for v in struct.unpack_from(f">{count}I", data, ss + 12)):
            raise NotPlain("invalid sample size")  # libavformat: "Invalid sample size"
    elif stbl[b"stsz"][1] - ss != 12:
        raise NotPlain("stsz with a uniform size and a table")
    if count != samples:
        raise NotPlain(f"stsz counts {count} samples, stts {samples}")
    offsets = b"co64" if b"co64" in stbl else b"stco"
    chunks = _table(data, stbl[offsets], 8, 8 if offsets == b"co64" else 4)
    n_stsc = _table(data, stbl[b"stsc"], 8, 12)
    cs = stbl[b"stsc"][0] + 8
    runs = [struct.unpack_from(">III", data, cs + 12 * i) for i in range(n_stsc)]
    total = 0
    for i, (first, per_chunk, description) in enumerate(runs):
        after = runs[i + 1][0] if i + 1 < len(runs) else chunks + 1
        if (i == 0 and first != 1) or first >= after or per_chunk == 0 or description != 1:
            raise NotPlain("stsc and stco disagree")  # "contradictionary STSC and STCO"
        total += (after - first) * per_chunk
    if (runs or chunks) and total != samples:
        raise NotPlain(f"stsc maps {total} samples, stts has {samples}")
    for kind, head, entry in ((b"stss", 8, 4), (b"ctts", 8, 8), (b"stps", 8, 4)):
        if kind in stbl:
            _table(data, stbl[kind], head, entry)


def check_moov(moov: bytes) -> None:
    """Raises ``NotPlain`` unless ``moov`` (a payload) is a plain file's: the containers of each
    track hold what a plain file holds, each once, and its sample tables agree."""
    top = boxes(moov)
    _container(moov, b"moov", 0, len(moov))
    for kind, s, e in top:
        if kind != b"trak":
            continue
        mdia = _container(moov, b"trak", s, e)[b"mdia"]
        in_mdia = _container(moov, b"mdia", *mdia)
        stbl = _container(moov, b"minf", *in_mdia[b"minf"])[b"stbl"]
        tables = _container(moov, b"stbl", *stbl)
        _sample_tables(moov, tables)
        hs, he = in_mdia[b"hdlr"]
        if he - hs < 12:
            raise NotPlain("hdlr cut off")
        _sample_entries(moov, moov[hs + 8 : hs + 12], *tables[b"stsd"])


def _sample_entries(data: bytes, handler: bytes, start: int, end: int) -> None:
    """The ``stsd`` entries fill it as its count says (libavformat: "invalid size in stsd");
    a video or sound entry's own boxes tile it after its fixed fields; an ``avcC`` is one the
    H.264 decoder takes."""
    if end - start < 8:
        raise NotPlain("stsd cut off")
    entries = boxes(data, start + 8, end, to_end=False)
    if struct.unpack_from(">I", data, start + 4)[0] != len(entries):
        raise NotPlain("stsd entry count")
    for entry_kind, s, e in entries:
        if e - s < 8:
            raise NotPlain("invalid size in stsd")
        if handler == b"vide":
            fixed = 78  # VisualSampleEntry
        elif handler == b"soun":  # SoundDescription version 0, QuickTime 1 (+16) and 2 (+36)
            if e - s < 18:
                raise NotPlain("sound sample entry cut off")
            version, channels = struct.unpack_from(">H6xH", data, s + 8)
            fixed = {0: 28, 1: 44, 2: 64}.get(version, -1)
            if fixed < 0:
                raise NotPlain("sound description version")
            if version < 2 and not 1 <= channels <= 8:  # the decoder: "Too many channels"
                raise NotPlain("sound channel count")
        else:
            continue
        if e - s < fixed:
            raise NotPlain("sample entry cut off")
        try:
            children = boxes(data, s + fixed, e)
        except NotPlain:
            if e - (s + fixed) < 4 or data[e - 4 : e] != bytes(4):
                raise
            children = boxes(data, s + fixed, e - 4)  # QuickTime's four zero bytes at the end
        kinds = [k for k, _, _ in children]
        config = _DECODER_CONFIG.get(entry_kind)
        if config is not None and kinds.count(config) != 1:
            raise NotPlain(f"{entry_kind!r} without one {config!r}")  # the decoder's extradata
        for kind, cs, ce in children:
            if kind not in _ENTRY_CHILDREN[handler] or kinds.count(kind) > 1:
                raise NotPlain(f"{kind!r} in a sample entry")
            if kind == b"avcC":
                check_avcc(data, cs, ce)
            elif kind == b"esds" and data[esds_decoder_config(data, cs, ce)[0]] in _AAC:
                check_asc(decoder_specific_info(data, cs, ce))


def check_avcc(data: bytes, start: int, end: int) -> None:
    """An ``avcC`` box's payload (ISO/IEC 14496-15 5.3.3.1) that the H.264 decoder can take
    as extradata: version 1, at least one SPS (NAL type 7), the parameter sets inside the box."""
    if end - start < 7 or data[start] != 1 or data[start + 4] & 3 == 2:
        raise NotPlain("avcC version or NAL length size")
    pos = start + 5
    for i, nal_type in ((0, 7), (1, 8)):
        count = data[pos] & (0x1F if i == 0 else 0xFF)
        pos += 1
        if i == 0 and count == 0:
            raise NotPlain("avcC without an SPS")
        for _ in range(count):
            if pos + 2 > end:
                raise NotPlain("avcC cut off")
            (n,) = struct.unpack_from(">H", data, pos)
            if n == 0 or pos + 2 + n > end or data[pos + 2] & 0x1F != nal_type:
                raise NotPlain("avcC parameter set")
            pos += 2 + n
        if i == 0 and pos >= end:
            raise NotPlain("avcC without its PPS count")


def mpeg4_descriptor(data: bytes, at: int, end: int) -> tuple[int, int, int]:
    """(tag, body start, body end) of the MPEG-4 descriptor at ``at`` (ISO/IEC 14496-1 8.3.3:
    a tag byte, then a length in up to four 7-bit bytes), read inside ``data[:end]``."""
    if at >= end:
        raise NotPlain("descriptor cut off")
    tag, at = data[at], at + 1
    length = 0
    for _ in range(4):
        if at >= end:
            raise NotPlain("descriptor length cut off")
        byte, at = data[at], at + 1
        length = (length << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    return tag, at, at + length


def esds_decoder_config(data: bytes, start: int, end: int) -> tuple[int, int]:
    """(body start, body end) of the DecoderConfigDescriptor (tag 4) inside the ES descriptor
    (tag 3) of an ``esds`` box whose payload is ``data[start:end]``; the body's first byte is
    the object type. Raises ``NotPlain`` for anything else, or for a descriptor that starts
    outside the box."""
    tag, body, _ = mpeg4_descriptor(data, start + 4, end)  # after the box's version and flags
    if tag != 0x03:
        raise NotPlain("esds without an ES descriptor")
    if body + 3 > end:
        raise NotPlain("ES descriptor cut off")
    flags = data[body + 2]
    body += 3 + (2 if flags & 0x80 else 0)  # ES_ID, flags, dependsOn_ES_ID
    if flags & 0x40:
        if body >= end:
            raise NotPlain("ES descriptor URL cut off")
        body += 1 + data[body]  # URL
    if flags & 0x20:
        body += 2  # OCR_ES_ID
    tag, body, body_end = mpeg4_descriptor(data, body, end)
    if tag != 0x04 or body >= end:
        raise NotPlain("esds without a decoder configuration")
    return body, body_end


def decoder_specific_info(data: bytes, start: int, end: int) -> bytes:
    """The DecoderSpecificInfo (tag 5) of an ``esds`` box: for AAC, its AudioSpecificConfig."""
    body, dec_end = esds_decoder_config(data, start, end)
    # after objectTypeIndication, streamType, bufferSizeDB, maxBitrate, avgBitrate
    tag, s, e = mpeg4_descriptor(data, body + 13, min(dec_end, end))
    if tag != 0x05 or e > min(dec_end, end):
        raise NotPlain("no decoder specific info")
    return data[s:e]


def check_asc(asc: bytes) -> None:
    """An AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1) the AAC decoder opens without a
    program config element: AAC main, LC, SSR, LTP, SBR or PS, a listed sampling rate, and
    1–7 channels."""
    if len(asc) < 2:
        raise NotPlain("short AudioSpecificConfig")
    head = int.from_bytes(asc[:2], "big")
    aot, index, channels = head >> 11, (head >> 7) & 0xF, (head >> 3) & 0xF
    if aot not in (1, 2, 3, 4, 5, 29) or index > 12 or not 1 <= channels <= 7:
        raise NotPlain("an AudioSpecificConfig the decoder may not open")
