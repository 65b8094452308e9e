"""The serial driver against the simulator over a real pty (no mocks)."""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from zoneinfo import ZoneInfo

import pytest

from station.errors import DeviceError
from station.recorder.serial_driver import AuthError, SerialDriver
from station.recorder.simconfig import SimConfig
from station.recorder.simulator import SimRecorder, open_pty, serve

SECRET = b"0123456789abcdef0123456789abcdef"


@contextmanager
def sim_port(**kw: object) -> Iterator[tuple[SimRecorder, str]]:
    cfg = SimConfig(secret=SECRET, **kw)  # type: ignore[arg-type]
    rec = SimRecorder(cfg)
    master, slave, name = open_pty(None)
    stop = threading.Event()
    t = threading.Thread(target=serve, args=(rec, master, stop))
    t.start()
    try:
        yield rec, name
    finally:
        stop.set()
        t.join(5)
        os.close(master)
        os.close(slave)


def test_full_conversation() -> None:
    with sim_port(drift_s=40.0, battery_pct=9) as (rec, port):
        drv = SerialDriver.open(port, timeout_s=1.0)
        try:
            ident = drv.identify()
            assert ident.serial == "ZFY0001" and ident.officer_id == "100001"
            assert ident.officer_name == "张三" and ident.unit_id == "110101000001"
            assert ident.problems() == []
            drv.authenticate(SECRET)
            assert drv.battery() == 9
            total, free = drv.storage()
            assert total == 32 * 1000**3 and free is not None and free <= total
            reading = drv.read_clock()
            assert reading is not None
            local = reading.station_mid.astimezone(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)
            drift = (reading.device_time - local).total_seconds()
            assert 39.0 < drift < 41.0  # R3: drift by round-trip midpoint
            drv.set_clock(local)
            assert abs(rec.drift_s) < 1.0 and rec.clock_sets
            drv.expose_storage()
            assert rec.storage_mode
        finally:
            drv.close()


def test_privileged_commands_need_auth() -> None:
    with sim_port() as (rec, port):
        drv = SerialDriver.open(port, timeout_s=1.0)
        try:
            with pytest.raises(DeviceError, match="AUTH"):
                drv.expose_storage()
            assert not rec.storage_mode
        finally:
            drv.close()


def test_clone_with_another_secret_fails_auth() -> None:
    with sim_port(faults=frozenset({"bad-auth"})) as (rec, port):
        drv = SerialDriver.open(port, timeout_s=1.0)
        try:
            with pytest.raises(AuthError):
                drv.authenticate(SECRET)
            assert not rec.authed
        finally:
            drv.close()


def test_station_with_wrong_secret_is_refused() -> None:
    with sim_port() as (rec, port):
        drv = SerialDriver.open(port, timeout_s=1.0)
        try:
            with pytest.raises(AuthError, match="rejected"):
                drv.authenticate(b"wrong")
            assert not rec.authed
        finally:
            drv.close()


def test_silence_is_reported_with_the_port() -> None:
    with sim_port(faults=frozenset({"silent"})) as (_rec, port):
        with pytest.raises(DeviceError, match="no reply to HELLO") as e:
            SerialDriver.open(port, timeout_s=0.2, retries=1)
        assert port in str(e.value)


@pytest.mark.parametrize("fault", ["garbage", "partial"])
def test_garbled_replies_fail_after_retries(fault: str) -> None:
    with sim_port(faults=frozenset({fault})) as (rec, port):
        with pytest.raises(DeviceError):
            SerialDriver.open(port, timeout_s=0.3, retries=2)
        assert rec.replies >= 3  # one try + two retries


def test_one_garbled_reply_is_retried() -> None:
    with sim_port(faults=frozenset({"garbage-once"})) as (_rec, port):
        drv = SerialDriver.open(port, timeout_s=0.5)
        try:
            assert drv.identify().serial == "ZFY0001"
        finally:
            drv.close()


def test_oversized_reply_is_cut_off() -> None:
    with sim_port(faults=frozenset({"oversized"})) as (_rec, port):
        drv = SerialDriver.open(port, timeout_s=0.5, retries=1)
        try:
            with pytest.raises(DeviceError, match="oversized"):
                drv.identify()
            assert drv.battery() == 87  # the link is usable afterwards
        finally:
            drv.close()


def test_two_ids_from_one_recorder() -> None:
    with sim_port(faults=frozenset({"wrong-id"})) as (_rec, port):
        drv = SerialDriver.open(port, timeout_s=0.5)
        try:
            with pytest.raises(DeviceError, match="two ids"):
                drv.identify()
        finally:
            drv.close()


def test_clock_in_year_2000_is_read_as_is() -> None:
    with sim_port(faults=frozenset({"clock-2000"})) as (_rec, port):
        drv = SerialDriver.open(port, timeout_s=0.5)
        try:
            r = drv.read_clock()
            assert r is not None and r.device_time == dt.datetime(2000, 1, 1)
        finally:
            drv.close()
