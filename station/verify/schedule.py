"""The daemon's integrity timer: scheduled checkpoints and the periodic low-priority verify (R7).

The daemon starts ``run_integrity_timer`` in its own thread with the station's stop event; the
thread opens its own catalog connection, wakes every ``poll_s`` seconds (``stop.wait``, never
``sleep``), and each wake runs one ``integrity_tick``. A failing tick is logged and the loop goes
on: an integrity check must never take the station down.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass

import sqlite_utils

from station.audit import checkpoint
from station.catalog import open_catalog
from station.config import Settings
from station.errors import IntegrityError, StationError
from station.log import get
from station.timeutil import utcnow
from station.vault import Vault
from station.verify.hashing import lower_priority
from station.verify.run import VerifyProgress, periodic_verify

log = get()


@dataclass(frozen=True)
class TickResult:
    checkpoint_size: int | None  # a checkpoint was signed for this many entries
    verify_ok: bool | None  # a verify ran: its outcome


def integrity_tick(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    *,
    now: dt.datetime | None = None,
    actor: str = "station",
    progress: Callable[[VerifyProgress], None] | None = None,
    stop: threading.Event | None = None,
) -> TickResult:
    now = now or utcnow()
    report = periodic_verify(
        vault, db, settings, actor=actor, now=now, progress=progress, stop=stop
    )
    cp = None
    try:
        if report is not None and report.aborted is None:
            # Anchor what was just verified, re-reading the whole log against the last one.
            cp = checkpoint.make_checkpoint(vault, db, settings, now=now, full=True)
        else:
            cp = checkpoint.maybe_checkpoint(vault, db, settings, now=now)
    except IntegrityError as exc:
        log.error("audit.checkpoint_refused", error=exc.message)
    return TickResult(cp.size if cp else None, report.ok if report else None)


def run_integrity_timer(
    vault: Vault,
    settings: Settings,
    stop: threading.Event,
    *,
    poll_s: float = 60.0,
    progress: Callable[[VerifyProgress], None] | None = None,
    on_tick: Callable[[TickResult], None] | None = None,
) -> None:
    lower_priority()  # this thread only: ingest and the dock go first
    db = open_catalog(vault.catalog_path)
    try:
        while not stop.is_set():
            try:
                result = integrity_tick(vault, db, settings, progress=progress, stop=stop)
                if on_tick is not None:
                    on_tick(result)
            except (StationError, OSError, ValueError) as exc:
                log.error("audit.timer_failed", error=str(exc))
            stop.wait(poll_s)
    finally:
        db.close()


class IntegrityService:
    """The integrity timer as a daemon service (``start()``/``stop()``, like the transcode queue
    and the inbox watcher): hand it to ``Daemon(..., services=[...])``."""

    def __init__(self, vault: Vault, settings: Settings, *, poll_s: float = 60.0) -> None:
        self.vault = vault
        self.settings = settings
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: TickResult | None = None
        self.listeners: list[Callable[[TickResult], None]] = []  # e.g. the daemon's status

    def _on_tick(self, result: TickResult) -> None:
        self.last = result
        for cb in self.listeners:
            try:
                cb(result)
            except Exception as exc:  # a status hook never stops the timer
                log.error("audit.timer_listener_failed", error=repr(exc))

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=run_integrity_timer,
            args=(self.vault, self.settings, self._stop),
            kwargs={"poll_s": self.poll_s, "on_tick": self._on_tick},
            name="integrity",
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()  # a running verify stops between blocks
        if self._thread is not None:
            self._thread.join()
            self._thread = None
