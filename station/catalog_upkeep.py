"""Catalog upkeep for installs and upgrades: an online backup, then the migrations.

``backup`` copies the live catalog with SQLite's online backup API (a consistent snapshot even
while the daemon writes; WAL content included), to a temporary name in the target folder, checks
it with ``PRAGMA integrity_check``, fsyncs it and renames it into place (never a half file under
the final name). ``migrate`` takes such a backup first whenever a migration is pending, then
applies every pending migration in one transaction (``station.catalog.migrations.apply``): a
failure leaves the catalog exactly as it was and says where the backup is.

Backups live in ``$STATION_HOME/backups/`` as ``catalog-<UTC time>-<reason>.sqlite``; the newest
``keep`` of them are kept, older ones removed after a new one is safely in place. Evidence files
are never touched here: only the catalog file is copied.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from station.catalog import migrations
from station.catalog.db import open_catalog
from station.errors import CatalogError
from station.hashing import fsync_dir
from station.log import get
from station.timeutil import utcnow

log = get()

BACKUP_PREFIX = "catalog-"


@dataclass
class MigrateResult:
    before: list[int]  # migration numbers applied before
    applied: list[str] = field(default_factory=list)  # "NNNN_name" applied now
    backup: Path | None = None


def backup(catalog: Path, dest_dir: Path, *, reason: str = "manual", keep: int = 5) -> Path:
    """A consistent copy of ``catalog`` in ``dest_dir``; returns its path."""
    if not catalog.exists():
        raise CatalogError("目录数据库不存在 / no catalog to back up", where=str(catalog))
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(dest_dir, 0o750)
    except OSError as exc:
        raise CatalogError(
            f"cannot create the backup folder: {exc.strerror}", where=str(dest_dir)
        ) from exc
    stamp = utcnow().strftime("%Y%m%dT%H%M%S.%fZ")
    final = dest_dir / f"{BACKUP_PREFIX}{stamp}-{_safe(reason)}.sqlite"
    tmp = final.with_name(f".{final.name}.tmp")
    src = sqlite3.connect(str(catalog), timeout=30.0)
    try:
        tmp.unlink(missing_ok=True)
        dst = sqlite3.connect(str(tmp))
        try:
            src.backup(dst)
            # a rollback journal, so the copy is one self-contained file
            dst.execute("PRAGMA journal_mode=DELETE")
            check = dst.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            dst.close()
    except sqlite3.Error as exc:
        tmp.unlink(missing_ok=True)
        raise CatalogError(f"catalog backup failed: {exc}", where=str(final)) from exc
    finally:
        src.close()
    if check != "ok":
        tmp.unlink(missing_ok=True)
        raise CatalogError(f"the backup copy fails its integrity check: {check}", where=str(tmp))
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o440)
    os.replace(tmp, final)
    fsync_dir(dest_dir)
    log.info("catalog.backed_up", path=str(final), reason=reason)
    _prune(dest_dir, keep)
    return final


def _audit(
    db: sqlite_utils.Database, ran: list[migrations.Migration], actor: str, saved: Path | None
) -> None:
    """The schema change in the audit log, in the migrations' own transaction."""
    if "audit_log" not in db.table_names():
        return
    from station.audit import append

    append(
        db,
        "catalog.migrated",
        actor=actor,
        subject=None,
        data={
            "applied": [f"{m.number:04d}_{m.name}" for m in ran],
            "backup": saved.name if saved is not None else None,
        },
    )


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:40] or "backup"


def _prune(dest_dir: Path, keep: int) -> None:
    found = sorted(dest_dir.glob(f"{BACKUP_PREFIX}*.sqlite"))
    for old in found[: max(0, len(found) - keep)]:
        old.unlink(missing_ok=True)
        log.info("catalog.backup_removed", path=str(old))


def migrate(
    catalog: Path,
    backup_dir: Path,
    *,
    available: list[migrations.Migration] | None = None,
    keep: int = 5,
    actor: str = "station",
) -> MigrateResult:
    """Back the catalog up, then apply the pending migrations in one transaction.

    Nothing pending: no backup, nothing changed. A catalog that does not exist yet is created
    (a fresh install has nothing to back up).
    """
    fresh = not catalog.exists()
    db = open_catalog(catalog, migrate=False)
    try:
        before = sorted(migrations.applied(db))
        todo = migrations.pending(db, available)
        result = MigrateResult(before=before)
        if not todo:
            return result
        if not fresh and before:
            first = todo[0]
            result.backup = backup(
                catalog, backup_dir, reason=f"before-m{first.number:04d}", keep=keep
            )
        try:
            ran = migrations.apply(
                db, available, on_applied=lambda d, r: _audit(d, r, actor, result.backup)
            )
        except CatalogError as exc:
            if result.backup is not None:
                exc.hint = f"{exc.hint}; backup taken before: {result.backup}"
            log.error("catalog.migrate_failed", error=exc.message, backup=str(result.backup))
            raise
        result.applied = [f"{m.number:04d}_{m.name}" for m in ran]
        log.info("catalog.migrated", applied=result.applied, backup=str(result.backup))
        return result
    finally:
        db.close()
