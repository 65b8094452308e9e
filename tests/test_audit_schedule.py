"""The daemon's integrity timer (R7): scheduled checkpoints and the periodic verify, in a real
thread stopped by the station's stop event."""

from __future__ import annotations

import datetime as dt
import os
import threading

import sqlite_utils

from station.config import Settings
from station.vault import Vault
from station.verify.schedule import TickResult, integrity_tick, run_integrity_timer
from tests.integrity_support import store_recording


def test_tick_checkpoints_and_verifies_when_due(vault: Vault, db: sqlite_utils.Database) -> None:
    settings = Settings()
    store_recording(vault, db, os.urandom(5000))
    t0 = dt.datetime(2026, 11, 1, 8, tzinfo=dt.UTC)
    first = integrity_tick(vault, db, settings, now=t0)
    assert first.verify_ok is True and first.checkpoint_size is not None
    # The verify entry is covered by the anchoring checkpoint.
    n = db.execute("select count(*) from audit_log").fetchone()[0]
    assert first.checkpoint_size == n
    # Ten minutes later nothing is due.
    assert integrity_tick(vault, db, settings, now=t0 + dt.timedelta(minutes=10)) == TickResult(
        None, None
    )
    # A day later: a new verify, which now finds the tampering.
    victim = next(vault.originals.rglob("*.mp4"))
    os.chmod(victim, 0o644)
    victim.write_bytes(b"changed")
    later = integrity_tick(vault, db, settings, now=t0 + dt.timedelta(hours=25))
    assert later.verify_ok is False


def test_timer_thread_runs_and_stops(vault: Vault, db: sqlite_utils.Database) -> None:
    store_recording(vault, db, os.urandom(5000))
    stop = threading.Event()
    ticks: list[TickResult] = []

    nice: list[int] = []

    def on_tick(r: TickResult) -> None:
        ticks.append(r)
        nice.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        stop.set()

    t = threading.Thread(
        target=run_integrity_timer, args=(vault, Settings(), stop), kwargs={"on_tick": on_tick}
    )
    t.start()
    t.join(timeout=120)
    assert not t.is_alive()
    assert ticks and ticks[0].verify_ok is True
    assert nice == [19]  # the timer thread runs at the lowest priority
    assert (
        db.execute("select count(*) from audit_log where event = 'integrity.verified'").fetchone()[
            0
        ]
        == 1
    )


def test_integrity_service_starts_and_stops(vault: Vault, db: sqlite_utils.Database) -> None:
    from station.verify.schedule import IntegrityService

    store_recording(vault, db, os.urandom(5000))
    svc = IntegrityService(vault, Settings(), poll_s=3600)
    svc.start()
    try:
        for _ in range(600):  # wait for the first tick (no timing assertion: a bounded wait)
            if svc.last is not None:
                break
            threading.Event().wait(0.05)
    finally:
        svc.stop()
    assert svc.last is not None and svc.last.verify_ok is True
    assert svc._thread is None
