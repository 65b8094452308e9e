"""Who owns in-flight work, and who may write into the vault (DESIGN.md invariant 8, R7).

**Owners.** Every run that stages copies — a ``station ingest``, a dock session, an inbox pass —
holds an :class:`Owner`: a folder ``staging/<owner id>/`` whose ``lock`` file the run keeps
``flock``-ed for its whole life. Its partial copies live only in that folder and its session row
names it (``sessions.owner``). The kernel drops a ``flock`` when the process dies, however it dies
(kill -9, power cut, OOM), and a lock never outlives its process or survives a reboot, so
"the lock is free" means exactly "the owner is dead". Start-up recovery (any number of them, at
any time) reaps only folders whose lock it can take, and closes only sessions whose owner is dead.

**One writer at a time.** Copying and verifying the staged copies runs without any lock, so any
number of runs copy at once. Naming copies in ``originals/`` and committing their catalog rows
happens under one vault-wide writer lock (``run/writer.lock``, waited for). Inside it a run sees
the vault and the catalog as they are, decides for each file whether it is new, already held
(re-hashed from disk in this run) or a rotten copy to repair, links, flushes and commits, and —
only if that commit fails — takes back the names it linked itself. No other run can have counted
those names as stored in between, so no run ever unlinks a file another run committed.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import sqlite_utils

from station.errors import IngestError, VaultFullError, is_disk_full
from station.log import get
from station.timeutil import to_iso, utcnow
from station.vault import Vault

log = get()

LOCK_NAME = "lock"
INFO_NAME = "owner.json"
NAMING_NAME = "naming"  # vault paths a batch is about to name, until its commit
_ID = re.compile(r"^o-[0-9a-f]{32}$")
_NEW = re.compile(r"^\.new-o-[0-9a-f]{32}$")


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _start_ticks() -> int | None:
    """This process's start time in clock ticks since boot (with the boot id and pid it names
    the process uniquely; written for people, the lock is what decides)."""
    try:
        stat = Path("/proc/self/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
            return False
        raise
    return True


def _staging_error(exc: OSError, where: Path) -> IngestError:
    if is_disk_full(exc):
        return VaultFullError(
            "存储已满 / the vault's disk is full; nothing was copied",
            where=str(where),
            hint="free space or extend the vault; the recorder was not cleared",
        )
    return IngestError(f"cannot create a staging folder: {exc.strerror}", where=str(where))


class Owner:
    """The live owner of one run's in-flight work (see the module docstring)."""

    def __init__(self, vault: Vault, owner_id: str, fd: int) -> None:
        self.vault = vault
        self.id = owner_id
        self.dir = vault.staging / owner_id
        self._fd: int | None = fd
        self._seq = 0
        self._mutex = threading.Lock()

    @classmethod
    def acquire(cls, vault: Vault, kind: str) -> Owner:
        """Create ``staging/<id>/`` with its lock held. The folder is built under a dot name
        and renamed into place with the lock already taken, so a reaper never sees an owner
        folder whose lock is free while its owner lives."""
        vault.staging.mkdir(parents=True, exist_ok=True)
        owner_id = "o-" + uuid.uuid4().hex
        tmp = vault.staging / f".new-{owner_id}"
        try:
            tmp.mkdir()
            fd = os.open(tmp / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _staging_error(exc, tmp) from exc
        fcntl.flock(fd, fcntl.LOCK_EX)  # new and unique: never contended
        info = {
            "kind": kind,
            "pid": os.getpid(),
            "boot_id": _boot_id(),
            "start_ticks": _start_ticks(),
            "since": to_iso(utcnow()),
        }
        try:
            (tmp / INFO_NAME).write_text(json.dumps(info), encoding="utf-8")
            os.rename(tmp, vault.staging / owner_id)
        except OSError as exc:
            os.close(fd)
            shutil.rmtree(tmp, ignore_errors=True)
            raise _staging_error(exc, tmp) from exc
        log.debug("custody.owner_acquired", owner=owner_id, kind=kind)
        return cls(vault, owner_id, fd)

    def part(self) -> Path:
        """A fresh name for a partial copy of this owner."""
        with self._mutex:
            self._seq += 1
            return self.dir / f"{self._seq}.part"

    @property
    def alive(self) -> bool:
        return self._fd is not None

    def naming(self, paths: list[Path]) -> None:
        """Write down (durably) the vault paths this owner is about to create, before it
        creates them: if it dies before their catalog commit, recovery removes the ones no
        catalog row claims (never stored, never verified, their sources never cleared)."""
        tmp = self.dir / f".{NAMING_NAME}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("".join(f"{p.relative_to(self.vault.home)}\n" for p in paths))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.dir / NAMING_NAME)
        fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)  # the list's own name is durable before any vault path it lists
        finally:
            os.close(fd)

    def named_committed(self) -> None:
        """The batch's rows are committed: nothing left to take back."""
        (self.dir / NAMING_NAME).unlink(missing_ok=True)

    def release(self) -> None:
        """Remove what this owner left in staging, then drop the lock (idempotent)."""
        if self._fd is None:
            return
        try:
            for p in self.dir.iterdir():
                if p.name != LOCK_NAME:
                    p.unlink(missing_ok=True)
            (self.dir / LOCK_NAME).unlink(missing_ok=True)
            self.dir.rmdir()
        except OSError as exc:
            log.warning("custody.release_incomplete", owner=self.id, error=str(exc))
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Owner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def owner_alive(vault: Vault, owner_id: str | None) -> bool:
    """Whether the owner ``owner_id`` still holds its lock (None: a row from before owners)."""
    if not owner_id or not _ID.match(owner_id):
        return False
    try:
        fd = os.open(vault.staging / owner_id / LOCK_NAME, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False  # released (its folder is gone) or reaped
    try:
        return not _try_lock(fd)
    finally:
        os.close(fd)  # closing drops a lock this call took


def reap_dead_owners(vault: Vault, uncommitted: Callable[[list[Path]], None] | None = None) -> int:
    """Remove the staging folders of dead owners (and loose partial copies of older versions);
    return how many partial copies went. Live owners' folders are never touched. A dead owner
    that died between naming files in the vault and committing them left their paths in its
    ``naming`` file: ``uncommitted`` gets them (while the dead owner's lock is held here)."""
    reaped = 0
    if not vault.staging.is_dir():
        return 0
    for p in vault.staging.iterdir():
        if p.is_file() and p.suffix == ".part":  # unowned: written before owners existed
            p.unlink(missing_ok=True)
            reaped += 1
            continue
        if not p.is_dir() or p.is_symlink() or not (_ID.match(p.name) or _NEW.match(p.name)):
            continue
        try:
            fd = os.open(p / LOCK_NAME, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # being built (or released) right now
        try:
            if not _try_lock(fd):
                continue  # alive
            journal = p / NAMING_NAME
            if uncommitted is not None and journal.is_file():
                lines = journal.read_text("utf-8").splitlines()
                named = [vault.home / line for line in lines if line and ".." not in line]
                uncommitted(named)
            for f in p.iterdir():
                if f.name != LOCK_NAME:
                    reaped += f.suffix == ".part"
                    f.unlink(missing_ok=True)
            (p / LOCK_NAME).unlink(missing_ok=True)
            try:
                p.rmdir()
            except OSError:
                pass
            log.warning("custody.owner_reaped", owner=p.name)
        finally:
            os.close(fd)
    return reaped


class WriterLock:
    """The vault-wide writer lock (``run/writer.lock``), waited for; one per holder (threads
    of one process exclude each other too: each holder opens the file itself)."""

    def __init__(self, vault: Vault) -> None:
        self.path = vault.run / "writer.lock"
        self._fd: int | None = None

    def __enter__(self) -> WriterLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if not _try_lock(fd):
                # wait in the kernel (the GIL released): the lock is taken the moment its
                # holder lets go, not at the end of a polling sleep — eight docks committing
                # one after another lose no time between them
                log.debug("custody.writer_wait", lock=str(self.path))
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the lock
            self._fd = None


# Copies the station no longer holds: the central store (R19) has the only confirmed copy.
def freed_paths(db: sqlite_utils.Database, recording: str | None = None) -> set[str]:
    """Vault-relative paths whose only copy is the confirmed central one (of one recording's
    files when ``recording`` is given)."""
    if "fleet_objects" not in db.table_names():
        return set()
    sql = (
        "select rel from fleet_objects where freed_at is not null and state = 'confirmed'"
        " and rel is not null"
    )
    args: list[str] = []
    if recording is not None:
        sql += " and recording = ?"
        args.append(recording)
    return {r[0] for r in db.execute(sql, args)}
