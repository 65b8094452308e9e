"""The daemon's integrity upkeep (R7): signed checkpoints of the audit log on their schedule,
and the periodic full verify of the vault at low priority.

One thread that sleeps on the daemon's stop event between rounds (no busy loop); the first round
waits ``FIRST_ROUND_S`` so start-up and the first docks go first.
"""

from __future__ import annotations

import threading

from station.audit.checkpoint import maybe_checkpoint
from station.catalog import open_catalog
from station.config import Settings
from station.log import get
from station.vault import Vault
from station.verify.run import periodic_verify

log = get()

FIRST_ROUND_S = 60.0
MAX_SLEEP_S = 600.0


class UpkeepService:
    def __init__(self, vault: Vault, settings: Settings, *, actor: str = "station") -> None:
        self.vault = vault
        self.settings = settings
        self.actor = actor
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="upkeep", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _sleep_s(self) -> float:
        minutes = self.settings.audit.checkpoint_interval_minutes
        return max(30.0, min(MAX_SLEEP_S, minutes * 60.0))

    def _loop(self) -> None:
        if self._stop.wait(FIRST_ROUND_S):
            return
        while not self._stop.is_set():
            self.round()
            self._stop.wait(self._sleep_s())

    def round(self) -> None:
        """One round; errors are logged and never stop the daemon (invariant 7)."""
        db = None
        try:
            db = open_catalog(self.vault.catalog_path)
            cp = maybe_checkpoint(self.vault, db, self.settings)
            if cp is not None:
                log.info("upkeep.checkpoint_made", size=cp.size)
            periodic_verify(self.vault, db, self.settings, actor=self.actor, stop=self._stop)
        except Exception as exc:  # error boundary: the daemon keeps serving the docks
            log.error("upkeep.failed", error=str(exc), error_type=type(exc).__name__)
        finally:
            if db is not None:
                db.close()
