"""The audit log's head, kept outside the catalog: ``$STATION_HOME/audit-head.json`` (R7).

After every commit that appended audit entries, the newest entry's ``seq`` and ``entry_hash``
are written here (temp file, fsync, rename, folder fsync; mode 0600), only ever forwards, under
a lock shared by every process of the station. ``station verify`` compares it with the log:
entries deleted from the end of the log (tail truncation after the last checkpoint) leave the
head pointing past the end (``audit.tail_truncated``); a tail deleted and re-written leaves a
different hash at the head's ``seq`` (``audit.tail_rewritten``).

The same file keeps the clock anchor (``station.clock``): the wall time and boot time of the last
audited commit made while the clock was trusted.

What it does not stop: root can rewrite this file as well as the log. Checkpoints exported off
the station (discs, export packages, the central store) are what close that: see README
"What root can still do".
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

from station import clock
from station.log import get
from station.vault import hand_to_owner

log = get()

HEAD_FILE = "audit-head.json"


def head_path(home: Path) -> Path:
    return home / HEAD_FILE


def catalog_home(db: sqlite_utils.Database) -> Path | None:
    """The folder of the catalog file (the station's home); None for an in-memory catalog."""
    if hasattr(db, "_station_home"):
        cached: Path | None = db._station_home
        return cached
    home: Path | None = None
    for _, name, file in db.execute("PRAGMA database_list").fetchall():
        if name == "main" and file:
            home = Path(file).parent
    setattr(db, "_station_home", home)  # noqa: B010
    return home


def read_head(home: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(head_path(home).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"unreadable": True}
    return data if isinstance(data, dict) else {"unreadable": True}


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    fd = os.open(home / f".{HEAD_FILE}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        hand_to_owner(home / f".{HEAD_FILE}.lock")
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write(home: Path, data: dict[str, Any]) -> None:
    path = head_path(home)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        hand_to_owner(tmp)
        os.write(fd, json.dumps(data, ensure_ascii=False, sort_keys=True).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(home, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def anchor(home: Path) -> clock.Reading | None:
    head = read_head(home)
    return clock.Reading.from_json(head.get("anchor")) if head else None


def advance(
    home: Path,
    *,
    seq: int | None,
    entry_hash: str | None,
    at: str | None,
    now: clock.Reading | None = None,
    force_anchor: bool = False,
) -> clock.Verdict:
    """Move the head forward to ``seq`` (never back) and, when the clock is trusted now (or
    ``force_anchor``: a supervisor vouched for it), the clock anchor to now."""
    now = now or clock.read_now()
    with _locked(home):
        cur = read_head(home) or {}
        if cur.get("unreadable"):
            log.error("audit.head_unreadable", path=str(head_path(home)))
            cur = {}
        data = dict(cur)
        if seq is not None and (not isinstance(cur.get("seq"), int) or seq > cur["seq"]):
            data.update(seq=seq, entry_hash=entry_hash, at=at)
        old = clock.Reading.from_json(cur.get("anchor"))
        verdict = clock.judge(old, now, synchronised=clock.host_synchronised("auto"))
        if verdict.trusted or force_anchor:
            data["anchor"] = now.to_json()
        data["clock"] = verdict.to_json()
        if data != cur:
            _write(home, data)
    return verdict


class _Mover:
    """Moves one home's head for every thread of this process. A thread whose commit finds
    another thread moving the head leaves word and returns at once; the mover moves the head
    again, to the log's newest entry, before it stops — so the head always ends at the newest
    committed entry, and eight sessions committing at once write the file a few times, not
    once each behind one another."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.busy = False
        self.again = False


_movers: dict[Path, _Mover] = {}
_movers_lock = threading.Lock()


def after_commit(db: sqlite_utils.Database) -> None:
    """Run by ``write_txn`` after a commit that appended audit entries (hooked by ``append``)."""
    home = catalog_home(db)
    if home is None:
        return
    with _movers_lock:
        mover = _movers.setdefault(home, _Mover())
    with mover.lock:
        if mover.busy:
            mover.again = True  # committed already: the mover reads it from the log
            return
        mover.busy = True
    try:
        while True:
            _to_newest(db, home)
            with mover.lock:
                if not mover.again:
                    mover.busy = False
                    return
                mover.again = False
    except BaseException:
        with mover.lock:
            mover.busy = False
        raise


def _to_newest(db: sqlite_utils.Database, home: Path) -> None:
    """Move the head to the log's newest committed entry (read now, on this connection)."""
    row = db.execute(
        "select seq, entry_hash, at from audit_log order by seq desc limit 1"
    ).fetchone()
    if row is None:
        return
    try:
        advance(home, seq=int(row[0]), entry_hash=str(row[1]), at=str(row[2]))
    except OSError as exc:  # the commit stands; the head lags until the next one
        log.error("audit.head_write_failed", error=str(exc), home=str(home))


def check(db: sqlite_utils.Database, home: Path, size: int) -> list[tuple[str, str]]:
    """``(kind, detail)`` for the log against its head: truncated | rewritten | missing."""
    head = read_head(home)
    if head is None:
        return [("missing", "no audit-head.json")] if size else []
    if head.get("unreadable"):
        return [("missing", "audit-head.json is unreadable")]
    seq = head.get("seq")
    if not isinstance(seq, int):
        return [("missing", "audit-head.json holds no head")] if size else []
    if seq > size:
        return [
            (
                "truncated",
                f"the head outside the catalog says {seq} entries; the log has {size}",
            )
        ]
    row = db.execute("select entry_hash from audit_log where seq = ?", [seq]).fetchone()
    if row is None or row[0] != head.get("entry_hash"):
        return [("rewritten", f"entry {seq} is not the one the head recorded")]
    return []
