"""File-system watching for the inbox: watchdog observers, overflow, file-system types.

* Local file systems: inotify (watchdog's ``InotifyObserver``). No polling: an idle inbox costs
  no CPU. The kernel's queue overflow (``IN_Q_OVERFLOW``, events lost) is reported to us as an
  :class:`OverflowEvent` so the service rescans.
* Network shares (NFS, SMB/CIFS, 9p, sshfs …): inotify does not see writes made by another
  machine, so those folders are polled (``inbox.poll_seconds``) and completeness rests on the
  settle time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
)
from watchdog.observers.api import BaseObserver
from watchdog.observers.inotify import InotifyEmitter, InotifyObserver
from watchdog.observers.polling import PollingObserver

# Kernel-side filter: no open/read/close-nowrite events, so the station's own reads of a drop
# wake nobody.
EVENT_FILTER: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    DirCreatedEvent,
    FileModifiedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileDeletedEvent,
    DirDeletedEvent,
    FileMovedEvent,
    DirMovedEvent,
]

NETWORK_FS = {
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "9p",
    "ceph",
    "glusterfs",
    "afs",
    "lustre",
    "davfs",
    "fuse.sshfs",
    "fuse.rclone",
    "fuse.davfs",
    "fuse.glusterfs",
    "fuse.s3fs",
    "fuse.gvfsd-fuse",
}


class OverflowEvent(FileSystemEvent):
    """The kernel dropped events for this watch: the service must rescan."""

    event_type = "overflow"


class _OverflowAwareEmitter(InotifyEmitter):
    def on_thread_start(self) -> None:
        super().on_thread_start()
        group: Any = self._inotify
        if group is None:
            return
        original = group.on_queue_overflow
        emitter = self

        def on_queue_overflow() -> None:
            original()
            emitter.queue_event(OverflowEvent(emitter.watch.path))

        group.on_queue_overflow = on_queue_overflow

    def queue_event(self, event: FileSystemEvent) -> None:
        if isinstance(event, OverflowEvent):  # never filtered out
            self._event_queue.put((event, self.watch))
            return
        super().queue_event(event)


class StationInotifyObserver(InotifyObserver):
    """``InotifyObserver`` whose emitters also report queue overflows."""

    def __init__(self) -> None:
        # The dispatcher is woken by events and by stop() (a sentinel), so a long queue timeout
        # keeps an idle watcher from waking once a second.
        super().__init__(timeout=3600.0)
        self._emitter_class = _OverflowAwareEmitter


def make_observer(mode: str, poll_seconds: float) -> BaseObserver:
    if mode == "poll":
        return PollingObserver(timeout=poll_seconds)
    return StationInotifyObserver()


def fs_type(path: Path, mountinfo: str = "/proc/self/mountinfo") -> str:
    """The file-system type of the mount holding ``path`` ("" if unknown)."""
    target = os.path.realpath(path)
    best, best_type = "", ""
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                left, _, right = line.partition(" - ")
                fields = left.split()
                if len(fields) < 5 or not right:
                    continue
                mnt = fields[4].replace("\\040", " ")
                inside = target == mnt or target.startswith(mnt.rstrip("/") + "/")
                if inside and len(mnt) >= len(best):
                    best, best_type = mnt, right.split()[0]
    except OSError:
        return ""
    return best_type


def watch_mode(path: Path, setting: str) -> str:
    """``inotify`` or ``poll`` for a folder, from ``inbox.watch_mode`` (auto | inotify | poll)."""
    if setting in ("inotify", "poll"):
        return setting
    return "poll" if fs_type(path) in NETWORK_FS else "inotify"


def nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p
