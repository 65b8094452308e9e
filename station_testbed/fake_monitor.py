"""udev events for the daemon without udev: a monitor fed through a real ``os.pipe()``.

pyudev's own tests fake the monitor the same way, so ``select`` works as in production. The test
writes one JSON object of udev properties per line (``send``, or ``dock``/``undock`` for a whole
recorder); a reader thread waits in ``select`` and queues each event exactly as
:class:`station.usb_dock.hotplug.Monitor`'s callback does. Hand the instance to
``Daemon(monitor=fake)``: the daemon calls it with its event queue.

Properties follow the station's udev rule (``udev-rules/``): ``STATION_RECORDER=1`` and
``STATION_DRIVER`` on a recorder's children, the USB port path (``1-<port>``) in ``DEVPATH``.
"""

from __future__ import annotations

import json
import os
import queue
import select
import threading
from collections.abc import Iterable, Mapping
from typing import Any

Props = Mapping[str, str]


class FakeMonitor:
    def __init__(self, present: Iterable[Props] = ()) -> None:
        self.present = [dict(p) for p in present]  # what coldplug finds at start-up
        self.read_fd, self.write_fd = os.pipe()
        self.events: queue.Queue[Props | None] | None = None
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    # -- the daemon's side -----------------------------------------------------------------
    def __call__(self, events: queue.Queue[Props | None]) -> FakeMonitor:
        self.events = events
        return self

    def start(self) -> None:
        self.thread = threading.Thread(target=self._read, name="fake-udev", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        with self.lock:
            if self.write_fd >= 0:
                os.close(self.write_fd)  # end of file: the reader returns
                self.write_fd = -1
        if self.thread is not None:
            self.thread.join(5)
        os.close(self.read_fd)

    def coldplug(self) -> Iterable[Props]:
        return list(self.present)

    def _read(self) -> None:
        assert self.events is not None
        buf = b""
        while True:
            select.select([self.read_fd], [], [])
            chunk = os.read(self.read_fd, 65536)
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    self.events.put_nowait(json.loads(line))
                except queue.Full:
                    pass  # as the real monitor: dropped, never blocking the reader

    # -- the test's side -------------------------------------------------------------------
    def send(self, props: Mapping[str, Any]) -> None:
        data = json.dumps({k: str(v) for k, v in props.items()}).encode() + b"\n"
        with self.lock:
            os.write(self.write_fd, data)

    def dock(
        self,
        port: int,
        *,
        tty: str | None = None,
        storage: str | None = None,
        fstype: str = "exfat",
        driver: str = "serial",
        usb_serial: str = "",
        recorder: bool = True,
    ) -> None:
        """A recorder docked in slot ``1-<port>``: its serial child, then its storage child."""
        for props in recorder_events(
            port,
            tty=tty,
            storage=storage,
            fstype=fstype,
            driver=driver,
            usb_serial=usb_serial,
            recorder=recorder,
        ):
            self.send(props)

    def undock(self, port: int) -> None:
        self.send(removed(port))


def recorder_events(
    port: int,
    *,
    tty: str | None = None,
    storage: str | None = None,
    fstype: str = "exfat",
    driver: str = "serial",
    usb_serial: str = "",
    recorder: bool = True,
    action: str = "add",
) -> list[dict[str, str]]:
    """The udev properties of a recorder's children as the station's rule tags them."""
    usb = f"/devices/pci0000:00/0000:00:14.0/usb1/1-{port}"
    tag = {"STATION_RECORDER": "1", "STATION_DRIVER": driver} if recorder else {}
    serial = {"ID_SERIAL_SHORT": usb_serial} if usb_serial else {}
    out: list[dict[str, str]] = []
    if tty is not None:
        out.append(
            {
                "ACTION": action,
                "SUBSYSTEM": "tty",
                "DEVPATH": f"{usb}/1-{port}:1.0/tty/ttyACM{port}",
                "DEVNAME": tty,
                **tag,
                **serial,
            }
        )
    if storage is not None:
        out.append(
            {
                "ACTION": action,
                "SUBSYSTEM": "block",
                "DEVPATH": f"{usb}/1-{port}:1.1/host{port}/block/sd{port}/sd{port}1",
                "DEVNAME": storage,
                "ID_BUS": "usb",
                "ID_FS_TYPE": fstype,
                "DEVTYPE": "partition",
                **tag,
                **serial,
            }
        )
    return out


def removed(port: int) -> dict[str, str]:
    """The USB device itself going away (the whole recorder pulled out)."""
    return {
        "ACTION": "remove",
        "SUBSYSTEM": "usb",
        "DEVTYPE": "usb_device",
        "DEVPATH": f"/devices/pci0000:00/0000:00:14.0/usb1/1-{port}",
    }
