"""Shared helpers of the inbox tests (no tests here)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from station.config import InboxSection, Settings
from station.inbox.service import InboxService
from station.vault import Vault
from station_testbed.waiting import STALL_S, wait_progress


def inbox_settings(folders: list[Path], **inbox: Any) -> Settings:
    base = {"settle_seconds": 0.3, "after_verify": "remove"}
    base.update(inbox)
    section = InboxSection(folders=[str(f) for f in folders], **base)
    section.validate()
    return dataclasses.replace(Settings(), inbox=section)


def write_file(path: Path, data: bytes, mtime: float | None = None) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return hashlib.sha256(data).hexdigest()


def make_drop(
    folder: Path,
    name: str,
    files: dict[str, bytes],
    sidecar: Any = None,
    sidecar_name: str = "station.json",
) -> dict[str, str]:
    """Build a drop folder outside the inbox, then move it in with one rename (like ``mv``)."""
    staging = folder.parent / ".build"
    staging.mkdir(exist_ok=True)
    tmp = staging / name
    shas = {rel: write_file(tmp / rel, data) for rel, data in files.items()}
    if sidecar is not None:
        text = sidecar if isinstance(sidecar, str) else json.dumps(sidecar, ensure_ascii=False)
        (tmp / sidecar_name).write_text(text, encoding="utf-8")
    os.rename(tmp, folder / name)
    return shas


def recordings(db: sqlite_utils.Database) -> dict[str, dict[str, Any]]:
    return {r["sha256"]: r for r in db.query("select * from recordings")}


def drops(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return list(db.query("select * from inbox_drops order by id"))


@contextmanager
def running(vault: Vault, settings: Settings, **kw: Any) -> Iterator[InboxService]:
    svc = InboxService(vault, settings, **kw)
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()


def wait_until(cond: Any, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll a condition of the test (the code under test never polls where inotify works)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def drop_state(db: sqlite_utils.Database, name: str) -> str | None:
    row = db.execute(
        "select state from inbox_drops where name = ? order by id desc limit 1", [name]
    ).fetchone()
    return row[0] if row else None


def inbox_progress(db: sqlite_utils.Database) -> object:
    """What the inbox visibly does: every drop's state and file counts, and the recordings
    stored so far."""
    return (
        db.execute(
            "select id, name, state, files_new, files_held, files_failed, files_removed"
            " from inbox_drops order by id"
        ).fetchall(),
        db.execute("select count(*) from recordings").fetchone()[0],
    )


def wait_drop(
    db: sqlite_utils.Database, name: str, *states: str, timeout: float | None = None
) -> None:
    """Until drop ``name`` is in one of ``states``; waits while the inbox advances, fails when
    nothing changed for ``timeout`` seconds (default ``STALL_S``)."""
    wait_progress(
        lambda: drop_state(db, name) in states,
        lambda: inbox_progress(db),
        what=f"drop {name} to reach {states}",
        stall_s=STALL_S if timeout is None else timeout,
    )
