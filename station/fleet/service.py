"""The daemon's fleet service: the same pass as ``station fleet sync``, on a thread.

It sleeps on an Event: ``INTERVAL_S`` between passes, or at once when ``wake()`` is called
(after a dock session); after a failed pass it backs off (doubling up to ``MAX_BACKOFF_S``).
``stop()`` sets the stop event, which the pass checks between objects and parts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from station.config import Settings
from station.errors import StationError
from station.fleet.sync import Fleet, SyncReport
from station.log import get
from station.vault import Vault

log = get()

INTERVAL_S = 60.0
MAX_BACKOFF_S = 3600.0


class FleetService:
    def __init__(self, vault: Vault, settings: Settings, *, interval_s: float = INTERVAL_S) -> None:
        self.vault = vault
        self.settings = settings
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.last: SyncReport | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="fleet")
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        delay = self.interval_s
        while not self._stop.is_set():
            try:
                fleet = Fleet(self.vault, self.settings, stop=self._stop)
                report = fleet.sync(force=False)
                self.last = report
                delay = self.interval_s if report.ok else min(delay * 2, MAX_BACKOFF_S)
                self._tell(report)
            except StationError as exc:
                log.error("fleet.pass_failed", error=exc.render())
                delay = min(delay * 2, MAX_BACKOFF_S)
            except Exception:
                log.exception("fleet.pass_crashed")
                delay = min(delay * 2, MAX_BACKOFF_S)
            self._wake.wait(delay)
            self._wake.clear()

    def _tell(self, report: SyncReport) -> None:
        from station.catalog import open_catalog
        from station.fleet.status import fleet_status

        db = open_catalog(self.vault.catalog_path, migrate=False)
        try:
            st = fleet_status(db)
        finally:
            db.close()
        summary = {
            k: st[k]
            for k in (
                "queued",
                "queued_bytes",
                "lag_s",
                "outbox",
                "central_audit_lag",
                "last_ok_at",
                "last_error",
            )
        }
        for cb in self.listeners:
            try:
                cb(summary)
            except Exception:
                log.exception("fleet.listener_failed")
