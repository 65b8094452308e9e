"""File operations of the executor: re-hash before a delete, durable unlink. Originals are mode
0444; unlinking needs only write access to the folder."""

from __future__ import annotations

import os
from pathlib import Path

from station.hashing.copy import fsync_dir, hash_file
from station.vault import Vault


def vault_file(vault: Vault, rel: str) -> Path:
    return vault.home / rel


def sha256_file(path: Path) -> str:
    return hash_file(path, from_disk=False)[0]


def remove(path: Path) -> None:
    """Unlink and make the removal durable (fsync of the folder)."""
    os.unlink(path)
    fsync_dir(path.parent)
