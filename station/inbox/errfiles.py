"""Error files the station leaves beside what it could not take: bilingual text that
says what, why, when and what to do. The station never deletes or moves the evidence itself."""

from __future__ import annotations

import os
from pathlib import Path

from station.inbox.scan import DROP_ERROR_NAME, ERROR_SUFFIX
from station.log import get
from station.timeutil import to_iso, utcnow

log = get()


def error_path_for(path: Path, *, drop_dir: bool = False) -> Path:
    """``<drop>/station-error.txt`` for a folder drop, ``<file>.station-error.txt`` otherwise."""
    return path / DROP_ERROR_NAME if drop_dir else path.with_name(path.name + ERROR_SUFFIX)


def write_error(target: Path, what: str, reason: str, *, drop_id: int | None, hint: str) -> Path:
    """Write (or replace) the error file for ``target``; returns its path."""
    is_dir = target.is_dir() and not target.is_symlink()
    dest = error_path_for(target, drop_dir=is_dir)
    text = (
        "采集站未能采集 / The station could not take this in\n"
        f"对象 / what: {what}\n"
        f"原因 / reason: {reason}\n"
        f"时间 / time: {to_iso(utcnow())}\n"
        f"投递编号 / drop id: {drop_id if drop_id is not None else '-'}\n"
        f"处理办法 / what to do: {hint}\n"
        "原文件保留在原处，未被修改 / The original stays where it is, unchanged.\n"
    )
    try:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(text)
    except OSError as exc:
        log.error("inbox.error_file_failed", path=str(dest), error=str(exc))
    return dest


def clear_error(target: Path, *, drop_dir: bool = False) -> None:
    """Remove a stale error file of ours once the problem is gone."""
    try:
        error_path_for(target, drop_dir=drop_dir).unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("inbox.error_file_stale", path=str(target), error=str(exc))
