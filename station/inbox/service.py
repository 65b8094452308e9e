"""The watched inbox service: watchers, one worker, start-up scan, rescan on overflow.

Threads: watchdog's observer threads only turn events into small tuples on a **bounded** queue
(when it is full a rescan is flagged instead — nothing waits, nothing grows). One worker thread
owns all state: it feeds the :class:`SettleTracker`, sleeps until the next drop may be ready (or
forever, when nothing is pending: an idle inbox costs no CPU) and takes ready drops in through
:func:`process_drop`, one at a time, inside an error boundary (DESIGN invariant 7).

Only one inbox service runs per station home: it holds ``run/inbox.lock``. The CLI's
``station inbox rescan|assign`` poke a running service through ``run/inbox.rescan``.
"""

from __future__ import annotations

import fcntl
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchdog.observers.api import BaseObserver, ObservedWatch

from station.catalog import open_catalog
from station.config import Settings
from station.errors import StationError
from station.inbox import store
from station.inbox.folders import FolderState, FolderWatching
from station.inbox.processor import DropOutcome, InboxEnv, IngestFn, process_drop
from station.inbox.scan import (
    DROP_ERROR_NAME,
    ERROR_SUFFIX,
    drop_name_for,
    is_ignored_name,
    is_station_file,
    list_drop_names,
)
from station.inbox.settle import Change, DropKey, SettleTracker
from station.inbox.store import drop_summary
from station.inbox.watch import OverflowEvent
from station.inbox.writers import writers
from station.log import get
from station.vault import Vault

log = get()

LOCK_NAME = "inbox.lock"
POKE_NAME = "inbox.rescan"
RETRY_AFTER_ERROR_S = 60.0

_CHANGES: dict[str, Change] = {
    "created": "created",
    "modified": "modified",
    "closed": "closed",
    "deleted": "deleted",
    "attrib": "attrib",
}


class InboxBusy(StationError):
    """收件箱服务已在运行 / Another inbox service is running for this station."""


@dataclass
class _Counters:
    events: int = 0
    overflows: int = 0
    queue_full: int = 0
    rescans: int = 0
    drops_processed: int = 0
    last_error: str | None = None
    last_drop: dict[str, Any] | None = None
    extra: dict[str, int] = field(default_factory=dict)


class InboxService(FolderWatching):
    """Watch ``settings.inbox.folders`` and ingest every complete drop."""

    def __init__(
        self,
        vault: Vault,
        settings: Settings,
        *,
        actor: str = "inbox",
        ingest: IngestFn | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.vault = vault
        self.settings = settings
        self.actor = actor
        self.ingest = ingest
        self.clock = clock
        self.tracker = SettleTracker(settings.inbox.settle_seconds)
        self.folders: dict[str, FolderState] = {}
        self.counters = _Counters()
        self._q: queue.Queue[tuple[str, str, str, str]] = queue.Queue(
            maxsize=settings.inbox.event_queue_max
        )
        self._stop = threading.Event()
        self._ctl = threading.Lock()
        self._rescan_pending = False
        self._lost_events = False
        self._retry_pending = False
        self._retry_keys: set[DropKey] = set()
        self._new_settings: Settings | None = None
        self._busy = False
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self._observers: dict[str, BaseObserver] = {}
        self._run_watch: ObservedWatch | None = None
        self._lock_fd: int | None = None
        self._env: InboxEnv | None = None
        # Called (on the worker thread) with status() after each drop and folder change, e.g.
        # to refresh the daemon's status board. A failing listener is logged, never fatal.
        self.status_listeners: list[Callable[[dict[str, Any]], None]] = []
        # Called after a drop brought new recordings, e.g. ``TranscodeService.wake`` so the
        # archival derivative job starts at once, as after a dock session.
        self.ingest_listeners: list[Callable[[DropOutcome], None]] = []

    # ---- public face ------------------------------------------------------------------------
    def start(self) -> None:
        """Take the inbox lock, watch the folders, scan them once, start the worker."""
        self.vault.run.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.vault.run / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InboxBusy(where=str(self.vault.run / LOCK_NAME)) from None
        self._lock_fd = fd
        db = open_catalog(self.vault.catalog_path)
        self._env = InboxEnv(
            self.vault, db, self.settings, actor=self.actor, ingest=self.ingest, stop=self._stop
        )
        self._stop.clear()
        for path in self.settings.inbox.folders:
            self._add_folder(Path(path))
        self._watch_run_dir()
        self._rescan_pending = True  # start-up scan: nothing dropped while we were down is lost
        self._wake()
        self._thread = threading.Thread(target=self._loop, name="inbox-worker", daemon=False)
        self._thread.start()
        log.info(
            "inbox.started",
            folders=[str(f.path) for f in self.folders.values()],
            modes={k: f.mode for k, f in self.folders.items()},
        )

    def stop(self, timeout: float = 60.0) -> None:
        """Stop watching; an ingest in progress stops between files, verified work is kept."""
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        for obs in self._observers.values():
            obs.stop()
        for obs in self._observers.values():
            obs.join(10)
        self._observers.clear()
        if self._env is not None:
            self._env.db.close()
            self._env = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        log.info("inbox.stopped")

    def rescan(self, *, retry_failed: bool = False) -> None:
        with self._ctl:
            self._rescan_pending = True
            self._retry_pending = self._retry_pending or retry_failed
        self._wake()

    def update_settings(self, settings: Settings) -> None:
        """Apply new settings without a restart (folders, settle time, keep/remove)."""
        with self._ctl:
            self._new_settings = settings
        self._wake()

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is pending (no queued event, no drop settling, no rescan)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while not self._is_idle():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.5))
        return True

    def status(self) -> dict[str, Any]:
        """For the daemon's status: folders, pending drops, and the catalog's drop counts.
        Safe to call from another thread (it reads snapshots; the catalog on its own
        connection)."""
        for _ in range(5):
            try:
                return self._status()
            except RuntimeError:  # a dict changed size under us: read again
                continue
        return self._status()

    def _status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "running": self._thread is not None and self._thread.is_alive(),
            "folders": [
                {
                    "path": str(f.path),
                    "mode": f.mode,
                    "present": f.present,
                    "watching": f.watch is not None,
                    "error": f.error,
                }
                for f in list(self.folders.values())
            ],
            "settling": [{"folder": k[0], "drop": k[1]} for k in self.tracker.pending()],
            "busy": self._busy,
            "queued_events": self._q.qsize(),
            "events": self.counters.events,
            "overflows": self.counters.overflows,
            "queue_full": self.counters.queue_full,
            "rescans": self.counters.rescans,
            "drops_processed": self.counters.drops_processed,
            "last_drop": self.counters.last_drop,
            "last_error": self.counters.last_error,
        }
        out.update(drop_summary(self.vault))
        return out

    # ---- event intake (watchdog threads) ---------------------------------------------------
    def _put(self, item: tuple[str, str, str, str]) -> None:
        try:
            self._q.put_nowait(item)
        except queue.Full:
            with self._ctl:
                self._rescan_pending = True
                self._lost_events = True
            self.counters.queue_full += 1

    def _wake(self) -> None:
        try:
            self._q.put_nowait(("wake", "", "", ""))
        except queue.Full:
            pass  # the worker has events to read anyway

    # ---- the worker ------------------------------------------------------------------------
    def _is_idle(self) -> bool:
        return (
            not self._busy
            and self._q.empty()
            and len(self.tracker) == 0
            and not self._rescan_pending
            and self._new_settings is None
        )

    def _loop(self) -> None:
        while not self._stop.is_set():
            due = self.tracker.next_due()
            timeout = None if due is None else max(0.0, due - self.clock())
            with self._idle:
                self._idle.notify_all()
            try:
                item: tuple[str, str, str, str] | None = self._q.get(timeout=timeout)
            except queue.Empty:
                item = None
            if self._stop.is_set():
                break
            self._busy = True
            try:
                self._step(item)
            except Exception as exc:  # error boundary: the service keeps running
                self.counters.last_error = repr(exc)
                log.exception("inbox.worker_error", error=repr(exc))
            finally:
                self._busy = False
        with self._idle:
            self._idle.notify_all()

    def _step(self, first: tuple[str, str, str, str] | None) -> None:
        items = [first] if first is not None else []
        for _ in range(4096):
            try:
                items.append(self._q.get_nowait())
            except queue.Empty:
                break
        now = self.clock()
        for item in items:
            self._apply(item, now)
        with self._ctl:
            new_settings, self._new_settings = self._new_settings, None
            rescan, self._rescan_pending = self._rescan_pending, False
            retry, self._retry_pending = self._retry_pending, False
            lost, self._lost_events = self._lost_events, False
        if lost:  # close events may be among those lost: the /proc check and quiet time decide
            self.tracker.forget_writes()
        if new_settings is not None:
            self._reconfigure(new_settings)
        if rescan:
            self._scan_all(retry)
        for key in self.tracker.ready(self.clock()):
            if self._stop.is_set():
                return
            self._take(key)

    def _apply(self, item: tuple[str, str, str, str], now: float) -> None:
        role, kind, src, dest = item
        if role == "wake":
            return
        self.counters.events += 1
        if kind == OverflowEvent.event_type:
            self.counters.overflows += 1
            log.warning("inbox.watch_overflow", path=src)
            self.tracker.forget_writes()
            with self._ctl:
                self._rescan_pending = True
            return
        if role == "run":
            if os.path.basename(dest or src) == POKE_NAME and kind != "deleted":
                self._read_poke()
            return
        if role == "parent":
            for key, waiting in list(self.folders.items()):
                if not waiting.present and (src == key or dest == key or kind == "created"):
                    self._add_folder(waiting.path)
                    if waiting.present:
                        log.info("inbox.folder_back", folder=key)
                        self._notify()
                        self._scan_folder(waiting, retry=False)
            return
        for path, change in self._changes(kind, src, dest):
            fs = self._folder_of(path)
            if fs is None:
                continue
            if path == str(fs.path):
                if change == "deleted":
                    self._folder_gone(fs)
                continue
            name = os.path.basename(path)
            if name.endswith(ERROR_SUFFIX) or name == DROP_ERROR_NAME:
                continue  # our own error files
            drop = drop_name_for(fs.path, Path(path))
            if drop is None or is_ignored_name(drop) or is_station_file(drop):
                continue
            self.tracker.note(
                (str(fs.path), drop), path, change, now, close_events=fs.mode == "inotify"
            )

    @staticmethod
    def _changes(kind: str, src: str, dest: str) -> list[tuple[str, Change]]:
        if kind == "moved":
            out: list[tuple[str, Change]] = []
            if src:
                out.append((src, "deleted"))
            if dest:
                out.append((dest, "created"))
            return out
        change = _CHANGES.get(kind)
        return [(src, change)] if change else []

    def _folder_gone(self, fs: FolderState) -> None:
        key = str(fs.path)
        log.error(
            "inbox.folder_gone", folder=key, hint="recreate the folder; the station watches for it"
        )
        if fs.watch is not None:
            self._unschedule(fs.watch)
            fs.watch = None
        fs.present, fs.error = False, "监视中的文件夹被删除 / removed while watched"
        self._notify()
        self.tracker.forget_folder(key)
        env = self._require_env()
        for row in store.list_drops(env.db, states=store.ACTIVE):
            if row.folder == key:
                self._process(fs, row.name, retry=False)
        self._watch_parent(fs)
        if fs.path.is_dir():  # came back before the parent watch was in place
            self._add_folder(fs.path)
            self._scan_folder(fs, retry=False)

    def _read_poke(self) -> None:
        path = self.vault.run / POKE_NAME
        try:
            text = path.read_text(encoding="utf-8")
            path.unlink()
        except OSError:
            return
        log.info("inbox.rescan_requested", retry="retry" in text)
        with self._ctl:
            self._rescan_pending = True
            self._retry_pending = self._retry_pending or "retry" in text

    def _scan_all(self, retry: bool) -> None:
        self.counters.rescans += 1
        for fs in list(self.folders.values()):
            if not fs.present and fs.path.is_dir():
                self._add_folder(fs.path)
            if fs.present:
                self._scan_folder(fs, retry)
        self._read_poke()

    def _scan_folder(self, fs: FolderState, retry: bool) -> None:
        key = str(fs.path)
        try:
            names = list_drop_names(fs.path)
        except FileNotFoundError:
            self._folder_gone(fs)
            return
        except OSError as exc:
            fs.error = f"cannot list: {exc.strerror or exc}"
            log.error("inbox.scan_failed", folder=key, error=str(exc))
            return
        now = self.clock()
        env = self._require_env()
        seen = {store.text(n) for n in names}
        for row in store.list_drops(env.db, states=store.ACTIVE):
            if row.folder == key and row.name not in seen:
                names.append(row.name)  # vanished while we were away: mark it gone
        for name in names:
            self.tracker.note((key, name), None, "scan", now)
            if retry:
                self._retry_keys.add((key, name))
        log.info("inbox.scanned", folder=key, drops=len(names))

    def _take(self, key: DropKey) -> None:
        fs = self.folders.get(key[0])
        if fs is None or not fs.present:
            self.tracker.done(key)
            return
        # A local process still holding a file open for writing: not complete, whatever the
        # quiet time says (writers on other machines are invisible here: settle time only).
        drop = fs.path / key[1]
        found = writers([str(drop)], under=str(drop) if drop.is_dir() else None)
        if found:
            log.info(
                "inbox.drop_busy",
                folder=key[0],
                drop=key[1],
                open_for_writing=sorted(found)[:5],
            )
            self.tracker.busy(key, self.clock())
            return
        if fs.mode == "inotify" and self.tracker.open_for_writing(key):
            self.tracker.busy(key, self.clock())  # no close seen yet: look again after settling
            return
        self._process(fs, key[1], retry=key in self._retry_keys)

    def _process(self, fs: FolderState, name: str, *, retry: bool) -> None:
        key = (str(fs.path), name)
        env = self._require_env()
        try:
            outcome = process_drop(env, fs.path, name, retry_failed=retry)
        except Exception as exc:  # one bad drop never stops the inbox (DESIGN invariant 7)
            self.counters.last_error = f"{name}: {exc!r}"
            log.exception("inbox.drop_error", folder=key[0], drop=name, error=repr(exc))
            self.tracker.busy(key, self.clock(), RETRY_AFTER_ERROR_S)
            return
        self._retry_keys.discard(key)
        if outcome.state == "settling" and outcome.message:
            self.counters.last_error = f"{name}: {outcome.message}"
            self.tracker.busy(key, self.clock(), RETRY_AFTER_ERROR_S)  # e.g. vault full
        else:
            self.tracker.done(key)
        if outcome.state != "nothing":
            self.counters.drops_processed += 1
            self.counters.last_drop = outcome.as_dict()
        self._after(outcome)

    def _after(self, outcome: DropOutcome) -> None:
        if outcome.new:
            for cb in self.ingest_listeners:
                try:
                    cb(outcome)
                except Exception as exc:
                    log.exception("inbox.ingest_listener_failed", error=repr(exc))
        self._notify()

    def _notify(self) -> None:
        if not self.status_listeners:
            return
        try:
            snapshot = self.status()
            for cb in self.status_listeners:
                cb(snapshot)
        except Exception as exc:
            log.exception("inbox.status_listener_failed", error=repr(exc))

    def _reconfigure(self, new: Settings) -> None:
        old_folders = set(self.folders)
        new_folders = {str(Path(f)) for f in new.inbox.folders}
        mode_changed = (
            new.inbox.watch_mode != self.settings.inbox.watch_mode
            or new.inbox.poll_seconds != self.settings.inbox.poll_seconds
        )
        self.settings = new
        env = self._require_env()
        env.settings = new
        self.tracker.settle_s = new.inbox.settle_seconds
        for key in old_folders - new_folders if not mode_changed else old_folders:
            self._remove_folder(key)
        if mode_changed and "poll" in self._observers:
            obs = self._observers.pop("poll")
            obs.stop()
            obs.join(10)
        for key in sorted(new_folders - set(self.folders)):
            self._add_folder(Path(key))
            fs = self.folders[key]
            if fs.present:
                self._scan_folder(fs, retry=False)
        log.info(
            "inbox.settings_applied",
            folders=sorted(new_folders),
            settle_seconds=new.inbox.settle_seconds,
            after_verify=new.inbox.after_verify,
        )

    def _require_env(self) -> InboxEnv:
        if self._env is None:
            raise RuntimeError("the inbox service is not started")
        return self._env
