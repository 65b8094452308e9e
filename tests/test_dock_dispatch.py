"""The dispatcher that pairs a recorder's serial port with its storage per slot and starts one
session per docked recorder (``station.usb_dock.hotplug.Dispatcher``), as tables of udev events.

The sessions are stand-ins that record the slot state they were given; the dispatcher, its pool
and the classification of events are the real ones. Events are built the way the station's udev
rule tags them (``station_testbed.fake_monitor``)."""

from __future__ import annotations

import threading
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import Any

import pytest

from station.usb_dock.hotplug import Dispatcher
from station.usb_dock.slots import SlotState
from station_testbed.fake_monitor import recorder_events, removed


def tty(port: int, **kw: Any) -> dict[str, str]:
    return recorder_events(port, tty=f"/dev/ttyACM{port}", **kw)[0]


def disk(port: int, **kw: Any) -> dict[str, str]:
    return recorder_events(port, storage=f"/dev/sd{port}1", **kw)[0]


@dataclass(frozen=True)
class Seen:
    """What a session was started for, read when the dispatcher has stopped."""

    slot: str
    tty: str | None
    storage: str | None
    driver: str
    recorder: bool
    storage_ready: bool
    gone: bool


def seen(st: SlotState) -> Seen:
    return Seen(
        st.slot,
        st.tty,
        st.storage,
        st.driver,
        st.recorder,
        st.storage_ready.is_set(),
        st.gone.is_set(),
    )


def run(events: list[dict[str, str]], max_sessions: int = 4) -> tuple[list[Seen], list[Any]]:
    started: list[SlotState] = []
    changes: list[Any] = []
    d = Dispatcher(started.append, max_sessions, on_change=lambda *a: changes.append(a))
    submitted: set[Future[Any]] = set()
    for props in events:
        d.handle(props)
        submitted.update(d.futures.values())
    wait(submitted)  # stopping cancels sessions not started yet: let these run first
    d.stop()
    return [seen(st) for st in started], changes


SERIAL_1 = Seen("1-1", "/dev/ttyACM1", "/dev/sd11", "serial", True, True, False)

TABLE = [
    pytest.param([tty(1), disk(1)], [SERIAL_1], id="serial: port then storage, one session"),
    pytest.param([disk(1), tty(1)], [SERIAL_1], id="serial: storage first, starts on the port"),
    pytest.param(
        [tty(1)],
        [Seen("1-1", "/dev/ttyACM1", None, "serial", True, True, False)],
        id="serial: port only, the session waits (woken by the stop)",
    ),
    pytest.param(
        [disk(3, driver="mass-storage", usb_serial="USB123")],
        [Seen("1-3", None, "/dev/sd31", "mass-storage", True, True, False)],
        id="mass storage: starts on its storage",
    ),
    pytest.param(
        [disk(2, recorder=False, usb_serial="STICK")],
        [Seen("1-2", None, "/dev/sd21", "unknown", False, True, False)],
        id="a USB stick: a session that will refuse it",
    ),
    pytest.param([tty(1, recorder=False)], [], id="a modem's port: not ours"),
    pytest.param([disk(1, fstype="")], [], id="a whole disk without a file system: wait"),
    pytest.param([{**disk(1), "ID_BUS": "ata"}], [], id="an internal disk: not ours"),
    pytest.param([{**tty(1), "DEVPATH": "/devices/virtual/tty/ttyS0"}], [], id="no USB port"),
    pytest.param([{**tty(1), "ACTION": "bind"}], [], id="an action we do not act on"),
    pytest.param([tty(1), tty(1), disk(1), disk(1)], [SERIAL_1], id="repeated events"),
    pytest.param(
        [tty(1), tty(2), disk(2), disk(1)],
        [SERIAL_1, Seen("1-2", "/dev/ttyACM2", "/dev/sd21", "serial", True, True, False)],
        id="two slots, two sessions",
    ),
    pytest.param(
        [tty(1), removed(1)],
        [Seen("1-1", "/dev/ttyACM1", None, "serial", True, True, True)],
        id="pulled out: gone, and a session waiting for storage wakes",
    ),
    pytest.param([removed(5)], [], id="removing an empty slot"),
    pytest.param(
        [tty(1), disk(1), removed(1), tty(1), disk(1)],
        [
            Seen("1-1", "/dev/ttyACM1", "/dev/sd11", "serial", True, True, True),
            SERIAL_1,
        ],
        id="re-docked: a new slot state and a second session",
    ),
]


@pytest.mark.parametrize(("events", "sessions"), TABLE)
def test_dispatch_table(events: list[dict[str, str]], sessions: list[Seen]) -> None:
    got, _ = run(events)
    assert sorted(got, key=lambda s: (s.slot, s.gone), reverse=False) == sorted(
        sessions, key=lambda s: (s.slot, s.gone)
    )


def test_slot_changes_reach_the_status_board() -> None:
    _, changes = run([tty(1), disk(1), removed(1), disk(2, driver="mass-storage")])
    assert changes == [("1-1", "waiting"), ("1-1", "removed"), ("1-2", "waiting")]


def test_redock_waits_for_the_interrupted_session_to_let_go() -> None:
    """The same recorder back in its slot while its first session still runs: the second one
    starts only after the first has returned (serial port and mount point free again)."""
    order: list[str] = []
    release = threading.Event()
    first_running = threading.Event()
    n = [0]

    def session(st: SlotState) -> None:
        n[0] += 1
        me = n[0]
        order.append(f"start {me}")
        if me == 1:
            first_running.set()
            release.wait(30)
            order.append(f"halt seen {st.halt.is_set()}")
        order.append(f"end {me}")

    d = Dispatcher(session, 2)
    d.handle(tty(1))
    d.handle(disk(1))
    assert first_running.wait(30)
    d.handle(removed(1))
    d.handle(tty(1))
    d.handle(disk(1))
    release.set()
    d.stop()
    assert order == ["start 1", "halt seen True", "end 1", "start 2", "end 2"]


def test_a_session_that_raises_does_not_stop_the_dispatcher() -> None:
    done: list[str] = []

    def session(st: SlotState) -> None:
        if st.slot == "1-1":
            raise RuntimeError("boom")
        done.append(st.slot)

    d = Dispatcher(session, 2)
    for props in (tty(1), disk(1), tty(2), disk(2)):
        d.handle(props)
    d.stop()
    assert done == ["1-2"]


def test_stop_halts_running_sessions() -> None:
    running = threading.Event()
    halted: list[bool] = []

    def session(st: SlotState) -> None:
        running.set()
        halted.append(st.halt.wait(30))

    d = Dispatcher(session, 1)
    d.handle(tty(1))
    assert running.wait(30)
    d.stop()
    assert halted == [True]
