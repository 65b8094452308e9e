"""Test helpers for the dock: re-exports of the dock bench plus clip volumes."""

from __future__ import annotations

import shutil
from pathlib import Path

import sqlite_utils

from station.usb_dock.slots import SlotState
from station_testbed.dockbed import (
    REPO,
    DockBed,
    exfat_loop,
    files_of,
    is_root,
    read_loop,
    sh,
    sim_recorder,
)

UmockdevStation = DockBed

__all__ = [
    "REPO",
    "DockBed",
    "UmockdevStation",
    "exfat_loop",
    "files_of",
    "is_root",
    "make_recorder_volume",
    "mass_storage_recorder",
    "read_loop",
    "sh",
    "sim_recorder",
]


def make_recorder_volume(root: Path, device: str, officer: str, clips: int = 3) -> Path:
    """Real H.264/AAC clips named as the recorder ``device`` would name them."""
    from station.sim.volume import make_volume

    make_volume(root, device=device, officer=officer, clips=clips, seconds=1.0, size="160x120")
    return root


def mass_storage_recorder(
    db: sqlite_utils.Database, content: Path, storage: Path
) -> tuple[Path, SlotState]:
    """A recorder enrolled as a plain USB mass-storage device (no serial link; known by its USB
    serial number, R3), its storage a copy of ``content`` at ``storage``, docked in slot 3-1."""
    from station.usb_dock import registry

    registry.enrol(
        db,
        "ZFY0001",
        officer_id="100001",
        unit_id="110101000001",
        actor="admin",
        driver="mass-storage",
        usb_serial="USB123",
    )
    shutil.copytree(content, storage)
    st = SlotState(
        "3-1",
        storage=str(storage),
        fstype=None,
        recorder=True,
        driver="mass-storage",
        usb_serial="USB123",
    )
    st.storage_ready.set()
    return storage, st
