"""R1: a recording's end is its start plus its duration from the moment it is ingested — read
from the MP4 movie header without a process — and the value is the one ffprobe reports."""

from __future__ import annotations

import datetime as dt
import os
import struct
import subprocess
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner
from transcode_support import patch_mvhd_creation, probe_json

from station.cli import main
from station.ingest.mp4head import movie_header
from station.sim.volume import make_volume
from station.vault import Vault


def _ffprobe(path: Path) -> tuple[float | None, str | None]:
    fmt = probe_json(path)["format"]
    d = fmt.get("duration")
    return (float(d) if d else None), (fmt.get("tags") or {}).get("creation_time")


def _lavfi(path: Path, *extra: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=d=2.5:s=160x120:r=25",
         "-c:v", "libx264", *extra, str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("mp4")
    recorder = make_volume(
        d / "rec", device="ZFY0001", officer="100001", clips=2, seconds=3.0, size="160x120"
    )
    return [
        *recorder,  # H.264 + AAC, the movie header last, as a recorder writes it
        _lavfi(d / "video-only.mp4"),
        _lavfi(d / "faststart.mp4", "-movflags", "+faststart"),  # the movie header first
        _lavfi(d / "dated.mov", "-metadata", "creation_time=2026-03-01T02:03:04Z"),
    ]


def test_movie_header_agrees_with_ffprobe(clips: list[Path]) -> None:
    for clip in clips:
        head = movie_header(clip)
        assert head is not None, clip
        duration, created = _ffprobe(clip)
        assert head.duration_s == duration, clip  # to the microsecond, as libavformat rounds
        if created:
            assert head.creation_time == dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
        else:
            assert head.creation_time is None, clip
    dated = movie_header(clips[-1])
    assert dated is not None and dated.creation_time == dt.datetime(
        2026, 3, 1, 2, 3, 4, tzinfo=dt.UTC
    )


def test_damaged_and_foreign_files_give_nothing_and_never_raise(
    clips: list[Path], tmp_path: Path
) -> None:
    data = clips[0].read_bytes()
    cases = {
        "empty": b"",
        "random": os.urandom(4096),
        "box of size 3": struct.pack(">I4s", 3, b"moov") + b"\0" * 64,
        "box past the end": struct.pack(">I4s", 10**6, b"moov") + b"\0" * 64,
        "no moov": data[: len(data) // 2],  # cut before the header a recorder writes last
        "cut inside mvhd": data[: data.rfind(b"mvhd") + 20],
    }
    for name, blob in cases.items():
        p = tmp_path / f"{name}.mp4"
        p.write_bytes(blob)
        assert movie_header(p) is None, name
    assert movie_header(tmp_path / "missing.mp4") is None


def test_64_bit_sizes_and_a_version_1_header(tmp_path: Path) -> None:
    """Large recordings: a box with a 64-bit size and an ``mvhd`` of version 1 (64-bit times)."""
    created = int((dt.datetime(2026, 5, 1, tzinfo=dt.UTC) - dt.datetime(1904, 1, 1, tzinfo=dt.UTC))
                  .total_seconds())  # fmt: skip
    body = struct.pack(">B3xQQIQ", 1, created, created, 1000, 7_200_500) + b"\0" * 80
    mvhd = struct.pack(">I4sQ", 1, b"mvhd", 16 + len(body)) + body
    moov = struct.pack(">I4s", 8 + len(mvhd), b"moov") + mvhd
    ftyp = struct.pack(">I4s4sI", 16, b"ftyp", b"isom", 0)
    mdat = struct.pack(">I4sQ", 1, b"mdat", 16 + 1000) + b"\0" * 1000
    p = tmp_path / "big.mp4"
    p.write_bytes(ftyp + mdat + moov)
    head = movie_header(p)
    assert head is not None and head.duration_s == 7200.5
    assert head.creation_time == dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


def test_ingest_records_the_end_before_any_probe(
    vault: Vault, db: sqlite_utils.Database, clips: list[Path]
) -> None:
    """R1: right after ingest (no transcode has run) end = start + the clip's duration, and
    the delay is measured from that end; the sealed row passes ``station verify``."""
    root = clips[0].parents[2]
    res = CliRunner().invoke(main, ["--home", str(vault.home), "ingest", str(root), "--json"])
    assert res.exit_code == 0, res.output
    rows = list(db.query("select * from recordings order by recorded_at"))
    assert len(rows) == 2
    assert db.execute("select count(*) from derivatives").fetchone()[0] == 0
    for rec, clip in zip(rows, clips[:2], strict=True):
        duration, _ = _ffprobe(clip)
        assert rec["duration_s"] == pytest.approx(duration, abs=0.001)
        start = dt.datetime.fromisoformat(rec["recorded_at"])
        end = dt.datetime.fromisoformat(rec["end_at"])
        assert (end - start).total_seconds() == pytest.approx(duration, abs=0.001)
        ingested = dt.datetime.fromisoformat(rec["ingested_at"])
        assert rec["ingest_delay_s"] == pytest.approx((ingested - end).total_seconds(), abs=0.01)
        assert rec["time_source"] == "filename"
    res = CliRunner().invoke(main, ["--home", str(vault.home), "verify", "--json"])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize(
    "creation",
    [0, 3600, 86400 * 400, 2082844800 + 1_700_000_000],
    ids=["none", "unix-day-one", "unix-time-in-a-1904-field", "1904-based"],
)
def test_ingest_and_transcode_readers_give_ffprobes_values(
    clips: list[Path], tmp_path: Path, creation: int
) -> None:
    """R1: the end written at ingest (this reader) is the one the transcode job's box reader
    and ffprobe give later — the same duration to the microsecond, the same creation time."""
    from station.transcode.mp4probe import quick_probe

    clip = tmp_path / "c.mp4"
    clip.write_bytes(clips[0].read_bytes())
    patch_mvhd_creation(clip, creation)
    head, quick = movie_header(clip), quick_probe(clip)
    assert head is not None and quick is not None
    duration, created = _ffprobe(clip)
    assert head.duration_s == quick.duration == duration  # exact: both round as libavformat
    want = dt.datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None
    if created and created.startswith("1970-01-01"):
        want = None  # ffprobe's tag for a zero Unix time: no time (transcode.probe)
    assert head.creation_time == quick.creation_time == want
    assert (want is None) == (creation in (0, 3600))
