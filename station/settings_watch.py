"""The settings file, watched.

A valid change is applied without a restart: ``on_change(new, old, changed_keys)`` is called and
``settings.applied`` is logged with the dotted keys that changed. An invalid file (bad TOML,
unknown key, wrong type, a value a section refuses) is refused: ``settings.refused`` is logged
with the key and the reason, and the running settings stay. A deleted settings file is refused
too (it would silently mean "all defaults").

inotify on the file's folder (editors replace files by rename), one worker thread that waits
without a timeout while nothing happens, and a short debounce so a save in several writes is
read once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler

from station.config import Settings, load_settings, settings_as_dict
from station.errors import ConfigError
from station.inbox.watch import EVENT_FILTER, StationInotifyObserver
from station.log import get
from station.timeutil import to_iso, utcnow

log = get()

OnChange = Callable[[Settings, Settings, list[str]], None]
DEBOUNCE_S = 0.25


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else k))
        return out
    return {prefix: data}


def changed_keys(old: Settings, new: Settings) -> list[str]:
    """Dotted names of the settings that differ (``inbox.settle_seconds``)."""
    a, b = _flatten(settings_as_dict(old)), _flatten(settings_as_dict(new))
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def split_where(where: str | None, path: Path) -> tuple[str, str]:
    """``"/x/station.toml: inbox.settle_seconds"`` -> (file, key)."""
    if not where:
        return str(path), ""
    head, sep, key = where.partition(": ")
    return (head, key) if sep else (where, "")


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: SettingsWatcher) -> None:
        self.watcher = watcher

    def dispatch(self, event: FileSystemEvent) -> None:  # watchdog thread: no work here
        names = {os.fsdecode(event.src_path), os.fsdecode(event.dest_path)}
        if str(self.watcher.path) in names:
            self.watcher._poke()


class SettingsWatcher:
    def __init__(self, path: Path, on_change: OnChange, *, current: Settings | None = None) -> None:
        self.path = Path(os.path.abspath(path))
        self.on_change = on_change
        self.current = current if current is not None else load_settings(self.path)
        self.applied_at: str | None = None
        self.last_error: dict[str, str] | None = None
        self.changes = 0
        self.refusals = 0
        self._event = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer: StationInotifyObserver | None = None
        self._checked = threading.Condition()
        self._generation = 0

    def start(self) -> None:
        self._observer = StationInotifyObserver()
        self._observer.schedule(
            _Handler(self), str(self.path.parent), recursive=False, event_filter=EVENT_FILTER
        )
        self._observer.start()
        self._thread = threading.Thread(target=self._loop, name="settings-watch", daemon=False)
        self._thread.start()
        log.info("settings.watching", file=str(self.path))

    def stop(self) -> None:
        self._stop.set()
        self._event.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(10)
            self._observer = None

    def status(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "applied_at": self.applied_at,
            "changes": self.changes,
            "refusals": self.refusals,
            "last_error": self.last_error,
        }

    def wait_checked(self, generation: int, timeout: float) -> bool:
        """For tests: wait until the file was (re)read after ``generation``."""
        deadline = time.monotonic() + timeout
        with self._checked:
            while self._generation <= generation:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._checked.wait(left)
        return True

    @property
    def generation(self) -> int:
        return self._generation

    def _poke(self) -> None:
        self._event.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._event.wait()
            if self._stop.is_set():
                return
            # debounce: read once the file has been quiet for a moment
            while True:
                self._event.clear()
                if self._stop.wait(DEBOUNCE_S) or not self._event.is_set():
                    break
            if self._stop.is_set():
                return
            try:
                self.check()
            except Exception as exc:  # error boundary: a bad callback never kills the watch
                log.exception("settings.watch_error", error=repr(exc))
            with self._checked:
                self._generation += 1
                self._checked.notify_all()

    def check(self) -> bool:
        """Read the file now; apply it if valid and different. Returns True if applied."""
        if not self.path.exists():
            self._refuse("", "配置文件被删除 / settings file removed; running settings kept")
            return False
        try:
            new = load_settings(self.path)
        except ConfigError as exc:
            _, key = split_where(exc.where, self.path)
            self._refuse(key, exc.message)
            return False
        keys = changed_keys(self.current, new)
        if not keys:
            log.debug("settings.unchanged", file=str(self.path))
            return False
        old = self.current
        try:
            self.on_change(new, old, keys)
        except Exception as exc:
            self._refuse("", f"could not apply: {exc!r}")
            log.exception("settings.apply_failed", file=str(self.path), changed=keys)
            return False
        self.current = new
        self.changes += 1
        self.applied_at = to_iso(utcnow())
        self.last_error = None
        log.info("settings.applied", file=str(self.path), changed=keys)
        return True

    def _refuse(self, key: str, reason: str) -> None:
        self.refusals += 1
        self.last_error = {"key": key, "reason": reason, "at": to_iso(utcnow())}
        log.error(
            "settings.refused",
            file=str(self.path),
            key=key,
            reason=reason,
            hint="继续使用当前配置 / the running settings stay",
        )
