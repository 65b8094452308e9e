"""The whole daemon in-process without root and without udev: udev events through a real pipe
(``station_testbed.fake_monitor``), the recorder's storage a folder used in place
(``DirectoryMounter``), simulated recorders on real ptys, the real dispatcher, sessions and
ingest engine (R3, R4; DESIGN.md invariants 2, 4, 5)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from dock_support import files_of, make_recorder_volume, sim_recorder

from station.app.daemon import Daemon
from station.config import Settings
from station.recorder.simconfig import SimConfig
from station.status import StatusBoard
from station.usb_dock import registry
from station.usb_dock.mount import DirectoryMounter
from station.vault import Vault
from station_testbed.fake_monitor import FakeMonitor, recorder_events

SECRET = bytes(range(32))


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_recorder_volume(tmp_path_factory.mktemp("clips"), "ZFY0001", "100001")


class Running:
    """A daemon in a thread; ``until(slot, phase)`` waits for the status board to show it."""

    def __init__(self, vault: Vault, monitor: FakeMonitor) -> None:
        self.daemon = Daemon(vault, Settings(), monitor=monitor, mounter=DirectoryMounter())
        self.seen: list[tuple[str, str]] = []
        self.cond = threading.Condition()
        self.daemon.board.listeners.append(self._changed)
        self.thread = threading.Thread(target=self.daemon.run, kwargs={"install_signals": False})

    def _changed(self, board: StatusBoard) -> None:
        with self.cond:
            for slot, entry in board.slots.items():
                self.seen.append((slot, str(entry.get("phase"))))
            self.cond.notify_all()

    def until(self, slot: str, phase: str) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: (slot, phase) in self.seen, 60), self.seen

    def stop(self) -> int:
        self.daemon.request_stop()
        self.thread.join(60)
        assert not self.thread.is_alive()
        return 0


@pytest.fixture
def daemon(vault: Vault) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(monitor: FakeMonitor) -> Running:
        r = Running(vault, monitor)
        r.thread.start()
        started.append(r)
        return r

    yield start
    for r in started:
        if r.thread.is_alive():
            r.stop()


def enrol(db: sqlite_utils.Database) -> None:
    registry.enrol(
        db, "ZFY0001", officer_id="100001", unit_id="110101000001", actor="admin", secret=SECRET
    )


def sessions(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return [dict(r) for r in db.query("select * from sessions order by id")]


def test_docked_recorder_is_ingested_and_cleared(
    vault: Vault, db: sqlite_utils.Database, daemon: Any, clips: Path, tmp_path: Path
) -> None:
    enrol(db)
    storage = tmp_path / "storage"
    shutil.copytree(clips, storage)
    fake = FakeMonitor()
    d = daemon(fake)
    with sim_recorder(SimConfig(serial="ZFY0001", secret=SECRET)) as (rec, pty):
        fake.dock(1, tty=pty, storage=str(storage), usb_serial="ZFY0001")
        d.until("1-1", "done")
        assert files_of(storage) == {}  # every file verified, then cleared (invariant 2)
        assert rec.clock_sets  # R3: the device clock set after measuring its drift
        fake.undock(1)
        d.stop()
    (row,) = sessions(db)
    assert row["state"] == "done" and row["cleared"] == 3 and row["device_id"] == "ZFY0001"
    assert db.execute("select count(*) from recordings").fetchone()[0] == 3


def test_a_usb_stick_is_refused_and_left_alone(
    vault: Vault, db: sqlite_utils.Database, daemon: Any, tmp_path: Path
) -> None:
    stick = tmp_path / "stick"
    stick.mkdir()
    (stick / "photo.jpg").write_bytes(b"x" * 100)
    fake = FakeMonitor()
    d = daemon(fake)
    fake.dock(2, storage=str(stick), recorder=False, usb_serial="STICK01")
    d.until("1-2", "refused")
    d.stop()
    assert files_of(stick) == {"photo.jpg": 100}  # invariant 5: never mounted, never touched
    assert [a["code"] for a in registry.list_alerts(db)] == ["unknown_device"]


def test_a_recorder_docked_before_start_up_is_found_by_coldplug(
    vault: Vault, db: sqlite_utils.Database, daemon: Any, clips: Path, tmp_path: Path
) -> None:
    enrol(db)
    storage = tmp_path / "storage"
    shutil.copytree(clips, storage)
    with sim_recorder(SimConfig(serial="ZFY0001", secret=SECRET)) as (_rec, pty):
        present = recorder_events(1, tty=pty, storage=str(storage), usb_serial="ZFY0001")
        d = daemon(FakeMonitor(present=present))
        d.until("1-1", "done")
        d.stop()
    assert files_of(storage) == {}
    assert [r["state"] for r in sessions(db)] == ["done"]
