"""Which folders the inbox watches, and how.

A mixin of :class:`~station.inbox.service.InboxService`, run on its worker thread (and in
``start()``): one observer per watch mode (inotify, poll), a recursive watch per inbox folder,
and for a folder that is missing (or was removed while watched) a watch on its nearest existing
ancestor, so it is picked up again the moment it (re)appears.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers.api import BaseObserver, ObservedWatch

from station.config import Settings
from station.inbox.settle import SettleTracker
from station.inbox.watch import (
    EVENT_FILTER,
    OverflowEvent,
    make_observer,
    nearest_existing,
    watch_mode,
)
from station.log import get
from station.vault import Vault

log = get()


@dataclass
class FolderState:
    path: Path
    mode: str = "inotify"
    present: bool = False
    watch: ObservedWatch | None = None
    parent_watch: ObservedWatch | None = None  # waiting for the folder to (re)appear
    error: str | None = None


class _Handler(FileSystemEventHandler):
    """Runs on watchdog's thread: no work here, only a non-blocking put (DESIGN invariant 4)."""

    def __init__(self, service: FolderWatching, role: str) -> None:
        self.service = service
        self.role = role  # "folder" | "parent" | "run"

    def dispatch(self, event: FileSystemEvent) -> None:
        self.service._put(
            (self.role, event.event_type, os.fsdecode(event.src_path), os.fsdecode(event.dest_path))
        )


class FolderWatching:
    """Folder and watch bookkeeping of the inbox service."""

    vault: Vault
    settings: Settings
    folders: dict[str, FolderState]
    _observers: dict[str, BaseObserver]
    _run_watch: ObservedWatch | None
    tracker: SettleTracker

    def _put(self, item: tuple[str, str, str, str]) -> None:
        raise NotImplementedError

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
            fs.error = "不是真实文件夹 / not a real folder (symlink or file)"
            log.error("inbox.folder_invalid", folder=key)
            return
        if not path.is_dir():
            fs.present = False
            fs.error = "文件夹不存在 / missing"
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

    def _folder_of(self, path: str) -> FolderState | None:
        best: FolderState | None = None
        for key, fs in self.folders.items():
            if (path == key or path.startswith(key.rstrip("/") + "/")) and (
                best is None or len(key) > len(str(best.path))
            ):
                best = fs
        return best


def _event_filter() -> list[Any]:
    return [*EVENT_FILTER, OverflowEvent]
