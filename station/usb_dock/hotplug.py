"""Hotplug: a pyudev monitor whose callback only queues (DESIGN.md invariant 4), and the
dispatcher that pairs a recorder's serial and storage children per slot and hands each docked
recorder to a bounded pool of dock sessions.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import pyudev

from station.log import get
from station.usb_dock.slots import DockEvent, SlotState, classify

log = get()

SUBSYSTEMS = ("tty", "block", "usb")
QUEUE_MAX = 1024

Props = Mapping[str, str]


def device_props(device: pyudev.Device, action: str | None = None) -> dict[str, str]:
    props = {str(k): str(v) for k, v in device.properties.items()}
    props["ACTION"] = action or device.action or "add"
    props.setdefault("DEVPATH", device.device_path)
    props.setdefault("SUBSYSTEM", device.subsystem or "")
    if device.device_node:
        props.setdefault("DEVNAME", device.device_node)
    return props


class EventSource(Protocol):
    """Where the daemon's udev events come from: started, stopped, and the devices already
    present at start-up. :class:`Monitor` is the kernel's; tests hand the daemon one fed
    through a real pipe (``station_testbed.fake_monitor``), as pyudev's own tests do."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def coldplug(self) -> Iterable[Props]: ...


class Monitor:
    """pyudev's observer thread; its callback copies the properties into a bounded queue."""

    def __init__(self, events: queue.Queue[Props | None], context: pyudev.Context | None = None):
        self.context = context or pyudev.Context()
        self.events = events
        self.monitor = pyudev.Monitor.from_netlink(self.context)
        for sub in SUBSYSTEMS:
            self.monitor.filter_by(sub)
        self.observer = pyudev.MonitorObserver(self.monitor, callback=self._on_event, name="udev")

    def _on_event(self, device: pyudev.Device) -> None:
        # Invariant 4: nothing else happens here.
        try:
            self.events.put_nowait(device_props(device))
        except queue.Full:
            log.error("dock.event_dropped", devpath=device.device_path)

    def start(self) -> None:
        self.observer.start()

    def stop(self) -> None:
        self.observer.send_stop()
        self.observer.join(5)

    def coldplug(self) -> Iterable[Props]:
        """Devices already present at start-up, parents first (resume after a restart)."""
        found: list[dict[str, str]] = []
        for sub in ("tty", "block"):
            for dev in self.context.list_devices(subsystem=sub):
                found.append(device_props(dev, "add"))
        return sorted(found, key=lambda p: (p.get("SUBSYSTEM") != "tty", p.get("DEVPATH", "")))


class Dispatcher:
    """Consumes queued udev events; one SlotState per docked recorder; sessions in a pool."""

    def __init__(
        self,
        run_session: Callable[[SlotState], Any],
        max_sessions: int,
        on_change: Callable[[str, str], None] | None = None,
    ) -> None:
        self.run_session = run_session
        self.pool = ThreadPoolExecutor(max_workers=max_sessions, thread_name_prefix="dock")
        self.slots: dict[str, SlotState] = {}
        self.futures: dict[str, Future[Any]] = {}
        self.winding: dict[str, Future[Any]] = {}  # sessions of slots just emptied
        self.all_states: list[SlotState] = []
        self.on_change = on_change

    def handle(self, props: Props) -> None:
        ev = classify(props)
        if ev is None:
            return
        log.info("dock.event", action=ev.action, slot=ev.slot, part=ev.part, devname=ev.devname)
        if ev.action == "remove":
            self._removed(ev)
        elif ev.action == "add":
            self._added(ev)

    def _added(self, ev: DockEvent) -> None:
        st = self.slots.get(ev.slot)
        if st is None:
            st = SlotState(ev.slot)
            self.slots[ev.slot] = st
            self.all_states.append(st)
            log.info("dock.added", slot=ev.slot, recorder=ev.recorder, driver=ev.driver)
        st.recorder = st.recorder or ev.recorder
        if ev.recorder:
            st.driver = ev.driver
        st.usb_serial = st.usb_serial or ev.usb_serial
        if ev.part == "tty":
            st.tty = ev.devname
        elif ev.part == "storage":
            st.storage, st.fstype = ev.devname, ev.fstype
            st.storage_ready.set()
        start = (ev.part == "tty" and st.driver == "serial") or (
            ev.part == "storage" and st.driver != "serial"
        )
        if start and ev.slot not in self.futures:
            self._start(st)

    def _start(self, st: SlotState) -> None:
        if self.on_change:
            self.on_change(st.slot, "waiting")
        prev = self.winding.pop(st.slot, None)
        fut = self.pool.submit(self._guarded, st, prev)
        self.futures[st.slot] = fut

    def _guarded(self, st: SlotState, prev: Future[Any] | None) -> Any:
        if prev is not None:
            # The same slot re-docked quickly: let the interrupted session let go of the
            # serial port and the mount point first.
            try:
                prev.result()
            except BaseException:
                pass
        try:
            return self.run_session(st)
        except Exception:  # the session has its own boundary; this is the last line
            log.exception("session.crashed", slot=st.slot)
            return None

    def _removed(self, ev: DockEvent) -> None:
        st = self.slots.pop(ev.slot, None)
        if st is None:
            return
        st.gone.set()
        st.halt.set()
        st.storage_ready.set()  # wake a session waiting for storage: it will see "gone"
        log.info("dock.removed", slot=ev.slot, part=ev.part)
        fut = self.futures.pop(ev.slot, None)
        if fut is not None:
            if fut.cancel():
                log.info("dock.session_cancelled", slot=ev.slot)
            elif not fut.done():
                self.winding[ev.slot] = fut
        if self.on_change:
            self.on_change(ev.slot, "removed")

    def stop(self) -> None:
        for st in self.all_states:
            st.halt.set()
            st.storage_ready.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
