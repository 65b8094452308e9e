"""Hostile input for the MP4 box readers that spare the station an ffprobe run:
``station.ingest.mp4head.movie_header`` (R1: a recording's end at ingest),
``station.transcode.mp4probe.quick_probe`` (the re-wrap's facts, R7: the derivative's checks)
and ``station.archive.mp4facts.record_facts`` (the facts a disc's metadata record lists, R12/R13).

Fed truncated files, sizes that overrun their parent or the file, zero, tiny and huge sizes,
64-bit large sizes, deep nesting and floods of boxes, garbage, empty files, trailing bytes, and a
few hundred seeded random mutations of a real ffmpeg-made MP4, each reader either gives what
ffprobe gives for the same file or answers None (then the station asks ffprobe) — never another
exception, never more memory than a small multiple of the file. Deterministic: one seed."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import struct
import subprocess
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from transcode_support import FFPROBE, audio_src, ff, probe_fields, video_src

from station.archive import mp4facts
from station.archive.records import facts_of
from station.ingest.mp4head import movie_header
from station.transcode import mp4probe
from station.transcode.probe import parse_probe

SEED = 20261201
MUTATIONS = 300
# boxes whose payload is boxes (after a fixed header of this many bytes)
CONTAINERS = {b"moov": 0, b"trak": 0, b"mdia": 0, b"minf": 0, b"stbl": 0, b"dinf": 0,
              b"edts": 0, b"udta": 0, b"stsd": 8, b"avc1": 78, b"mp4a": 28}  # fmt: skip


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def walk(data: bytes, start: int, end: int, depth: int = 0) -> list[tuple[bytes, int, int, int]]:
    """Every box of a well-formed file: (type, offset, size, depth), parents first."""
    out = []
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        if size < 8 or pos + size > end:
            break
        out.append((kind, pos, size, depth))
        if kind in CONTAINERS:
            out += walk(data, pos + 8 + CONTAINERS[kind], pos + size, depth + 1)
        pos += size
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Real files ffmpeg makes: H.264 + AAC, the movie header last (as recorders write it) and
    first (faststart)."""
    d = tmp_path_factory.mktemp("hostile")
    out = {}
    for name, extra in (("last", []), ("first", ["-movflags", "+faststart"])):
        path = d / f"{name}.mp4"
        # one thread: the same bytes on every machine, so the same seed hits the same boxes
        ff(*video_src(1.0, "160x120"), *audio_src(1.0, 48000), "-c:v", "libx264", "-preset",
           "ultrafast", "-threads", "1", "-c:a", "aac",
           "-metadata", "creation_time=2026-11-30T10:00:07Z", *extra, str(path))  # fmt: skip
        out[name] = path.read_bytes()
    return out


# -- what each reader answers, and what ffprobe says ------------------------------------------


def _call(name: str, fn: Callable[[Path], Any], path: Path, case: str) -> Any:
    """``fn(path)``: any exception, or memory beyond a small multiple of the file, fails."""
    size = path.stat().st_size
    tracemalloc.start()
    try:
        got = fn(path)
    except Exception as exc:  # the readers answer None for what they cannot read
        raise AssertionError(f"{name} raised {exc!r} on {case}") from exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak <= 4 * size + (1 << 20), f"{name} allocated {peak} bytes for {case} ({size})"
    return got


def answers(path: Path, case: str) -> dict[str, Any]:
    return {
        "mp4head": _call("movie_header", movie_header, path, case),
        "mp4probe": _call("quick_probe", mp4probe.quick_probe, path, case),
        "mp4facts": _call("record_facts", mp4facts.record_facts, path, case),
    }


def ffprobe(path: Path) -> dict[str, Any] | None:
    """ffprobe's JSON for ``path``, or None when it cannot read the file."""
    p = subprocess.run([FFPROBE, "-v", "error", "-print_format", "json", "-show_format",
                        "-show_streams", str(path)], capture_output=True, check=False)  # fmt: skip
    if p.returncode != 0:
        return None
    return dict(json.loads(p.stdout.decode("utf-8", "replace") or "{}"))


def disagreements(got: dict[str, Any], probed: dict[str, Any] | None) -> list[str]:
    """Where a reader answered something other than ffprobe's answer."""
    out = []
    if probed is None:
        return [f"{k} answered {v!r}, ffprobe cannot read the file" for k, v in got.items() if v]
    info = parse_probe(probed)
    head = got["mp4head"]
    if head is not None:
        fmt = probed.get("format") or {}
        duration = float(fmt["duration"]) if fmt.get("duration") else None
        created = (fmt.get("tags") or {}).get("creation_time")
        when = (
            dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
            if created and not created.startswith("1970-01-01")
            else None
        )
        if head.duration_s is not None and head.duration_s != duration:
            out.append(f"mp4head duration {head.duration_s} != ffprobe {duration}")
        if head.creation_time != when:
            out.append(f"mp4head creation {head.creation_time} != ffprobe {when}")
    if got["mp4probe"] is not None and probe_fields(got["mp4probe"]) != probe_fields(info):
        out.append(f"mp4probe {probe_fields(got['mp4probe'])} != {probe_fields(info)}")
    if got["mp4facts"] is not None and got["mp4facts"] != facts_of(info):
        out.append(f"mp4facts {got['mp4facts']} != {facts_of(info)}")
    return out


class Judge:
    """Runs the readers on each case and, where any answers, ffprobe once per distinct file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.seen: dict[str, list[str]] = {}
        self.answered = self.refused = 0

    def __call__(self, case: str, data: bytes) -> dict[str, Any]:
        key = hashlib.sha256(data).hexdigest()
        path = self.folder / f"{key[:16]}.mp4"
        path.write_bytes(data)
        try:
            got = answers(path, case)
            if key not in self.seen:
                any_answer = any(v is not None for v in got.values())
                self.seen[key] = disagreements(got, ffprobe(path)) if any_answer else []
                self.answered += any_answer
                self.refused += not any_answer
            problems = self.seen[key]
        finally:
            path.unlink()
        assert not problems, f"{case}: {problems}"
        return got


# -- hand-made hostile files ------------------------------------------------------------------


def _resize(data: bytes, at: int, size: int) -> bytes:
    return data[:at] + struct.pack(">I", size) + data[at + 4 :]


def hand_cases(clip: bytes) -> dict[str, bytes]:
    boxes = walk(clip, 0, len(clip))
    top = {k: (p, s) for k, p, s, d in boxes if d == 0}
    mp, ms = top[b"moov"]
    trak = next((p, s) for k, p, s, _ in boxes if k == b"trak")
    mvhd = next(p for k, p, _, _ in boxes if k == b"mvhd")
    moov = clip[mp : mp + ms]
    free = box(b"free", b"")
    cases = {
        "empty": b"",
        "garbage": random.Random(SEED).randbytes(8192),
        "zeros": bytes(4096),
        "ftyp only": clip[: top[b"ftyp"][1]],
        "moov only": moov,
        "trailing zeros": clip + bytes(7),
        "trailing garbage": clip + b"GARBAGE!" * 3,
        "trailing box": clip + box(b"free", b"x" * 10),
        "trailing half header": clip + b"\0\0\0\x40fr",
        "moov size overruns the file": _resize(clip, mp, len(clip) - mp + 8),
        "moov size zero": _resize(clip, mp, 0),
        "moov size below its header": _resize(clip, mp, 4),
        "moov size one (no large size)": _resize(clip, mp, 1),
        "moov size all ones": _resize(clip, mp, 0xFFFFFFFF),
        "moov as a 64-bit box": clip[:mp]
        + struct.pack(">I4sQ", 1, b"moov", ms + 8)
        + clip[mp + 8 : mp + ms]
        + clip[mp + ms :],
        "moov large size huge": clip[:mp]
        + struct.pack(">I4sQ", 1, b"moov", 1 << 63)
        + clip[mp + 8 :],
        "moov large size below its header": clip[:mp]
        + struct.pack(">I4sQ", 1, b"moov", 12)
        + clip[mp + 8 :],
        "trak overruns moov": _resize(clip, trak[0], trak[1] + 64),
        "trak size zero": _resize(clip, trak[0], 0),
        "trak size below its header": _resize(clip, trak[0], 7),
        "mvhd version 2": clip[: mvhd + 8] + b"\x02" + clip[mvhd + 9 :],
        "mvhd cut short": _resize(clip, mvhd, 12),
        "two moovs": clip + moov,
        "moov with a flood of free boxes": clip[:mp]
        + box(b"moov", moov[8:] + free * 100_000)
        + clip[mp + ms :],
        "a flood of top-level boxes": free * 100_000 + clip,
        "deeply nested traks": clip[:mp]
        + box(b"moov", moov[8:] + _nested(b"trak", 2000))
        + clip[mp + ms :],
        "a wave box in itself": clip + box(b"wave", box(b"wave", box(b"wave", b""))),
    }
    for cut in (1, 7, 8, 9, 16, mp, mp + 8, mp + 100, mp + ms // 2, len(clip) - 1):
        cases[f"cut at {cut}"] = clip[:cut]
    return cases


def _nested(kind: bytes, depth: int) -> bytes:
    inner = b""
    for _ in range(depth):
        inner = box(kind, inner)
    return inner


@pytest.mark.parametrize("layout", ["last", "first"])
def test_hand_made_hostile_files(layout: str, clips: dict[str, bytes], tmp_path: Path) -> None:
    clip = clips[layout]
    judge = Judge(tmp_path)
    whole = judge("the clip itself", clip)
    assert all(v is not None for v in whole.values())  # the readers do read a plain file
    cases = hand_cases(clip)
    got = {name: judge(name, data) for name, data in cases.items()}
    for name in ("empty", "garbage", "zeros", "ftyp only", "moov size overruns the file",
                 "moov size below its header", "moov large size huge", "two moovs",
                 "a flood of top-level boxes", "moov with a flood of free boxes"):  # fmt: skip
        assert got[name]["mp4probe"] is None and got[name]["mp4facts"] is None, name
    # the movie header alone is still read past trailing bytes, as ffprobe reads it
    assert got["trailing garbage"]["mp4head"] == whole["mp4head"]
    assert got["moov as a 64-bit box"]["mp4head"] == whole["mp4head"]


# -- seeded random mutations ------------------------------------------------------------------

BOUNDARY = (0, 1, 7, 8, 9, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


def mutate(clip: bytes, boxes: list[tuple[bytes, int, int, int]], rng: random.Random) -> bytes:
    """One hostile change of a real file: a box size, a box type, a field, flipped bytes, a cut,
    trailing bytes, a duplicated box."""
    data = bytearray(clip)
    _kind, at, size, _depth = rng.choice(boxes)
    how = rng.randrange(8)
    if how == 0:  # a box size: a boundary, one off, or random
        new = rng.choice([*BOUNDARY, size - 1, size + 1, size + 8, rng.randrange(1 << 32)])
        struct.pack_into(">I", data, at, new % (1 << 32))
    elif how == 1:  # a 64-bit size where there was none (the next 8 bytes read as it)
        struct.pack_into(">I", data, at, 1)
    elif how == 2:  # another box type
        new_kind = rng.choice([b"moov", b"trak", b"free", b"mdta", b"mvex", b"wave", b"esds",
                               b"stts", b"\0\0\0\0", rng.randbytes(4)])  # fmt: skip
        data[at + 4 : at + 8] = new_kind
    elif how == 3:  # a field inside a box: a boundary or random 32-bit word
        if size > 12:
            where = at + 8 + rng.randrange(size - 12)
            word = rng.choice([*BOUNDARY, rng.randrange(1 << 32)])
            struct.pack_into(">I", data, where, word)
    elif how == 4:  # flipped bytes inside a box
        for _ in range(rng.randint(1, 4)):
            data[at + rng.randrange(size)] ^= 1 << rng.randrange(8)
    elif how == 5:  # cut
        del data[rng.randrange(len(data)) :]
    elif how == 6:  # trailing bytes
        data += rng.randbytes(rng.randint(1, 40))
    else:  # a box twice
        data[at + size : at + size] = data[at : at + size]
    return bytes(data)


@pytest.mark.parametrize("layout", ["last", "first"])
def test_seeded_mutations_give_ffprobes_answer_or_none(
    layout: str, clips: dict[str, bytes], tmp_path: Path
) -> None:
    clip = clips[layout]
    # the metadata is where the readers look: most mutations go there, a few into the media
    boxes = [b for b in walk(clip, 0, len(clip)) if b[0] != b"mdat"]
    media = [b for b in walk(clip, 0, len(clip)) if b[0] == b"mdat"]
    rng = random.Random(f"{SEED}-{layout}")
    judge = Judge(tmp_path)
    for i in range(MUTATIONS // 2):
        pool = media if i % 10 == 9 else boxes
        judge(f"mutation {i} ({layout})", mutate(clip, pool, rng))
    # both outcomes occur: the test exercises answers as well as refusals
    assert judge.answered > 0 and judge.refused > 0, (judge.answered, judge.refused)


@pytest.mark.parametrize("large", [False, True])
def test_a_huge_box_in_a_sparse_file_is_never_read(large: bool, tmp_path: Path) -> None:
    """A ``moov`` that claims 1 GiB (32-bit size) or 8 GiB (64-bit size), in a sparse file that
    really is that long: past what a reader takes in, refused without reading it."""
    size = (8 << 30) if large else (1 << 30)
    ftyp = box(b"ftyp", b"isom\0\0\2\0isomiso2avc1mp41")
    head = struct.pack(">I4sQ", 1, b"moov", size) if large else struct.pack(">I4s", size, b"moov")
    path = tmp_path / "huge.mp4"
    with open(path, "wb") as f:
        f.write(ftyp + head)
        f.truncate(len(ftyp) + size)
    for name, fn in (("movie_header", movie_header), ("quick_probe", mp4probe.quick_probe),
                     ("record_facts", mp4facts.record_facts)):  # fmt: skip
        tracemalloc.start()
        try:
            assert fn(path) is None, name
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 4 << 20, f"{name} allocated {peak} bytes"
