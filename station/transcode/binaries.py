"""Finding ffmpeg and ffprobe: the setting, then PATH, then a registry-bundled ffmpeg
(imageio-ffmpeg: the optional extra ``station[bundled-ffmpeg]`` of pyproject.toml, when
installed). Which one was chosen is logged at start-up."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from station.config import Settings
from station.log import get
from station.transcode.errors import ToolMissingError

log = get()


@dataclass(frozen=True)
class Tools:
    ffmpeg: str
    ffprobe: str
    source: str  # setting | PATH | imageio-ffmpeg
    version: str  # first line of `ffmpeg -version`, or "unknown (...)"


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _bundled_ffmpeg() -> str | None:
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception:  # the package raises RuntimeError and others when its binary is absent
        return None


def locate_ffmpeg(settings: Settings) -> tuple[str, str]:
    """(path, source). A configured path that does not work is an error, not a silent fallback."""
    configured = settings.transcode.ffmpeg
    if configured:
        if not _executable(configured):
            raise ToolMissingError(
                "配置的 ffmpeg 不可用 / the configured ffmpeg does not exist or is not "
                f"executable: {configured}",
                where="transcode.ffmpeg",
                hint="fix the path, or clear the setting to use ffmpeg from PATH",
            )
        return configured, "setting"
    found = shutil.which("ffmpeg")
    if found:
        return found, "PATH"
    bundled = _bundled_ffmpeg()
    if bundled and _executable(bundled):
        return bundled, "imageio-ffmpeg"
    raise ToolMissingError(
        "找不到 ffmpeg / ffmpeg not found",
        where="transcode.ffmpeg, PATH, imageio-ffmpeg",
        hint="install ffmpeg (apt-get install ffmpeg) or set transcode.ffmpeg",
    )


def locate_ffprobe(settings: Settings, ffmpeg: str) -> str:
    configured = settings.transcode.ffprobe
    if configured:
        if not _executable(configured):
            raise ToolMissingError(
                f"配置的 ffprobe 不可用 / the configured ffprobe is not usable: {configured}",
                where="transcode.ffprobe",
            )
        return configured
    sibling = Path(ffmpeg).with_name("ffprobe")
    if _executable(str(sibling)):
        return str(sibling)
    found = shutil.which("ffprobe")
    if found:
        return found
    raise ToolMissingError(
        "找不到 ffprobe / ffprobe not found",
        where="transcode.ffprobe, beside ffmpeg, PATH",
        hint="install ffmpeg (it brings ffprobe) or set transcode.ffprobe",
    )


def tool_version(path: str, cache_dir: Path | None = None) -> str:
    """The first line of ``path -version``. With ``cache_dir``, kept there in
    ``tool-versions.json`` under the binary's identity (real path, inode, size, modification
    time): a replaced or upgraded binary is asked again, an unchanged one is not started."""
    if cache_dir is None:
        return _ask_version(path)
    cache = cache_dir / "tool-versions.json"
    try:
        st = os.stat(path)
        key = f"{os.path.realpath(path)}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        return _ask_version(path)
    try:
        known = json.loads(cache.read_text("utf-8"))
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    if isinstance(known.get(key), str):
        return str(known[key])
    version = _ask_version(path)
    if not version.startswith("unknown"):
        with contextlib.suppress(OSError):
            cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({**known, key: version}, ensure_ascii=False), "utf-8")
            os.replace(tmp, cache)
    return version


def _ask_version(path: str) -> str:
    try:
        proc = subprocess.run(
            [path, "-version"], capture_output=True, timeout=30, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    first = proc.stdout.decode("utf-8", "replace").splitlines()[:1]
    if proc.returncode != 0 or not first:
        return f"unknown (exit {proc.returncode})"
    return first[0].strip()


def find_tools(settings: Settings, cache_dir: Path | None = None) -> Tools:
    """ffmpeg and ffprobe as configured, found on PATH or bundled; ``cache_dir``: see
    ``tool_version``."""
    ffmpeg, source = locate_ffmpeg(settings)
    ffprobe = locate_ffprobe(settings, ffmpeg)
    version = tool_version(ffmpeg, cache_dir)
    tools = Tools(ffmpeg=ffmpeg, ffprobe=ffprobe, source=source, version=version)
    log.info(
        "transcode.ffmpeg_found",
        ffmpeg=ffmpeg,
        ffprobe=ffprobe,
        source=source,
        version=tools.version,
    )
    return tools
