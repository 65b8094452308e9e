"""Helpers for the transcode tests: real clips made by ffmpeg (lavfi), originals put into a real
vault and catalog, and stub ffmpeg executables (never a mocked Popen)."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import struct
import subprocess
from pathlib import Path
from typing import Any

import sqlite_utils

from station.catalog import write_txn
from station.timeutil import to_iso, utcnow
from station.vault import Vault

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
FFPROBE = shutil.which("ffprobe") or "ffprobe"


def ff(*args: str) -> None:
    subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-y", *args], check=True)


def video_src(seconds: float, size: str = "320x240", rate: str = "25") -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]


def audio_src(seconds: float, rate: int = 48000) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={rate}:duration={seconds}"]


def h264_aac_mp4(path: Path, seconds: float = 2.0, *extra: str) -> Path:
    ff(
        *video_src(seconds),
        *audio_src(seconds),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        *extra,
        str(path),
    )
    return path


def h265_aac_mp4(path: Path, seconds: float = 2.0) -> Path:
    """H.265 (libx265) + AAC in MP4, as many body cameras record now."""
    ff(
        *video_src(seconds),
        *audio_src(seconds),
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-x265-params",
        "log-level=error",
        "-tag:v",
        "hvc1",
        "-c:a",
        "aac",
        str(path),
    )
    return path


def mjpeg_pcm_avi(path: Path, seconds: float = 2.0) -> Path:
    ff(
        *video_src(seconds),
        *audio_src(seconds, 16000),
        "-c:v",
        "mjpeg",
        "-q:v",
        "5",
        "-c:a",
        "pcm_s16le",
        str(path),
    )
    return path


def probe_json(path: Path) -> dict[str, Any]:
    import json

    out = subprocess.run(
        [
            FFPROBE,
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            str(path),
        ],
        check=True,
        capture_output=True,
    )
    return dict(json.loads(out.stdout))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def add_recording(
    vault: Vault, db: sqlite_utils.Database, src: Path, *, media_kind: str = "video", **fields: Any
) -> str:
    """Store ``src`` as an original (content-addressed, 0444) with its catalog row."""
    digest = sha256(src)
    ext = src.suffix.lstrip(".").lower()
    dest = vault.original_path(digest, ext)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    os.chmod(dest, 0o444)
    now = to_iso(utcnow())
    row = {
        "sha256": digest,
        "size": src.stat().st_size,
        "ext": ext,
        "media_kind": media_kind,
        "vault_path": str(dest.relative_to(vault.home)),
        "original_name": src.name,
        "original_path": str(src),
        "ingested_at": now,
        "recorded_at": "2026-11-20T01:02:03.000000Z",
        "device_id": "DSJ0001",
        "officer_id": "100001",
        **fields,
    }
    with write_txn(db):
        db["recordings"].insert(row)  # type: ignore[union-attr]
    return digest


def stub(path: Path, body: str) -> Path:
    """A stand-in ffmpeg: a shell script. Answers ``-version`` like ffmpeg does."""
    path.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-version" ]; then echo "ffmpeg version stub"; exit 0; fi\n' + body + "\n",
        encoding="utf-8",
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def patch_mvhd_creation(path: Path, creation: int) -> None:
    """Write ``creation`` into the (version 0) mvhd's creation time, as odd recorders do."""
    data = bytearray(path.read_bytes())
    at = data.index(b"mvhd")
    assert data[at + 4] == 0
    struct.pack_into(">I", data, at + 8, creation)
    path.write_bytes(bytes(data))


def probe_fields(info: Any) -> dict[str, object]:
    """Everything the transcode job reads from a probe (a ``MediaInfo``): the box reader and
    ffprobe must agree on all of it."""
    from station.transcode.plan import choose_method
    from station.transcode.probe import assess

    return {
        "mp4": info.is_mp4,
        "duration": info.duration,
        "created": info.creation_time,
        "video": [(s.codec, s.frames) for s in info.video],
        "audio": [(s.codec, s.frames) for s in info.audio],
        "assess": assess(info),
        "method": choose_method("mp4-h264", info),
        "method_keep_hevc": choose_method("mp4-h264", info, keep_hevc=True),
    }
