"""What an original holds, from ffprobe's JSON: parsing and damage checks are pure."""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from station.transcode.binaries import Tools
from station.transcode.errors import DamagedSourceError, ToolFailedError
from station.transcode.runner import run_tool


@dataclass(frozen=True)
class StreamInfo:
    index: int
    kind: str  # video | audio | other
    codec: str
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    sample_rate: int | None = None
    frames: int | None = None  # from the container index, when it has one
    duration: float | None = None
    rotation: int = 0
    attached_pic: bool = False
    pix_fmt: str | None = None


@dataclass(frozen=True)
class MediaInfo:
    format_name: str
    duration: float | None
    size: int | None
    streams: list[StreamInfo] = field(default_factory=list)
    creation_time: dt.datetime | None = None  # the container's, UTC (R1: start without a name)

    @property
    def video(self) -> list[StreamInfo]:
        return [s for s in self.streams if s.kind == "video" and not s.attached_pic]

    @property
    def audio(self) -> list[StreamInfo]:
        return [s for s in self.streams if s.kind == "audio"]

    @property
    def is_mp4(self) -> bool:
        return "mp4" in self.format_name.split(",") or "mov" in self.format_name.split(",")


def _num(value: Any, kind: type[int] | type[float]) -> Any:
    if value in (None, "", "N/A"):
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


def _fps(text: Any) -> float | None:
    if not text or text in ("0/0", "N/A"):
        return None
    try:
        value = Fraction(str(text))
    except (ValueError, ZeroDivisionError):
        return None
    return float(value) if value > 0 else None


def _rotation(stream: dict[str, Any]) -> int:
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            return int(float(side["rotation"]))
    return int(_num((stream.get("tags") or {}).get("rotate"), float) or 0)


def parse_probe(data: dict[str, Any]) -> MediaInfo:
    """ffprobe ``-show_format -show_streams`` JSON to a MediaInfo."""
    fmt = data.get("format") or {}
    streams: list[StreamInfo] = []
    for s in data.get("streams") or []:
        kind = s.get("codec_type")
        streams.append(
            StreamInfo(
                index=int(s.get("index", len(streams))),
                kind=kind if kind in ("video", "audio") else "other",
                codec=str(s.get("codec_name") or "unknown"),
                width=_num(s.get("width"), int),
                height=_num(s.get("height"), int),
                fps=_fps(s.get("avg_frame_rate")) or _fps(s.get("r_frame_rate")),
                sample_rate=_num(s.get("sample_rate"), int),
                frames=_num(s.get("nb_frames"), int),
                duration=_num(s.get("duration"), float),
                rotation=_rotation(s),
                attached_pic=bool((s.get("disposition") or {}).get("attached_pic")),
                pix_fmt=s.get("pix_fmt"),
            )
        )
    return MediaInfo(
        format_name=str(fmt.get("format_name") or "unknown"),
        duration=_num(fmt.get("duration"), float),
        size=_num(fmt.get("size"), int),
        streams=streams,
        creation_time=parse_creation_time((fmt.get("tags") or {}).get("creation_time")),
    )


def parse_creation_time(text: Any) -> dt.datetime | None:
    """ffprobe's ``creation_time`` tag (ISO, UTC); a zero or unreadable value is None."""
    if not text or not isinstance(text, str) or text.startswith("1970-01-01"):
        return None
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def assess(info: MediaInfo) -> str | None:
    """Why this original cannot give a derivative at all (None: worth trying)."""
    av = info.video + info.audio
    if not av:
        return "无音视频流 / no audio or video stream"
    if all(s.frames == 0 for s in av):
        return "没有任何帧 / zero frames"
    return None


def probe(
    tools: Tools,
    path: Path,
    *,
    workdir: Path,
    nice: int | None,
    stop: threading.Event | None = None,
) -> MediaInfo:
    """Probe an original; an unreadable one raises DamagedSourceError with ffprobe's message."""
    if path.stat().st_size == 0:
        raise DamagedSourceError("空文件 / empty file (0 bytes)", where=str(path))
    argv = [
        tools.ffprobe,
        "-v",
        "error",
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        str(path),
    ]
    result = run_tool(argv, workdir=workdir, nice=nice, stop=stop, capture_stdout=True)
    if result.returncode < 0:
        raise ToolFailedError(f"ffprobe {result.describe()}", where=str(path))
    if result.returncode != 0:
        raise DamagedSourceError(
            f"无法解析 / ffprobe cannot read it: {result.stderr.strip() or result.describe()}",
            where=str(path),
        )
    try:
        data = json.loads(result.stdout.decode("utf-8", "replace") or "{}")
    except json.JSONDecodeError as exc:
        raise ToolFailedError(f"ffprobe gave no JSON: {exc}", where=str(path)) from exc
    return parse_probe(data)


def read_check(
    tools: Tools,
    path: Path,
    *,
    workdir: Path,
    nice: int | None,
    stop: threading.Event | None = None,
) -> str | None:
    """Read and decode every frame of ``path`` with ffprobe; return its error text, or None.

    Used after ffmpeg failed, to tell a damaged original from a failing ffmpeg: ffprobe is a
    separate program, so a crashing ffmpeg does not make a healthy original look damaged.
    """
    argv = [
        tools.ffprobe,
        "-v",
        "error",
        "-count_frames",
        "-show_entries",
        "stream=index,nb_read_frames",
        "-print_format",
        "json",
        str(path),
    ]
    result = run_tool(argv, workdir=workdir, nice=nice, stop=stop, capture_stdout=True)
    if result.returncode < 0:
        raise ToolFailedError(f"ffprobe {result.describe()}", where=str(path))
    if result.returncode != 0 or result.stderr.strip():
        return result.stderr.strip() or result.describe()
    try:
        data = json.loads(result.stdout.decode("utf-8", "replace") or "{}")
    except json.JSONDecodeError:
        return None
    # -count_frames was asked for, so "N/A" means no frame could be read.
    counts = [_num(s.get("nb_read_frames"), int) or 0 for s in data.get("streams") or []]
    if not counts or all(c == 0 for c in counts):
        return "没有可解码的帧 / zero frames decoded"
    return None
