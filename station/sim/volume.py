"""A simulated recorder volume: real H.264/AAC clips made by ffmpeg from lavfi test sources,
named and timed the way body cameras name them
(``DCIM/<date>/<device>_<officer>_<YYYYMMDDhhmmss>_<seq>[_IMP].MP4``), with mtimes at each
clip's end on the device clock."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path
from zoneinfo import ZoneInfo

from station.errors import StationError


def ffmpeg_binary() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise StationError(
            "找不到 ffmpeg / ffmpeg not found on PATH",
            hint="run scripts/setup.sh (installs Debian's ffmpeg)",
        )
    return exe


def make_clip(
    path: Path,
    seconds: float,
    *,
    size: str = "640x360",
    rate: int = 25,
    tone_hz: int = 440,
    comment: str = "",
) -> None:
    """One real MP4 clip (H.264 + AAC) of ``seconds`` seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        ffmpeg_binary(),
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={size}:rate={rate}:duration={seconds}",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={tone_hz}:sample_rate=48000:duration={seconds}",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-g",
        str(rate * 2),
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-shortest",
        "-metadata",
        f"comment={comment}",
        "-f",
        "mp4",
        str(path),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise StationError(
            f"ffmpeg could not make a clip: {proc.stderr.strip()[:300]}", where=str(path)
        )


def make_volume(
    root: Path,
    *,
    device: str,
    officer: str,
    clips: int,
    seconds: float,
    start: dt.datetime | None = None,
    important: int = 0,
    size: str = "640x360",
    timezone: str = "Asia/Shanghai",
    gap_s: float = 30.0,
) -> list[Path]:
    """Write ``clips`` clips to ``root`` as a recorder would; return their paths.

    ``start`` is the device's wall-clock time of the first clip (naive, or aware and converted
    to ``timezone``); by default the clips end an hour before now.
    """
    tz = ZoneInfo(timezone)
    if start is None:
        span = clips * (seconds + gap_s)
        start = (dt.datetime.now(tz) - dt.timedelta(seconds=span + 3600)).replace(tzinfo=None)
    elif start.tzinfo is not None:
        start = start.astimezone(tz).replace(tzinfo=None)
    start = start.replace(microsecond=0)
    paths: list[Path] = []
    t = start
    for i in range(1, clips + 1):
        imp = "_IMP" if i <= important else ""
        name = f"{device}_{officer}_{t:%Y%m%d%H%M%S}_{i:04d}{imp}.MP4"
        path = root / "DCIM" / f"{t:%Y%m%d}" / name
        make_clip(
            path,
            seconds,
            size=size,
            tone_hz=300 + 7 * i,
            comment=f"{device} {officer} {t.isoformat()} #{i}",
        )
        end = (t + dt.timedelta(seconds=seconds)).replace(tzinfo=tz).timestamp()
        os.utime(path, (end, end))
        paths.append(path)
        t = t + dt.timedelta(seconds=seconds + gap_s)
    return paths
