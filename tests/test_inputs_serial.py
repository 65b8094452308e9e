"""A recorder that never ends a line, or drips its reply byte by byte, cannot hold a dock
session: lines are bounded in length and every command has an overall deadline (real ptys,
the simulator's injected faults)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from test_recorder_serial import sim_port

from station.errors import DeviceError
from station.recorder.serial_driver import SerialDriver

# A generous watchdog, not a speed goal: a call still running after this long is a hang.
HANG_S = 60.0


def finishes(fn: Callable[[], Any]) -> BaseException | None:
    """Run ``fn`` in a thread; fail the test if it hangs; return what it raised."""
    box: list[BaseException | None] = [None]

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # handed to the test
            box[0] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(HANG_S)
    assert not t.is_alive(), f"the driver hung for {HANG_S:g} s"
    return box[0]


def test_stream_without_newline_fails_the_command() -> None:
    """Endless bytes and no newline: the reader stops at its line limit, the command fails."""
    with sim_port(faults=frozenset({"no-newline"})) as (rec, port):
        exc = finishes(lambda: SerialDriver.open(port, timeout_s=0.5, retries=1))
        assert isinstance(exc, DeviceError), exc
        assert "newline" in exc.render() or "deadline" in exc.render()
        assert port in exc.render()
        assert rec.bytes_sent > 1024  # it really streamed past one frame


def test_dripping_reply_hits_the_command_deadline() -> None:
    """One byte every 0.4 s keeps each read alive under a 0.5 s timeout; the per-command
    deadline ends it anyway."""
    with sim_port(faults=frozenset({"drip"})) as (rec, port):
        exc = finishes(lambda: SerialDriver.open(port, timeout_s=0.5, retries=2, deadline_s=2.0))
        assert isinstance(exc, DeviceError), exc
        assert "deadline" in exc.render() and "HELLO" in exc.render()
        assert rec.bytes_sent > 0


def test_default_deadline_is_bounded_by_the_timeout() -> None:
    with sim_port(faults=frozenset({"drip"})) as (_rec, port):
        exc = finishes(lambda: SerialDriver.open(port, timeout_s=0.5, retries=2))
        assert isinstance(exc, DeviceError) and "deadline" in exc.render()


def test_a_slow_but_honest_recorder_still_works() -> None:
    """The deadline leaves room for an ordinary reply."""
    with sim_port(faults=frozenset({"drip"}), drip_s=0.001) as (_rec, port):
        drv = SerialDriver.open(port, timeout_s=1.0, deadline_s=20.0)
        try:
            assert drv.identify().serial == "ZFY0001"
        finally:
            drv.close()


@pytest.mark.parametrize("fault", ["no-newline", "drip"])
def test_new_faults_are_listed_for_the_cli(fault: str) -> None:
    from station.recorder.simconfig import FAULTS

    assert fault in FAULTS


@pytest.mark.parametrize("name", ["张\u202e三", "张\n三", "张\x1b[2J三"])
def test_identity_with_control_characters_is_refused(name: str) -> None:
    """A recorder's officer name becomes a catalog tag (R5/R6): no line breaks, escapes or
    bidi overrides."""
    with sim_port(officer_name=name) as (_rec, port):
        drv = SerialDriver.open(port, timeout_s=1.0)
        try:
            with pytest.raises(DeviceError, match="officer_name holds the control character"):
                drv.identify()
        finally:
            drv.close()
