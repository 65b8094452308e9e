"""Progress reports of building, verifying and burning, for a terminal bar or the daemon status."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from station.errors import StoppedError
from station.timeutil import to_iso, utcnow


@dataclass(frozen=True)
class DiscProgress:
    phase: str  # build | hash | verify-xorriso | verify-7zip | burn | readback
    job_id: int
    disc_no: int
    copy: str
    done: int  # bytes
    total: int  # bytes


ProgressFn = Callable[[DiscProgress], None]


def check_stop(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise StoppedError()


PHASE_TEXT = {
    "build": "写入映像 / writing image",
    "hash": "映像哈希 / hashing image",
    "verify-xorriso": "xorriso 回读校验 / reading back (xorriso)",
    "verify-7zip": "7-Zip 回读校验 / reading back (7-Zip)",
    "burn": "刻录 / burning",
    "readback": "光盘回读 / reading the disc back",
    "done": "完成 / done",
    "failed": "失败 / failed",
}


class StatusFile:
    """Disc progress for the daemon's status and the screen: ``<home>/run/disc-status.json``,
    written atomically (temp, rename), at most every ``interval`` seconds and on every change of
    phase or image. A separate file from the dock's ``status.json``, so a command-line build
    never races the daemon's writer. Only the final state is fsynced: the running reports come
    from the thread writing the images, and a progress display is not worth a disk flush there
    (each took up to a quarter of a second on a busy disk)."""

    def __init__(self, path: Path, interval: float = 1.0) -> None:
        self.path = path
        self.interval = interval
        self.last = 0.0
        self.key: tuple[str, int, str] | None = None
        self.seen: set[tuple[str, int, str]] = set()
        self.state: dict[str, Any] = {}

    def __call__(self, p: DiscProgress) -> None:
        key = (p.phase, p.disc_no, p.copy)
        now = time.monotonic()
        # both copies are read back side by side: their reports alternate, and each new one
        # is written once, not on every alternation
        if (
            (key == self.key or key in self.seen)
            and now - self.last < self.interval
            and (p.done < p.total)
        ):
            return
        self.seen.add(key)
        self.key, self.last = key, now
        self.state = {**asdict(p), "phase_text": PHASE_TEXT.get(p.phase, p.phase),
                      "state": "running", "updated_at": to_iso(utcnow())}  # fmt: skip
        self._write(durable=False)

    def finish(self, state: str, **fields: Any) -> None:
        text = PHASE_TEXT.get(state, state)
        self.state = {**self.state, **fields, "state": state, "phase_text": text,
                      "updated_at": to_iso(utcnow())}  # fmt: skip
        self._write(durable=True)

    def _write(self, *, durable: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.state, f, ensure_ascii=False)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, self.path)


def fan_out(*fns: ProgressFn | None) -> ProgressFn:
    """One progress callback that calls several (terminal bar, status file, daemon)."""
    live = [f for f in fns if f is not None]

    def call(p: DiscProgress) -> None:
        for f in live:
            f(p)

    return call
