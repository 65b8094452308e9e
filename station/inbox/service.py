"""The watched inbox service (issue 8): watchers, one worker, start-up scan, rescan on overflow.

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

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers.api import BaseObserver, ObservedWatch

from station.catalog import open_catalog
from station.config import Settings
from station.errors import StationError
from station.inbox import store
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
from station.inbox.watch import OverflowEvent, make_observer, nearest_existing, watch_mode
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
    """Another inbox service is running for this station / 收件箱服务已在运行."""


@dataclass
class FolderState:
    path: Path
    mode: str = "inotify"
    present: bool = False
    watch: ObservedWatch | None = None
    parent_watch: ObservedWatch | None = None  # waiting for the folder to (re)appear
    error: str | None = None


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


class _Handler(FileSystemEventHandler):
    """Runs on watchdog's thread: no work here, only a non-blocking put (DESIGN invariant 4)."""

    def __init__(self, service: InboxService, role: str) -> None:
        self.service = service
        self.role = role  # "folder" | "parent" | "run"

    def dispatch(self, event: FileSystemEvent) -> None:
        self.service._put(
            (self.role, event.event_type, os.fsdecode(event.src_path), os.fsdecode(event.dest_path))
        )


class InboxService:
    """Watch ``settings.inbox.folders`` and ingest every complete drop (issue 8)."""

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
        """For the daemon's status: folders, pending drops, and the catalog's drop counts."""
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
                for f in self.folders.values()
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

    # ---- watchers (main/worker thread) -----------------------------------------------------
    def _observer(self, mode: str) -> BaseObserver:
        obs = self._observers.get(mode)
        if obs is None:
            obs = make_observer(mode, self.settings.inbox.poll_seconds)
            obs.start()
            self._observers[mode] = obs
        return obs

    def _add_folder(self, path: Path) -> None:
        key = str(path)
        fs = self.folders.get(key) or FolderState(path)
        self.folders[key] = fs
        fs.mode = watch_mode(nearest_existing(path), self.settings.inbox.watch_mode)
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            fs.error = "not a real folder (symlink or file) / 不是真实文件夹"
            log.error("inbox.folder_invalid", folder=key)
            return
        if not path.is_dir():
            fs.present = False
            fs.error = "missing / 文件夹不存在"
            log.error("inbox.folder_missing", folder=key, hint="create it; watching for it")
            self._watch_parent(fs)
            return
        self._drop_parent_watch(fs)
        try:
            fs.watch = self._observer(fs.mode).schedule(
                _Handler(self, "folder"),
                key,
                recursive=True,
                event_filter=None if fs.mode == "poll" else _event_filter(),
            )
        except OSError as exc:
            fs.error = f"cannot watch: {exc.strerror or exc}"
            log.error("inbox.watch_failed", folder=key, error=str(exc))
            return
        fs.present, fs.error = True, None

    def _watch_parent(self, fs: FolderState) -> None:
        """Watch the nearest existing ancestor for the folder (or a missing parent) to appear."""
        parent = nearest_existing(fs.path.parent)
        if fs.parent_watch is not None:
            if fs.parent_watch.path == str(parent):
                return
            self._drop_parent_watch(fs)  # one more level exists now: move down
        try:
            fs.parent_watch = self._observer(fs.mode).schedule(
                _Handler(self, "parent"), str(parent), recursive=False
            )
        except OSError as exc:
            log.error("inbox.watch_failed", folder=str(parent), error=str(exc))
            return
        if nearest_existing(fs.path.parent) != parent or fs.path.is_dir():
            self._add_folder(fs.path)  # created while the watch was being set up

    def _drop_parent_watch(self, fs: FolderState) -> None:
        if fs.parent_watch is not None:
            self._unschedule(fs.parent_watch)
            fs.parent_watch = None

    def _unschedule(self, watch: ObservedWatch) -> None:
        for obs in self._observers.values():
            try:
                obs.unschedule(watch)
                return
            except KeyError:
                continue

    def _remove_folder(self, key: str) -> None:
        fs = self.folders.pop(key, None)
        if fs is None:
            return
        if fs.watch is not None:
            self._unschedule(fs.watch)
        self._drop_parent_watch(fs)
        self.tracker.forget_folder(key)

    def _watch_run_dir(self) -> None:
        try:
            self._run_watch = self._observer("inotify").schedule(
                _Handler(self, "run"), str(self.vault.run), recursive=False
            )
        except OSError as exc:
            log.warning("inbox.watch_failed", folder=str(self.vault.run), error=str(exc))

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

    def _folder_of(self, path: str) -> FolderState | None:
        best: FolderState | None = None
        for key, fs in self.folders.items():
            if (path == key or path.startswith(key.rstrip("/") + "/")) and (
                best is None or len(key) > len(str(best.path))
            ):
                best = fs
        return best

    def _folder_gone(self, fs: FolderState) -> None:
        key = str(fs.path)
        log.error(
            "inbox.folder_gone", folder=key, hint="recreate the folder; the station watches for it"
        )
        if fs.watch is not None:
            self._unschedule(fs.watch)
            fs.watch = None
        fs.present, fs.error = False, "removed while watched / 监视中的文件夹被删除"
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
        seen = set(names)
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
        if fs.mode == "inotify":
            open_files = self.tracker.open_for_writing(key)
            found = writers(_files_below(fs.path / key[1]))
            if found:
                log.info(
                    "inbox.drop_busy",
                    folder=key[0],
                    drop=key[1],
                    open_for_writing=sorted(found)[:5],
                )
                self.tracker.busy(key, self.clock())
                return
            if open_files:  # no local writer, yet no close seen: look again after settling
                self.tracker.busy(key, self.clock())
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
        """Hook for tests and the daemon (e.g. to refresh a screen)."""

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


def _event_filter() -> list[Any]:
    from station.inbox.watch import EVENT_FILTER

    return [*EVENT_FILTER, OverflowEvent]


def _files_below(path: Path) -> list[str]:
    if path.is_symlink() or not path.is_dir():
        return [str(path)]
    out: list[str] = []
    for root, _dirs, files in os.walk(path, followlinks=False):
        out.extend(os.path.join(root, f) for f in files)
    return out


def drop_summary(vault: Vault) -> dict[str, Any]:
    """Drop counts by state and the drops that need a person, straight from the catalog."""
    if not vault.catalog_path.exists():
        return {"drops": {}, "attention": []}
    db = open_catalog(vault.catalog_path, migrate=False)
    try:
        if "inbox_drops" not in db.table_names():
            return {"drops": {}, "attention": []}
        attention = [
            {
                "id": r.id,
                "folder": r.folder,
                "name": r.name,
                "state": r.state,
                "error": r.error,
                "first_seen_at": r.first_seen_at,
            }
            for r in store.list_drops(
                db, states=("needs_details", "held", "partial", "refused"), limit=50
            )
        ]
        return {"drops": store.state_counts(db), "attention": attention}
    finally:
        db.close()
