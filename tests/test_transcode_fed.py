"""The re-wrap's read-back fed from one read of the file (station/transcode/runner.py:
FedTool): the SHA-256 is of exactly the bytes the tool got, a tool that stops reading early does
not cut the hash short, a tool that never got its input is stopped, and the real ffmpeg reading
a faststart MP4 from stdin gives the same stream hashes as reading the file."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest
from transcode_support import FFMPEG, h264_aac_mp4

from station.transcode.errors import StoppedError
from station.transcode.plan import Method, build_check
from station.transcode.runner import FedTool, RunResult, run_tool
from station.transcode.verify import parse_streamhash


def _feed(
    tmp_path: Path, data: bytes, argv: list[str], nice: int | None
) -> tuple[RunResult, str, int]:
    """``data`` written to a file and fed to the tool ``argv``: (its result, sha256, size)."""
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    tool = FedTool(argv, workdir=tmp_path / "w", nice=nice)
    try:
        return tool.feed(src)
    finally:
        tool.close()


def test_fed_bytes_and_their_sha256_are_the_files(tmp_path: Path) -> None:
    data = os.urandom(3 << 20) + "尾".encode()
    got = tmp_path / "got.bin"
    result, sha, size = _feed(tmp_path, data, ["sh", "-c", f"cat > {got}"], None)
    assert result.returncode == 0
    assert (sha, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert got.read_bytes() == data


def test_a_tool_that_stops_reading_early_still_gets_the_whole_hash(tmp_path: Path) -> None:
    data = os.urandom(4 << 20)
    result, sha, size = _feed(tmp_path, data, ["head", "-c", "10"], 10)
    assert result.returncode == 0
    assert (sha, size) == (hashlib.sha256(data).hexdigest(), len(data))


def test_a_tool_never_fed_is_stopped_and_a_stop_request_is_honoured(tmp_path: Path) -> None:
    tool = FedTool(["cat"], workdir=tmp_path / "w", nice=None)
    tool.close()
    assert tool.proc.returncode is not None
    src = tmp_path / "in.bin"
    src.write_bytes(b"x" * (2 << 20))
    stop = threading.Event()
    stop.set()
    tool = FedTool(["sleep", "30"], workdir=tmp_path / "w", nice=None)
    try:
        with pytest.raises(StoppedError):
            tool.feed(src, stop=stop, grace_s=1)
    finally:
        tool.close()
    assert tool.proc.returncode is not None


def test_ffmpeg_reads_a_faststart_mp4_from_stdin_as_from_the_file(tmp_path: Path) -> None:
    clip = h264_aac_mp4(tmp_path / "clip.mp4", 2.0, "-movflags", "+faststart")
    m = Method("rewrap", "mp4", True, True, "copy")
    by_file = build_check(FFMPEG, m, clip, tmp_path / "a")
    assert run_tool(by_file.argv, workdir=tmp_path / "a", nice=None).returncode == 0
    fed = build_check(FFMPEG, m, clip, tmp_path / "b", from_stdin=True)
    assert fed.argv[fed.argv.index("-i") - 2 : fed.argv.index("-i") + 2] == [
        "-f", "mov", "-i", "pipe:0",
    ]  # fmt: skip
    tool = FedTool(fed.argv, workdir=tmp_path / "b", nice=None)
    try:
        result, sha, _ = tool.feed(clip)
    finally:
        tool.close()
    assert result.returncode == 0 and not result.stderr.strip()
    assert sha == hashlib.sha256(clip.read_bytes()).hexdigest()
    for key in ("dst_packets", "dst_audio"):
        a = parse_streamhash(by_file.aux[key].read_text())
        b = parse_streamhash(fed.aux[key].read_text())
        assert a and a == b
    with pytest.raises(ValueError):
        build_check(FFMPEG, Method("reencode", "mp4", True, True, "aac"), clip, tmp_path,
                    from_stdin=True)  # fmt: skip
