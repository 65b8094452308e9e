"""Waiting on a daemon's work by its progress, not by the clock.

A test that waits a fixed number of seconds for a job fails when the machine is loaded, although
the job is still moving. ``wait_progress`` instead keeps waiting while the work visibly advances
(what ``observe`` returns keeps changing: a state, a phase, a byte count) and while the worker is
alive, and fails only when the work has truly stalled — nothing changed for ``stall_s`` seconds —
or the worker is gone, with a message naming the job, its last observed state and how long it
has been there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

STALL_S = 180.0  # no visible change for this long: the work has stopped, not slowed down


class Stalled(AssertionError):
    """The awaited work stopped advancing, or its worker died."""


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def process_gone(pid: int | None, name: str) -> Callable[[], str | None]:
    """An ``alive`` check for ``wait_progress``: the reason if process ``pid`` is gone."""

    def check() -> str | None:
        if pid is None:
            return None
        return None if pid_alive(pid) else f"{name} (pid {pid}) exited"

    return check


def wait_progress(
    done: Callable[[], T | None],
    observe: Callable[[], Any],
    *,
    what: str,
    alive: Callable[[], str | None] | None = None,
    failed: Callable[[Any], str | None] | None = None,
    stall_s: float = STALL_S,
    poll: float = 0.1,
    context: Callable[[], str] | None = None,
) -> T:
    """Wait until ``done()`` is truthy and return it.

    Steps, every ``poll`` seconds: ``done()`` truthy → return it; ``observe()`` (any comparable
    snapshot of the work: state, phase, bytes) changed → the stall clock restarts; ``failed``
    (given the snapshot) names a terminal failure → raise at once; ``alive()`` names a dead worker
    → raise at once; the snapshot unchanged for ``stall_s`` seconds → raise. Every failure is a
    ``Stalled`` naming ``what``, the last snapshot, and how long it had not changed, plus
    ``context()`` (e.g. the daemon's log tail)."""
    last: Any = object()
    since = time.monotonic()
    changes = 0
    while True:
        got = done()
        if got:
            return got
        seen = observe()
        now = time.monotonic()
        if seen != last:
            last, since, changes = seen, now, changes + 1
        why = failed(seen) if failed is not None else None
        if why is None and alive is not None:
            why = alive()
        if why is None and now - since >= stall_s:
            why = f"no progress for {now - since:.0f} s"
        if why is not None:
            extra = context() if context is not None else ""
            raise Stalled(
                f"{what}: {why}; last state {seen!r} (unchanged for {now - since:.0f} s, "
                f"{changes - 1} changes seen before)" + (f"\n{extra}" if extra else "")
            )
        time.sleep(poll)
