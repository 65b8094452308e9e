"""``station run``: the dock daemon.

One stop event for the whole process; signal handlers only set it. Threads: pyudev's observer
(queues events only), the dispatcher (pairs events into slots, submits sessions), a bounded pool
of dock sessions, and the main thread, which waits on the stop event and pings the systemd
watchdog. Nothing polls: an idle station sleeps in ``select``/``Event.wait``.

The udev event source, the mounter and the clock are injected (defaults: the kernel's netlink
monitor, real read-only mounts, the system clock), so the whole daemon runs in tests without
root and without udev.

Extra services (the transcode queue, the inbox watcher, …) are objects with ``start()`` and
``stop()`` handed to :class:`Daemon`; they are started after the dock is ready and stopped before
it, in reverse order. ``on_session_end`` callbacks get each session's :class:`Outcome` (e.g. the
transcode service's ``wake``), each in its own error boundary.
"""

from __future__ import annotations

import datetime as dt
import faulthandler
import queue
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from station.catalog import open_catalog
from station.config import Settings
from station.ingest.engine import recover_at_startup
from station.log import get
from station.sdnotify import Notifier
from station.status import StatusBoard
from station.timeutil import set_station_zone, utcnow
from station.usb_dock.hotplug import Dispatcher, EventSource, Monitor, Props
from station.usb_dock.mount import Mounter, is_mountpoint, run_helper
from station.usb_dock.session import DockSession, Outcome
from station.usb_dock.slots import DeviceClaims, SlotState
from station.vault import Vault

log = get()


class Service(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


class Daemon:
    def __init__(
        self,
        vault: Vault,
        settings: Settings,
        *,
        services: Sequence[Service] = (),
        on_session_end: Sequence[Callable[[Outcome], None]] = (),
        on_session_start: Sequence[Callable[[], None]] = (),
        on_session_finally: Sequence[Callable[[], None]] = (),
        notifier: Notifier | None = None,
        actor: str = "station",
        monitor: Callable[[queue.Queue[Props | None]], EventSource] = Monitor,
        mounter: Mounter | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.vault = vault
        self.make_monitor = monitor  # called with the event queue when the daemon runs
        self.mounter = mounter
        self.clock = clock
        self.settings = settings
        set_station_zone(settings.station.timezone)  # messages made in its threads
        self.services = list(services)
        self.on_session_end = list(on_session_end)  # e.g. a transcode service's wake()
        self.on_session_start = list(on_session_start)  # e.g. pause transcoding while docked
        self.on_session_finally = list(on_session_finally)  # e.g. resume it, whatever happened
        self.notifier = notifier or Notifier()
        self.actor = actor
        self.stop = threading.Event()
        self.events: queue.Queue[Props | None] = queue.Queue(maxsize=1024)
        self.board = StatusBoard(vault.run / "status.json")
        self.claims = DeviceClaims()
        self.dispatcher = Dispatcher(
            self._session, settings.dock.max_sessions, on_change=self._slot_changed
        )
        self.board.listeners.append(lambda b: self.notifier.status(b.summary()))

    # -- pieces ------------------------------------------------------------------------------
    def _session(self, st: SlotState) -> Any:
        for start in self.on_session_start:
            try:
                start()
            except Exception:
                log.exception("daemon.session_hook_failed", slot=st.slot)
        try:
            outcome = DockSession(
                self.vault,
                self.settings,
                st,
                self.board,
                self.claims,
                actor=self.actor,
                mounter=self.mounter,
                clock=self.clock,
            ).run()
        finally:
            for after in self.on_session_finally:
                try:
                    after()
                except Exception:
                    log.exception("daemon.session_hook_failed", slot=st.slot)
        for cb in self.on_session_end:
            try:
                cb(outcome)
            except Exception:
                log.exception("daemon.session_hook_failed", session_id=outcome.session_id)
        return outcome

    def _slot_changed(self, slot: str, what: str) -> None:
        if what == "removed":
            self.board.remove(slot)
        else:
            self.board.update(slot, phase=what, safe_to_undock=False, flags=[])

    def _dispatch_loop(self) -> None:
        while True:
            props = self.events.get()
            if props is None:
                return
            try:
                self.dispatcher.handle(props)
            except Exception:
                log.exception("dock.dispatch_failed", devpath=props.get("DEVPATH"))

    def recover(self) -> int:
        """Start-up: the ingest engine reaps partial copies and closes sessions a crash left
        running ('interrupted', audited); mounts left under the run directory go."""
        self.vault.init()
        db = open_catalog(self.vault.catalog_path)
        try:
            n = recover_at_startup(self.vault, db, actor=self.actor)["sessions_interrupted"]
        finally:
            db.close()
        mnt = (
            Path(self.settings.dock.mount_root)
            if self.settings.dock.mount_root
            else self.vault.run / "mnt"
        )
        if mnt.is_dir():
            for mp in mnt.iterdir():
                if is_mountpoint(mp):
                    run_helper(["umount", "-l", str(mp)], str(mp))
                    log.warning("dock.stale_mount_removed", mountpoint=str(mp))
        if n:
            log.warning("daemon.recovered", interrupted_sessions=n)
        return n

    def request_stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        self.stop.set()  # all a signal handler does

    # -- the run -------------------------------------------------------------------------------
    def run(self, *, install_signals: bool = True) -> int:
        self.settings.validate()  # refuse settings that would clear unverified files
        if install_signals:
            faulthandler.register(signal.SIGUSR1)  # stack dump on demand, for field debugging
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
        self.recover()
        monitor = self.make_monitor(self.events)
        dispatcher = threading.Thread(target=self._dispatch_loop, name="dispatch")
        dispatcher.start()
        monitor.start()
        for props in monitor.coldplug():
            self.events.put(props)
        started: list[Service] = []
        try:
            for svc in self.services:
                svc.start()
                started.append(svc)
            self.board.set_state("ready")
            self.notifier.ready(self.board.summary())
            log.info(
                "daemon.ready",
                home=str(self.vault.home),
                max_sessions=self.settings.dock.max_sessions,
            )
            interval = self.notifier.watchdog_s / 2 if self.notifier.watchdog_s else 3600.0
            while not self.stop.wait(interval):
                if dispatcher.is_alive():
                    self.notifier.watchdog()
                else:
                    log.error("daemon.dispatcher_dead")
        finally:
            log.info("daemon.stopping")
            self.notifier.stopping()
            self.board.set_state("stopping")
            monitor.stop()
            self.events.put(None)
            dispatcher.join()
            self.dispatcher.stop()
            for svc in reversed(started):
                try:
                    svc.stop()
                except Exception:
                    log.exception("daemon.service_stop_failed", service=type(svc).__name__)
            self.board.set_state("stopped")
            log.info("daemon.stopped")
        return 0
