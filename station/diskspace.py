"""Free space on the vault's file system, and the warning before it fills.

``vault_space`` reads ``statvfs`` of the home (space available to unprivileged writers, as the
ingest sees it). Below ``vault.low_space_percent`` free, ``station status`` prints a warning and
the daemon's ``SpaceWatch`` raises one ``vault_low_space`` alert (audited, listed by
``station devices alerts``) — one open alert at a time; after it is acknowledged and the space
is still low, the next check raises a new one. The watch runs in its own thread, waking on the
station's stop event (never ``sleep``), and a failed check is logged, never fatal.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from station.config import Settings
from station.errors import StationError
from station.log import get

log = get()

ALERT_CODE = "vault_low_space"


@dataclass(frozen=True)
class Space:
    path: str
    total_bytes: int
    free_bytes: int
    free_percent: float
    threshold_percent: float

    @property
    def low(self) -> bool:
        return self.free_percent < self.threshold_percent

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "low": self.low}

    def message(self) -> str:
        gb = self.free_bytes / 1e9
        return (
            f"存储空间不足：仅剩 {self.free_percent:.1f}%（{gb:.1f} GB），低于 "
            f"{self.threshold_percent:g}% / vault disk low: {self.free_percent:.1f}% free "
            f"({gb:.1f} GB), below {self.threshold_percent:g}% [{self.path}]"
        )


def vault_space(home: Path, settings: Settings) -> Space:
    st = os.statvfs(home)
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    pct = 100.0 * free / total if total else 0.0
    return Space(str(home), total, free, round(pct, 2), settings.vault.low_space_percent)


AlertFn = Callable[[Space], None]
OpenAlertFn = Callable[[], bool]


class SpaceWatch:
    """A daemon service (``start``/``stop``): checks the vault's free space every
    ``vault.space_check_minutes``; ``has_open_alert`` and ``raise_alert`` come from the
    composition root (the alert table belongs to the dock's registry)."""

    def __init__(
        self,
        home: Path,
        settings: Settings,
        *,
        has_open_alert: OpenAlertFn,
        raise_alert: AlertFn,
        on_check: Callable[[Space], None] | None = None,
    ) -> None:
        self.home = home
        self.settings = settings
        self.has_open_alert = has_open_alert
        self.raise_alert = raise_alert
        self.on_check = on_check
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check_once(self) -> Space:
        space = vault_space(self.home, self.settings)
        if self.on_check is not None:
            self.on_check(space)
        if space.low:
            log.warning("vault.low_space", free_percent=space.free_percent, path=space.path)
            if not self.has_open_alert():
                self.raise_alert(space)
        return space

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.check_once()
            except (OSError, StationError, sqlite3.Error) as exc:
                # a failed check is logged; it never stops the daemon
                log.error("vault.space_check_failed", error=str(exc))
            self._stop.wait(self.settings.vault.space_check_minutes * 60)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="space-watch", daemon=False)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
