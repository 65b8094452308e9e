"""When is a drop complete? Pure bookkeeping over file events and times.

Two signals, used together:

* **close-write** (inotify): a file that was written to (``modified``) is *open for writing*
  until its writer closes it (``closed``). While any file of a drop is open for writing the drop
  is never ready, however long the writer pauses. Only where the file system reports it
  (``close_events``); network shares written by another machine do not.
* **quiet time**: the drop must have had no event at all for ``settle_s`` seconds, and (checked
  by the caller just before ingest) every file's size and mtime must be the ones last seen.

Times are plain floats from a monotonic clock given by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

DropKey = tuple[str, str]  # (inbox folder, drop name)
Change = Literal["created", "modified", "closed", "deleted", "attrib", "scan"]


@dataclass
class DropActivity:
    first: float
    last: float
    writing: set[str] = field(default_factory=set)
    recheck_at: float | None = None  # set when a final check found the drop still busy


class SettleTracker:
    def __init__(self, settle_s: float) -> None:
        self.settle_s = settle_s
        self._drops: dict[DropKey, DropActivity] = {}

    def __contains__(self, key: DropKey) -> bool:
        return key in self._drops

    def __len__(self) -> int:
        return len(self._drops)

    def pending(self) -> list[DropKey]:
        for _ in range(5):  # may be read from another thread (status)
            try:
                return list(self._drops)
            except RuntimeError:
                continue
        return []

    def note(
        self,
        key: DropKey,
        path: str | None,
        change: Change,
        now: float,
        *,
        close_events: bool = True,
    ) -> None:
        """Record one event (or a scan sighting) for a drop.

        ``close_events``: the folder's file system reports close-write (inotify on a local
        file system), so a written file counts as open until its close event.
        """
        act = self._drops.get(key)
        if act is None:
            act = self._drops[key] = DropActivity(first=now, last=now)
        act.last = now
        act.recheck_at = None
        if not close_events or path is None:
            return
        if change == "modified":
            act.writing.add(path)
        elif change in ("closed", "deleted"):
            act.writing.discard(path)

    def moved(self, key: DropKey, src: str, dest: str, now: float) -> None:
        act = self._drops.get(key)
        if act is not None and src in act.writing:
            act.writing.discard(src)
            act.writing.add(dest)
        self.note(key, None, "modified", now)

    def open_for_writing(self, key: DropKey) -> set[str]:
        act = self._drops.get(key)
        return set(act.writing) if act else set()

    def forget_writes(self) -> None:
        """After lost events (overflow) nobody knows which files are still open: forget, and
        rely on the quiet time and the /proc writers check."""
        for act in self._drops.values():
            act.writing.clear()

    def busy(self, key: DropKey, now: float, retry_s: float | None = None) -> None:
        """The final check found the drop still busy: look again after ``retry_s``."""
        act = self._drops.get(key)
        if act is not None:
            act.recheck_at = now + (self.settle_s if retry_s is None else retry_s)

    def done(self, key: DropKey) -> None:
        self._drops.pop(key, None)

    def forget_folder(self, folder: str) -> None:
        for key in [k for k in self._drops if k[0] == folder]:
            del self._drops[key]

    def _due(self, act: DropActivity) -> float | None:
        if act.writing:
            return act.recheck_at  # wait for the close event (or a scheduled re-check)
        due = act.last + self.settle_s
        if act.recheck_at is not None:
            due = max(due, act.recheck_at)
        return due

    def ready(self, now: float) -> list[DropKey]:
        """Drops quiet for the settle time with no file open for writing, oldest first."""
        out = []
        for key, act in sorted(self._drops.items(), key=lambda kv: kv[1].first):
            due = self._due(act)
            if due is not None and due <= now:
                out.append(key)
        return out

    def next_due(self) -> float | None:
        """The earliest time a drop may become ready; None when nothing is pending."""
        dues = [d for d in (self._due(a) for a in self._drops.values()) if d is not None]
        return min(dues) if dues else None
