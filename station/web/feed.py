"""The kiosk's live state: the daemon's ``run/status.json`` (and ``run/disc-status.json``),
watched and pushed to every open kiosk as server-sent events.

Steps: one watcher task per web process looks at the two files' ``stat`` every ``interval``
seconds while at least one kiosk listens (nothing runs with no viewer); on a change of inode,
size or mtime it reads the file (written atomically by the daemon: never half a file), adds what
a person needs (is the daemon alive, time left per slot) and hands the new view to every
listener. Listeners keep only the latest view (a slow screen skips frames, never queues them),
so memory stays flat however long a kiosk stays open. The same code serves ``station run``
and ``station web``: a daemon restart is a new file with a new pid, picked up like any change.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from station.status import daemon_alive, read_status

# Phases as an officer reads them on the kiosk (short; ``station.status.PHASES`` is longer).
KIOSK_PHASES = {
    "waiting": ("排队中", "waiting"),
    "identifying": ("识别中", "identifying"),
    "checking": ("识别中", "checking the recorder"),
    "mounting": ("复制中", "opening storage"),
    "copying": ("复制中", "copying"),
    "verifying": ("校验中", "verifying"),
    "clearing": ("清除中", "clearing the recorder"),
    "done": ("完成", "done"),
    "refused": ("已拒绝", "refused"),
    "failed": ("失败", "failed"),
    "interrupted": ("已中断", "interrupted"),
}

# What an officer should do about each flag (the flag's own message says what happened).
FLAG_ACTIONS = {
    "unknown_device": "请联系管理员登记设备 / ask an administrator to enrol this recorder",
    "identity_invalid": "请联系管理员 / ask an administrator",
    "auth_failed": "请联系管理员 / ask an administrator",
    "duplicate_id": "请取下其中一台并联系管理员 / undock one of them and ask an administrator",
    "officer_mismatch": "设备不得借用，请联系管理员 / recorders may not be lent: ask an "
    "administrator",
    "unit_mismatch": "请联系管理员 / ask an administrator",
    "battery_low": "请充电后再使用 / charge the recorder before use",
    "battery_unknown": "请检查电池 / check the battery",
    "storage_full": "已清除校验过的文件；仍满请联系管理员 / verified files are cleared; if still "
    "full ask an administrator",
    "storage_unknown": "",
    "clock_drift": "时钟已校正，无需处理 / clock corrected, nothing to do",
    "clock_implausible": "请联系管理员检查设备时钟 / ask an administrator to check the clock",
    "clock_unknown": "请联系管理员 / ask an administrator",
    "interrupted": "请重新插入记录仪继续 / dock the recorder again to finish",
    "vault_full": "请联系管理员 / ask an administrator: the station's storage is full",
    "device_error": "请重新插入；仍失败请联系管理员 / dock again; if it fails again ask an "
    "administrator",
    "files_failed": "请联系管理员 / ask an administrator",
}
ASK_ADMIN = "请联系管理员 / ask an administrator"
# Flags that need a person (the tile turns red and the optional sound plays).
ATTENTION = {
    "unknown_device",
    "identity_invalid",
    "auth_failed",
    "duplicate_id",
    "officer_mismatch",
    "unit_mismatch",
    "clock_implausible",
    "vault_full",
    "device_error",
    "files_failed",
    "interrupted",
}

RATE_WINDOW_S = 15.0  # time left is measured over the last seconds of copying


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class RateMeter:
    """Bytes per second per slot session over a sliding window, for 'time left'."""

    def __init__(self) -> None:
        self.samples: dict[tuple[str, Any], collections.deque[tuple[float, int]]] = {}

    def eta(self, slot: dict[str, Any], now: float) -> float | None:
        key = (str(slot.get("slot")), slot.get("session_id"))
        done, total = slot.get("bytes_done"), slot.get("bytes_total")
        if (
            not isinstance(done, int)
            or not isinstance(total, int)
            or slot.get("phase") != "copying"
        ):
            self.samples.pop(key, None)
            return None
        q = self.samples.setdefault(key, collections.deque(maxlen=64))
        if not q or q[-1][1] != done:
            q.append((now, done))
        while len(q) > 2 and now - q[0][0] > RATE_WINDOW_S:
            q.popleft()
        if len(q) < 2 or q[-1][0] - q[0][0] < 0.5 or q[-1][1] <= q[0][1]:
            return None
        rate = (q[-1][1] - q[0][1]) / (q[-1][0] - q[0][0])
        return max(0.0, (total - done) / rate)

    def forget_except(self, live: set[tuple[str, Any]]) -> None:
        for key in [k for k in self.samples if k not in live]:
            del self.samples[key]


def kiosk_view(
    status: dict[str, Any] | None, disc: dict[str, Any] | None, meter: RateMeter, now: float
) -> dict[str, Any]:
    """What the kiosk shows, from the daemon's status (pure apart from the pid check)."""
    running = status is not None and daemon_alive(status) and status.get("state") != "stopped"
    slots = []
    live: set[tuple[str, Any]] = set()
    for s in (status or {}).get("slots", []) if running else []:
        phase = str(s.get("phase") or "")
        zh, en = KIOSK_PHASES.get(phase, (phase, phase))
        done, total = s.get("bytes_done"), s.get("bytes_total")
        all_read = isinstance(total, int) and isinstance(done, int) and 0 < total <= done
        if (
            phase == "copying"
            and all_read
            and (s.get("files_done") or 0) < (s.get("files_total") or 0)
        ):
            zh, en = KIOSK_PHASES["verifying"]  # every byte is read: the last check runs
        flags = [
            {
                "code": f.get("code"),
                "message": f.get("message"),
                "action": FLAG_ACTIONS.get(
                    str(f.get("code")), "请联系管理员 / ask an administrator"
                ),
                "attention": f.get("code") in ATTENTION,
            }
            for f in s.get("flags") or []
        ]
        live.add((str(s.get("slot")), s.get("session_id")))
        slots.append(
            {
                "slot": s.get("slot"),
                "device_id": s.get("device_id"),
                "officer_id": s.get("officer_id"),
                "officer_name": s.get("officer_name"),
                "phase": phase,
                "phase_zh": zh,
                "phase_en": en,
                "files_done": s.get("files_done"),
                "files_total": s.get("files_total"),
                "bytes_done": s.get("bytes_done"),
                "bytes_total": s.get("bytes_total"),
                "eta_s": meter.eta(s, now),
                "battery_pct": s.get("battery_pct"),
                "drift_s": s.get("drift_s"),
                "cleared": s.get("cleared"),
                "flags": flags,
                "attention": any(f["attention"] for f in flags) or phase in ("refused", "failed"),
                "safe_to_undock": bool(s.get("safe_to_undock")),
                "updated_at": s.get("updated_at"),
            }
        )
    meter.forget_except(live)
    return {
        "daemon": {
            "running": running,
            "state": (status or {}).get("state"),
            "started_at": (status or {}).get("started_at"),
        },
        "slots": slots,
        "disc": disc if disc and disc.get("state") == "running" else None,
    }


class StatusFeed:
    """Watches the status files while anyone listens; each listener gets the latest view."""

    def __init__(self, run_dir: Path, *, interval: float = 0.25, alive_every: float = 2.0) -> None:
        self.status_path = run_dir / "status.json"
        self.disc_path = run_dir / "disc-status.json"
        self.interval = interval
        self.alive_every = alive_every
        self.meter = RateMeter()
        self.version = 0
        self.view: dict[str, Any] = kiosk_view(None, None, self.meter, time.monotonic())
        self.text = json.dumps(self.view, ensure_ascii=False)
        self.listeners: set[asyncio.Queue[str]] = set()
        self.task: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()
        self.stamps: tuple[Any, Any] | None = None
        self.reads = 0  # how many times the files were read (for the benchmark)
        self.loop: asyncio.AbstractEventLoop | None = None

    def refresh(self) -> bool:
        """Re-read the files if they changed (or the daemon may have died); True if the view
        changed."""
        stamps = (_stamp(self.status_path), _stamp(self.disc_path))
        view = self.view
        if stamps != self.stamps or view["daemon"]["running"] or view["slots"]:
            self.stamps = stamps
            self.reads += 1
            view = kiosk_view(
                read_status(self.status_path),
                read_status(self.disc_path),
                self.meter,
                time.monotonic(),
            )
        text = json.dumps(view, ensure_ascii=False)
        if text == self.text:
            return False
        self.view, self.text = view, text
        self.version += 1
        return True

    def current(self) -> str:
        self.refresh()
        return self.text

    def subscribe(self) -> asyncio.Queue[str]:
        q: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        self.loop = asyncio.get_running_loop()
        self.listeners.add(q)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._watch())
        return q

    def unsubscribe(self, q: asyncio.Queue[str]) -> None:
        self.listeners.discard(q)

    def _publish(self) -> None:
        for q in list(self.listeners):
            if q.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()  # keep only the latest view
            q.put_nowait(self.text)

    async def _watch(self) -> None:
        last_alive = time.monotonic()
        while self.listeners and not self.closed.is_set():
            now = time.monotonic()
            stamps = (_stamp(self.status_path), _stamp(self.disc_path))
            busy = any(not s["safe_to_undock"] for s in self.view["slots"])
            # files unchanged: re-check only now and then (the pid, and time left while copying)
            if stamps != self.stamps or now - last_alive >= (1.0 if busy else self.alive_every):
                last_alive = now
                if self.refresh():
                    self._publish()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closed.wait(), self.interval)
        self.task = None

    def close(self) -> None:
        self.closed.set()

    def close_from_thread(self) -> None:
        """Another thread (the daemon stopping): end every open stream in the server's loop."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.closed.set)
