"""Bring a copy back from the central store (``station fleet fetch``), verified by SHA-256.

The object is downloaded into a temporary file beside the target, hashed while it arrives and
compared with the catalog's SHA-256; only a match is moved into place (fsync, rename, fsync of
the folder). Without ``--out`` a copy freed from the vault goes back to its vault path, mode
0444, and the catalog says so in the same transaction as its audit entry.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from station.audit import append
from station.catalog import write_txn
from station.config import Settings
from station.errors import FleetError, IntegrityError, NotFoundError
from station.fleet.store import Store
from station.hashing.copy import fsync_dir
from station.log import get
from station.vault import Vault

log = get()


@dataclass
class Fetched:
    sha256: str
    key: str
    path: str
    size: int
    restored: bool


def fetch(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    sha256: str,
    *,
    out: Path | None,
    actor: str,
) -> Fetched:
    row = db.execute(
        "select key, version_id, rel, size, freed_at, state, kind from fleet_objects"
        " where sha256 = ? and state = 'confirmed' order by kind = 'original' desc limit 1",
        [sha256],
    ).fetchone()
    if row is None:
        raise NotFoundError(
            f"中心存储中没有已确认的副本 / no confirmed central copy of {sha256}",
            where="SHA256",
            hint="`station fleet status` shows what is replicated",
        )
    key, version, rel, size, freed_at, _state, kind = row
    restore = out is None
    if restore:
        if rel is None:
            raise FleetError(
                "该对象没有保管库路径 / this object has no vault path; use --out", where=key
            )
        target = vault.home / rel
        if target.exists() and freed_at is None:
            raise FleetError(
                "本地副本仍在 / the local copy is still in the vault; nothing to restore",
                where=str(target),
                hint="use --out FILE for a copy elsewhere",
            )
    else:
        assert out is not None
        target = out
        if target.exists():
            raise FleetError("目标文件已存在 / the target file exists", where=str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.fetch-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    store = Store(settings.fleet)
    try:
        digest = store.get_to(key, version, tmp)
        if digest != sha256:
            raise IntegrityError(
                f"取回的副本不符 / the fetched copy hashes to {digest}, the catalog says {sha256}",
                where=key,
                hint="the central copy may be damaged; nothing was written",
            )
        got = tmp.stat().st_size
        if size is not None and got != size:
            raise IntegrityError(f"大小不符 / {got} bytes, expected {size}", where=key)
        if restore:
            os.chmod(tmp, 0o444)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    with write_txn(db):
        if restore:
            db.execute("update fleet_objects set freed_at = null where key = ?", [key])
        append(
            db,
            "fleet.fetched",
            actor=actor,
            subject=sha256,
            data={"key": key, "kind": kind, "restored": restore, "to": str(target)},
        )
    log.info("fleet.fetched", key=key, restored=restore, path=str(target))
    return Fetched(sha256, key, str(target), got, restore)
