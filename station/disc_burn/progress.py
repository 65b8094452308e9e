"""Progress reports of building, verifying and burning, for a terminal bar or the daemon status."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from station.errors import StationError


@dataclass(frozen=True)
class DiscProgress:
    phase: str  # build | hash | verify-xorriso | verify-7zip | burn | readback
    job_id: int
    disc_no: int
    copy: str
    done: int  # bytes
    total: int  # bytes


ProgressFn = Callable[[DiscProgress], None]


class StoppedError(StationError):
    """Stopped on request; nothing partial kept / 已按要求停止，未保留不完整的文件."""

    exit_code = 23


def check_stop(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise StoppedError()
