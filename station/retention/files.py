"""File moves for the executor: vault ⇄ pending-purge, durable (fsync of the folders), and
re-hashing before a delete. Originals are mode 0444; renames and unlinks need only the folder."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

from station.errors import StationError, VaultFullError
from station.vault import Vault

# Expired files wait here for retention.grace_days, under the same relative path they had in
# the vault (``pending-purge/originals/ab/cd/<sha>.<ext>``), so a restore is a rename back.
PENDING_DIR = "pending-purge"


def pending_root(vault: Vault) -> Path:
    return vault.home / PENDING_DIR


def pending_path(vault: Vault, rel: str) -> Path:
    return pending_root(vault) / rel


def vault_file(vault: Vault, rel: str) -> Path:
    return vault.home / rel


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def move(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst`` (same file system: atomic), then make both folders durable."""
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists():
            raise StationError(
                f"目标已存在 / will not overwrite {dst}", where=str(dst), hint="report this"
            )
        os.rename(src, dst)
        fsync_dir(dst.parent)
        fsync_dir(src.parent)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise VaultFullError(
                f"磁盘已满 / disk full while moving {src} → {dst}", where=str(dst)
            ) from exc
        raise StationError(
            f"无法移动文件 / cannot move {src} → {dst}: {exc.strerror}", where=str(src)
        ) from exc


def sha256_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def remove(path: Path) -> None:
    os.unlink(path)
    fsync_dir(path.parent)
