"""How an ingest run's I/O errors are named, once for every stage.

- a write to the vault failing for a full disk (``is_disk_full``): :class:`VaultFullError`
  (the run stops, nothing partial is kept, the recorder is not cleared);
- any other write to the vault: :class:`IngestError`;
- a read failing because the device went away (ENODEV, ENXIO, ENOTCONN, ESHUTDOWN, ENOMEDIUM, or
  the volume no longer listable): :class:`VolumeGoneError`;
- any other read error: that file fails, the run goes on.

Inside a run a stage stops with :class:`Abort` (the report's ``aborted`` reason, and the error to
raise after what was verified is committed).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from station.errors import IngestError, StationError, VaultFullError, VolumeGoneError, is_disk_full

GONE = (errno.ENODEV, errno.ENXIO, errno.ENOTCONN, errno.ESHUTDOWN, errno.ENOMEDIUM)


class Abort(Exception):
    def __init__(self, reason: str, error: StationError | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


def vault_error(home: Path, exc: OSError, path: Path) -> Abort:
    if is_disk_full(exc):
        err: StationError = VaultFullError(
            "存储已满 / the vault's disk is full; ingest stopped, nothing partial kept",
            where=str(home),
            hint="free space or extend the vault; the recorder was not cleared",
        )
        return Abort("vault full", err)
    return Abort(
        "vault error",
        IngestError(f"cannot write to the vault: {exc.strerror}", where=str(path)),
    )


def volume_gone(volume: Path) -> Abort:
    err = VolumeGoneError(
        "记录仪已断开 / the recorder volume went away during ingest",
        where=str(volume),
        hint="dock the recorder again; verified files are kept",
    )
    return Abort("volume gone", err)


def volume_alive(volume: Path) -> bool:
    try:
        os.stat(volume)
        os.listdir(volume)
    except OSError:
        return False
    return True
