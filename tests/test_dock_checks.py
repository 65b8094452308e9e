"""Pure parts of the dock: checks (R3, R4), udev event classification, device-id claims."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from station.config import DockSection
from station.recorder.base import ClockReading, Identity
from station.usb_dock.checks import Enrolment, assess, check_clock, check_health
from station.usb_dock.slots import DeviceClaims, SlotState, classify, slot_of

TZ = "Asia/Shanghai"
UTC = dt.UTC
CFG = DockSection()
NOW = dt.datetime(2026, 11, 21, 2, 0, 0, tzinfo=UTC)  # 10:00 in Beijing


def reading(offset_s: float, device: dt.datetime | None = None) -> ClockReading:
    local = dt.datetime(2026, 11, 21, 10, 0, 0) + dt.timedelta(seconds=offset_s)
    return ClockReading(device or local, NOW, 0.01)


@pytest.mark.parametrize(
    ("offset", "codes", "correct"),
    [
        (0.0, [], 0.0),
        (2.9, [], 2.9),
        (3.0, [], 3.0),  # the threshold itself is still fine
        (3.1, ["clock_drift"], 3.1),
        (-40.0, ["clock_drift"], -40.0),
        (86400.0, ["clock_drift"], 86400.0),
        (86401.0, ["clock_implausible"], None),
    ],
)
def test_clock_drift_table(offset: float, codes: list[str], correct: float | None) -> None:
    flags, drift, corr = check_clock(reading(offset), CFG, TZ)
    assert [f.code for f in flags] == codes
    assert drift == pytest.approx(offset)
    assert corr == (None if correct is None else pytest.approx(correct))


def test_clock_in_2000_is_implausible_and_unknown_is_unknown() -> None:
    flags, drift, corr = check_clock(reading(0, dt.datetime(2000, 1, 1)), CFG, TZ)
    assert [f.code for f in flags] == ["clock_implausible"] and corr is None
    assert drift is not None and drift < 0
    flags, drift, corr = check_clock(None, CFG, TZ)
    assert [f.code for f in flags] == ["clock_unknown"] and drift is None and corr is None


@pytest.mark.parametrize(
    ("battery", "total", "free", "codes"),
    [
        (87, 100, 50, []),
        (20, 100, 50, []),
        (19, 100, 50, ["battery_low"]),
        (None, 100, 50, ["battery_unknown"]),
        (87, 100, 10, ["storage_full"]),  # 90 % used
        (87, 100, 11, []),
        (87, None, None, ["storage_unknown"]),
    ],
)
def test_health_table(
    battery: int | None, total: int | None, free: int | None, codes: list[str]
) -> None:
    assert [f.code for f in check_health(battery, total, free, CFG)] == codes


def test_identity_and_enrolment() -> None:
    ident = Identity("ZFY0001", "100001", "张三", "110101000001", "局")
    enrolled = Enrolment("ZFY0001", True, "100001", "110101000001")
    a = assess(ident, enrolled, 80, 100, 50, reading(0), CFG, TZ)
    assert a.flags == [] and not a.refused
    a = assess(ident, None, 80, 100, 50, reading(0), CFG, TZ)
    assert a.codes() == ["unknown_device"] and a.refused
    a = assess(ident, Enrolment("ZFY0001", False, None, None), 80, 100, 50, None, CFG, TZ)
    assert a.refused  # revoked
    other = Enrolment("ZFY0001", True, "100009", "110101000009")
    a = assess(ident, other, 80, 100, 50, reading(0), CFG, TZ)
    assert a.codes() == ["officer_mismatch", "unit_mismatch"] and not a.refused
    bad = Identity("ZF1", "12", None, "1", None)
    a = assess(bad, enrolled, 80, 100, 50, reading(0), CFG, TZ)
    assert "identity_invalid" in a.codes() and a.refused


def test_slot_of_usb_paths() -> None:
    assert (
        slot_of("/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.2/1-1.2:1.0/tty/ttyACM0") == "1-1.2"
    )
    assert slot_of("/devices/usb1/1-3/sdb1") == "1-3"
    assert slot_of("/devices/virtual/tty/tty0") is None


@pytest.mark.parametrize(
    ("props", "expect"),
    [
        (
            {
                "SUBSYSTEM": "tty",
                "DEVPATH": "/devices/usb1/1-1/ttyACM0",
                "STATION_RECORDER": "1",
                "DEVNAME": "/dev/ttyACM0",
            },
            ("tty", "serial", True),
        ),
        ({"SUBSYSTEM": "tty", "DEVPATH": "/devices/usb1/1-1/ttyUSB0"}, None),  # a modem cable
        ({"SUBSYSTEM": "block", "DEVPATH": "/devices/usb1/1-2/sdb", "ID_BUS": "usb"}, None),
        (
            {
                "SUBSYSTEM": "block",
                "DEVPATH": "/devices/usb1/1-2/sdb/sdb1",
                "ID_BUS": "usb",
                "ID_FS_TYPE": "vfat",
            },
            ("storage", "unknown", False),
        ),  # a USB stick
        (
            {"SUBSYSTEM": "block", "DEVPATH": "/devices/pci0/ata1/sda/sda1", "ID_FS_TYPE": "ext4"},
            None,
        ),  # an internal disk
        (
            {
                "SUBSYSTEM": "block",
                "DEVPATH": "/devices/usb1/1-2/sdb/sdb1",
                "ID_BUS": "ata",
                "ID_FS_TYPE": "ext4",
            },
            None,
        ),
        (
            {
                "SUBSYSTEM": "usb",
                "DEVTYPE": "usb_device",
                "DEVPATH": "/devices/usb1/1-2",
                "ACTION": "remove",
            },
            ("usb", "unknown", False),
        ),
        ({"SUBSYSTEM": "usb", "DEVTYPE": "usb_device", "DEVPATH": "/devices/usb1/1-2"}, None),
        (
            {
                "SUBSYSTEM": "block",
                "DEVPATH": "/devices/usb1/1-4/sdc1",
                "ID_BUS": "usb",
                "ID_FS_TYPE": "exfat",
                "STATION_RECORDER": "1",
                "STATION_DRIVER": "mass-storage",
            },
            ("storage", "mass-storage", True),
        ),
    ],
)
def test_classify(props: dict[str, str], expect: tuple[str, str, bool] | None) -> None:
    ev = classify(props)
    if expect is None:
        assert ev is None
    else:
        assert ev is not None and (ev.part, ev.driver, ev.recorder) == expect


def test_claims_duplicate_and_wait_for_a_pulled_recorder() -> None:
    claims = DeviceClaims()
    a, b = SlotState("1-1"), SlotState("1-2")
    assert claims.claim("ZFY0001", a) is None
    assert claims.claim("ZFY0001", b) == "1-1"  # still docked there: a duplicate
    a.gone.set()  # pulled out, its session winding down
    got: list[str | None] = []
    t = threading.Thread(target=lambda: got.append(claims.claim("ZFY0001", b, timeout=10)))
    t.start()
    claims.release("ZFY0001", a)
    t.join(10)
    assert got == [None] and claims.holders["ZFY0001"] is b


@pytest.mark.parametrize(
    ("state", "since", "codes", "refused", "words"),
    [
        ("in_service", None, [], False, ""),
        ("in_repair", "2026-11-20T02:00:00.000000Z", ["device_in_repair"], True, "已送修"),
        ("in_repair", None, ["device_in_repair"], True, "in repair"),
        ("retired", "2026-01-01T00:00:00.000000Z", ["device_retired"], True, "已报废"),
    ],
)
def test_device_service_state_table(
    state: str, since: str | None, codes: list[str], refused: bool, words: str
) -> None:
    """R4: a device in repair (送修) or retired is refused, with a flag that says so."""
    ident = Identity("ZFY0001", "100001", "张三", "110101000001", "局")
    enrolment = Enrolment("ZFY0001", True, "100001", "110101000001", state, since)
    a = assess(ident, enrolment, 80, 100, 50, reading(0), CFG, TZ)
    assert a.codes() == codes and a.refused is refused
    if codes:
        assert words in a.flags[0].message and "ZFY0001" in a.flags[0].message
    if since:
        assert since[:10] in a.flags[0].message
