"""The inbox without its daemon: one pass over the folders, for ``station inbox rescan|assign``.

If the inbox service is running (it holds ``run/inbox.lock``) the CLI only pokes it through
``run/inbox.rescan``: one process takes drops in, never two. Otherwise the CLI takes the lock
and does one pass itself. Without a watcher there is no close-write history, so a file counts as
complete only when no local process holds it open for writing and its mtime is at least
``inbox.settle_seconds`` old.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from station.catalog import open_catalog
from station.config import Settings
from station.inbox.processor import DropOutcome, InboxEnv, IngestFn, process_drop
from station.inbox.scan import list_drop_names, scan_drop
from station.inbox.service import LOCK_NAME, POKE_NAME
from station.inbox.writers import writers
from station.log import get
from station.vault import Vault

log = get()


@contextmanager
def inbox_lock(vault: Vault) -> Iterator[bool]:
    """Yield True with the inbox lock held, or False if a running service holds it."""
    vault.run.mkdir(parents=True, exist_ok=True)
    fd = os.open(vault.run / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def service_running(vault: Vault) -> bool:
    with inbox_lock(vault) as mine:
        return not mine


def poke(vault: Vault, *, retry: bool) -> Path:
    """Ask the running service for a rescan (it watches ``run/`` for this file)."""
    path = vault.run / POKE_NAME
    tmp = vault.run / f".{POKE_NAME}.{os.getpid()}"
    tmp.write_text("retry\n" if retry else "rescan\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def drop_settled(folder: Path, name: str, settle_s: float, now: float | None = None) -> str | None:
    """None if the drop looks complete now, else why not (for the one-shot pass)."""
    listing = scan_drop(folder, name)
    if not listing.exists:
        return None
    now = time.time() if now is None else now
    young = [e.rel for e in listing.files if now - e.mtime_ns / 1e9 < settle_s]
    if young:
        return f"changed less than {settle_s:g} s ago: {young[0]}"
    busy = writers(str(e.path) for e in listing.files)
    if busy:
        return f"open for writing by pid {next(iter(busy.values()))[0]}"
    return None


def run_once(
    vault: Vault,
    settings: Settings,
    *,
    actor: str,
    retry_failed: bool = False,
    only: tuple[str, str] | None = None,
    ingest: IngestFn | None = None,
) -> dict[str, Any]:
    """One pass over every inbox folder (or one drop). Caller holds the inbox lock."""
    db = open_catalog(vault.catalog_path)
    env = InboxEnv(vault, db, settings, actor=actor, ingest=ingest)
    outcomes: list[DropOutcome] = []
    waiting: list[dict[str, str]] = []
    missing: list[str] = []
    try:
        for folder_s in settings.inbox.folders:
            folder = Path(folder_s)
            if only is not None and only[0] != folder_s:
                continue
            try:
                names = list_drop_names(folder)
            except OSError as exc:
                missing.append(folder_s)
                log.error("inbox.scan_failed", folder=folder_s, error=str(exc))
                continue
            if only is not None:
                names = [only[1]]
            for name in names:
                why = drop_settled(folder, name, settings.inbox.settle_seconds)
                if why:
                    waiting.append({"folder": folder_s, "drop": name, "reason": why})
                    continue
                out = process_drop(env, folder, name, retry_failed=retry_failed)
                if out.state != "nothing":
                    outcomes.append(out)
    finally:
        db.close()
    return {
        "processed": [o.as_dict() for o in outcomes],
        "waiting": waiting,
        "missing_folders": missing,
    }
