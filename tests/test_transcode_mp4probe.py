"""The box reader that spares a re-wrap its ffprobe run (station/transcode/mp4probe.py), compared
with ffprobe itself on real files made by ffmpeg: where it answers, it answers what ffprobe
answers for every field the job uses (method, damage checks, R1/R2 times); where it is not
sure, it answers None and ffprobe decides."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from transcode_support import audio_src, ff, patch_mvhd_creation, probe_fields, video_src

from station.config import Settings
from station.transcode.binaries import find_tools
from station.transcode.mp4probe import quick_probe
from station.transcode.probe import MediaInfo, probe

SMALL = ["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=1.37"]
SINE = audio_src(1.37, 44100)
H264 = ["-c:v", "libx264", "-preset", "ultrafast"]


def _make(path: Path, *args: str) -> Path:
    ff(*args, str(path))
    return path


def _ffprobe(path: Path, tmp_path: Path) -> MediaInfo:
    return probe(find_tools(Settings()), path, workdir=tmp_path / "w", nice=0)


CASES = {
    "h264-aac-mp4": [*SMALL, *SINE, *H264, "-c:a", "aac"],
    "with-creation-time": [*SMALL, *SINE, *H264, "-c:a", "aac",
                           "-metadata", "creation_time=2026-11-30T10:00:07Z"],
    "faststart": [*SMALL, *SINE, *H264, "-c:a", "aac", "-movflags", "+faststart"],
    "mov": [*SMALL, *SINE, *H264, "-c:a", "aac", "-f", "mov"],
    "video-only": [*SMALL, *H264],
    "audio-only-m4a": [*SINE, "-c:a", "aac", "-f", "mp4"],
    "text-track": [*SMALL, *SINE, "-i", "{srt}", "-map", "0", "-map", "1", "-map", "2",
                   *H264, "-c:a", "aac", "-c:s", "mov_text"],
    "hevc-hvc1": [*SMALL, *SINE, "-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
                  "log-level=error", "-tag:v", "hvc1", "-c:a", "aac"],
    "last-century": [*SMALL, *SINE, *H264, "-c:a", "aac",
                     "-metadata", "creation_time=1999-12-31T23:59:59Z"],
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_box_reader_agrees_with_ffprobe(name: str, tmp_path: Path) -> None:
    ext = "mov" if name == "mov" else "m4a" if name.startswith("audio") else "mp4"
    srt = tmp_path / "gps.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nN39.9 E116.4 京A\n", encoding="utf-8")
    clip = _make(tmp_path / f"{name}.{ext}", *(a.replace("{srt}", str(srt)) for a in CASES[name]))
    quick = quick_probe(clip)
    assert quick is not None, "a plain MP4/MOV of H.264/H.265 + AAC is read without ffprobe"
    assert probe_fields(quick) == probe_fields(_ffprobe(clip, tmp_path))


@pytest.mark.parametrize(
    "creation",
    [0, 86400 * 400, 2082844800 + 1_700_000_000],
    ids=["none", "unix-time-in-a-1904-field", "1904-based"],
)
def test_creation_time_read_as_libavformat_reads_it(creation: int, tmp_path: Path) -> None:
    clip = _make(tmp_path / "c.mp4", *CASES["h264-aac-mp4"])
    patch_mvhd_creation(clip, creation)
    quick = quick_probe(clip)
    assert quick is not None
    assert quick.creation_time == _ffprobe(clip, tmp_path).creation_time
    assert (quick.creation_time is None) == (creation == 0)


UNSURE = {
    # not AAC audio in MP4: ffprobe names the codec, the job re-encodes
    "mp3-in-mp4": [*SMALL, *SINE, *H264, "-c:a", "libmp3lame"],
    "mpeg4-video": [*SMALL, *SINE, "-c:v", "mpeg4", "-c:a", "aac"],
    "matroska": [*SMALL, *SINE, *H264, "-c:a", "aac", "-f", "matroska"],
    "fragmented": [*SMALL, *SINE, *H264, "-c:a", "aac", "-movflags", "frag_keyframe+empty_moov"],
    # keys that may carry their own creation_time
    "mdta-keys": [*SMALL, *SINE, *H264, "-c:a", "aac", "-movflags", "use_metadata_tags",
                  "-metadata", "creation_time=2026-01-01T00:00:00Z"],
}  # fmt: skip


@pytest.mark.parametrize("name", list(UNSURE))
def test_anything_else_is_left_to_ffprobe(name: str, tmp_path: Path) -> None:
    clip = _make(tmp_path / f"{name}.{'mkv' if name == 'matroska' else 'mp4'}", *UNSURE[name])
    assert quick_probe(clip) is None
    _ffprobe(clip, tmp_path)  # and ffprobe does read it


def test_damaged_files_are_left_to_ffprobe(tmp_path: Path) -> None:
    whole = _make(tmp_path / "whole.mp4", *CASES["h264-aac-mp4"])
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # recorder lost power: moov at the end is missing
    assert quick_probe(cut) is None
    short = tmp_path / "short.mp4"
    short.write_bytes(data[:-1])  # the last box no longer fits
    assert quick_probe(short) is None
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\0\0\0\x08free" + b"not a media file" * 10)
    assert quick_probe(junk) is None
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert quick_probe(empty) is None
    assert quick_probe(tmp_path / "missing.mp4") is None
    no_samples = tmp_path / "nosamples.mp4"
    patched = bytearray(data)
    at = patched.index(b"stts")
    struct.pack_into(">I", patched, at + 8, 0)  # first track: no stts entries
    no_samples.write_bytes(bytes(patched))
    assert quick_probe(no_samples) is None


def test_video_frame_rate_sample_counts(tmp_path: Path) -> None:
    """Sample counts are summed over every stts run (variable frame rate)."""
    clip = _make(
        tmp_path / "vfr.mp4",
        *video_src(2, "160x120", "25"),
        "-vf", "setpts='if(lt(N,10),N/25/TB,(N+5)/25/TB)'", "-fps_mode", "passthrough",
        *H264,
    )  # fmt: skip
    quick = quick_probe(clip)
    assert quick is not None
    assert probe_fields(quick) == probe_fields(_ffprobe(clip, tmp_path))
    assert quick.video[0].frames == 50
