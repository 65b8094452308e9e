"""The dock's status, for a screen or ``station status``: ``$STATION_HOME/run/status.json``.

Per slot: device, officer, phase, files and bytes done/total, flags, and whether it is safe to
undock. Written atomically (temp file, rename) by the daemon on every change; readers
never see half a file. One thread writes at a time; a change made meanwhile returns at once and
the writer writes again before it stops, so the file always ends with the latest state and no
copy thread waits on another slot's file write (eight docks report progress at once).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from station.timeutil import to_iso, utcnow

PHASES = {
    "waiting": "排队等待 / waiting",
    "identifying": "识别设备 / identifying",
    "checking": "检查电量、存储、时钟 / checking battery, storage, clock",
    "mounting": "挂载存储 / mounting storage",
    "copying": "复制并校验 / copying and verifying",
    "clearing": "清除已校验文件 / clearing verified files",
    "done": "完成，可以拔出 / done — safe to undock",
    "refused": "已拒绝，可以拔出 / refused — safe to undock",
    "failed": "失败，可以拔出 / failed — safe to undock",
    "interrupted": "已中断 / interrupted",
}


class StatusBoard:
    def __init__(self, path: Path, *, pid: int | None = None) -> None:
        self.path = path
        self.lock = threading.Lock()  # the board's fields
        self._out = threading.Lock()  # who writes the file, and whether it is stale
        self._dirty = False
        self._writing = False
        self.slots: dict[str, dict[str, Any]] = {}
        self.started_at = to_iso(utcnow())
        self.pid = pid or os.getpid()
        self.state = "starting"
        self.listeners: list[Any] = []
        self.services: dict[str, Any] = {}  # the daemon's other services: inbox, integrity, …

    def update(self, slot: str, **fields: Any) -> None:
        with self.lock:
            entry = self.slots.setdefault(
                slot, {"slot": slot, "flags": [], "safe_to_undock": False}
            )
            entry.update(fields)
            if "phase" in fields:
                entry["phase_text"] = PHASES.get(fields["phase"], fields["phase"])
            entry["updated_at"] = to_iso(utcnow())
        self._publish()

    def remove(self, slot: str) -> None:
        with self.lock:
            self.slots.pop(slot, None)
        self._publish()

    def set_state(self, state: str) -> None:
        with self.lock:
            self.state = state
        self._publish()

    def set_service(self, name: str, data: Any) -> None:
        """A service's own status (e.g. the inbox's folders and drops) beside the slots."""
        with self.lock:
            self.services[name] = {**data, "updated_at": to_iso(utcnow())}
        self._publish()

    def _publish(self) -> None:
        """Write the board out, or leave it to the thread writing it now (it writes again)."""
        with self._out:
            self._dirty = True
            if self._writing:
                return
            self._writing = True
        try:
            while True:
                with self._out:
                    if not self._dirty:
                        self._writing = False
                        return
                    self._dirty = False
                with self.lock:
                    data = json.dumps(self.snapshot(), ensure_ascii=False, indent=1)
                self._write(data.encode("utf-8"))
        except BaseException:
            with self._out:
                self._writing = False
            raise

    def snapshot(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "state": self.state,
            "started_at": self.started_at,
            "updated_at": to_iso(utcnow()),
            "slots": [dict(v) for _, v in sorted(self.slots.items())],
            "services": dict(self.services),
        }

    def summary(self) -> str:
        busy = sum(1 for s in self.slots.values() if not s.get("safe_to_undock"))
        return f"已接入 {len(self.slots)}，处理中 {busy} / {len(self.slots)} docked, {busy} busy"

    def _write(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{threading.get_ident()}.tmp")
        # Atomic for readers (rename); no fsync: the status is ephemeral, and an fsync per
        # progress tick of every slot would compete with the ingest's own durable writes.
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, self.path)
        for cb in self.listeners:
            cb(self)


def read_status(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    if not isinstance(data, dict):
        return None
    return data


def daemon_alive(status: dict[str, Any]) -> bool:
    pid = status.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
