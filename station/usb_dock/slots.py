"""What hotplug knows about each dock slot, and which slot holds which device id.

Pure classification of udev properties (``classify``) plus small thread-safe state objects
shared by the dispatcher and the session workers.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

_USB_PORT = re.compile(r"^\d+-\d+(?:\.\d+)*$")


@dataclass(frozen=True)
class DockEvent:
    action: str  # add | remove | change
    slot: str  # USB port path, e.g. "1-1.2"
    part: str  # tty | storage | usb
    devname: str | None
    recorder: bool  # tagged by our udev rule (STATION_RECORDER=1)
    driver: str  # serial | mass-storage | unknown
    fstype: str | None = None
    usb_serial: str | None = None
    devpath: str = ""


def slot_of(devpath: str) -> str | None:
    """The USB port path in a sysfs device path (the last ``B-P[.P…]`` component)."""
    found = None
    for part in devpath.split("/"):
        if _USB_PORT.match(part):
            found = part
    return found


def classify(props: Mapping[str, str]) -> DockEvent | None:
    """A udev event's properties -> a dock event, or None when it is none of our business."""
    action = props.get("ACTION", "add")
    devpath = props.get("DEVPATH", "")
    subsystem = props.get("SUBSYSTEM", "")
    slot = slot_of(devpath)
    if slot is None or action not in ("add", "remove", "change"):
        return None
    recorder = props.get("STATION_RECORDER") == "1"
    driver = props.get("STATION_DRIVER", "serial" if recorder else "unknown")
    usb_serial = props.get("STATION_SERIAL") or props.get("ID_SERIAL_SHORT")
    if subsystem == "tty":
        if not recorder:
            return None  # a modem or console cable: not ours
        part = "tty"
    elif subsystem == "block":
        if props.get("ID_BUS", "usb") != "usb":
            return None
        if action == "add" and not props.get("ID_FS_TYPE"):
            return None  # a whole disk with partitions: wait for the partition
        part = "storage"
    elif subsystem == "usb" and props.get("DEVTYPE") == "usb_device":
        if action != "remove":
            return None
        part = "usb"
    else:
        return None
    return DockEvent(
        action=action,
        slot=slot,
        part=part,
        devname=props.get("DEVNAME"),
        recorder=recorder,
        driver=driver,
        fstype=props.get("ID_FS_TYPE"),
        usb_serial=usb_serial,
        devpath=devpath,
    )


@dataclass
class SlotState:
    slot: str
    tty: str | None = None
    storage: str | None = None
    fstype: str | None = None
    recorder: bool = False
    driver: str = "unknown"
    usb_serial: str | None = None
    storage_ready: threading.Event = field(default_factory=threading.Event)
    gone: threading.Event = field(default_factory=threading.Event)
    halt: threading.Event = field(default_factory=threading.Event)  # gone or station stopping


class DeviceClaims:
    """One device id in one slot at a time (two recorders claiming one id are refused)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.holders: dict[str, SlotState] = {}

    def claim(self, device_id: str, state: SlotState, timeout: float = 60.0) -> str | None:
        """Claim ``device_id`` for ``state``; returns the other slot when it is still docked
        there (a duplicate id), else None. Waits for a session of a recorder that was just
        pulled out to wind down (the same recorder docked again quickly)."""
        with self.cond:
            while True:
                other = self.holders.get(device_id)
                if other is None or other is state:
                    self.holders[device_id] = state
                    return None
                if not other.gone.is_set():
                    return other.slot
                if not self.cond.wait(timeout):
                    return other.slot

    def release(self, device_id: str, state: SlotState) -> None:
        with self.cond:
            if self.holders.get(device_id) is state:
                del self.holders[device_id]
                self.cond.notify_all()
