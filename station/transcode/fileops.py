"""File steps of a job: hashing, fsync and eviction, the atomic install of a finished file,
and two small helpers (a background hash, phase timings)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from station.hashing.copy import fsync_dir, hash_file


def sha256_file(path: Path) -> tuple[str, int]:
    return hash_file(path, from_disk=False)


def fsync_file(path: Path) -> None:
    """fsync, then drop the file from the page cache, so that verification reads the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def install(tmp: Path, final: Path) -> None:
    """fsync'd and verified ``tmp`` becomes ``final``: read-only, atomic rename, folder fsync."""
    os.chmod(tmp, 0o444)
    os.replace(tmp, final)
    fsync_dir(final.parent)


class Background:
    """Run ``fn(arg)`` in a thread (hashlib releases the GIL); ``result()`` joins, re-raises."""

    def __init__(self, fn: Callable[[Path], tuple[str, int]], arg: Path) -> None:
        self._value: tuple[str, int] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, arg), name="transcode-sha256")
        self._thread.start()

    def _run(self, fn: Callable[[Path], tuple[str, int]], arg: Path) -> None:
        try:
            self._value = fn(arg)
        except BaseException as exc:  # handed to the caller in result()
            self._error = exc

    def result(self) -> tuple[str, int]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


class Laps:
    """Seconds spent in each phase of a job, for the log (where the time goes)."""

    def __init__(self) -> None:
        self.t = time.monotonic()
        self.laps: dict[str, float] = {}

    def __call__(self, name: str) -> None:
        now = time.monotonic()
        self.laps[name] = round(now - self.t, 3)
        self.t = now
