"""Test helpers for the dock: re-exports of the dock bench plus clip volumes."""

from __future__ import annotations

from pathlib import Path

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
    "read_loop",
    "sh",
    "sim_recorder",
]


def make_recorder_volume(root: Path, device: str, officer: str, clips: int = 3) -> Path:
    """Real H.264/AAC clips named as the recorder ``device`` would name them."""
    from station.sim.volume import make_volume

    make_volume(root, device=device, officer=officer, clips=clips, seconds=1.0, size="160x120")
    return root
