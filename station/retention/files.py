"""File operations of the executor: re-hash before a delete, durable unlink. Originals are mode
0444; unlinking needs only write access to the folder."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from station.vault import Vault


def vault_file(vault: Vault, rel: str) -> Path:
    return vault.home / rel


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def remove(path: Path) -> None:
    """Unlink and make the removal durable (fsync of the folder)."""
    os.unlink(path)
    fsync_dir(path.parent)
