"""The watched inbox end to end: real inotify, real engine, real SQLite (issue 8)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlite_utils

from station.vault import Vault

pytest.importorskip("station.ingest.engine")  # the lead's ingest engine (main)
from test_inbox_support import drops, inbox_settings, make_drop, recordings, running


def test_drop_with_sidecar_is_ingested_and_removed(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with running(vault, inbox_settings([inbox])) as svc:
        shas = make_drop(
            inbox,
            "相机A 2026-11-20",
            {"DCIM/100CANON/IMG_0001.JPG": b"\xff\xd8one\xff\xd9", "clip.MP4": b"x" * 5000},
            sidecar={"officer": "123456", "device": "CAM-07", "unit": "430400000000"},
        )
        assert svc.wait_idle(20)
    recs = recordings(db)
    assert set(shas.values()) <= set(recs)
    for sha in shas.values():
        assert recs[sha]["officer_id"] == "123456"
        assert recs[sha]["device_id"] == "CAM-07"
    (d,) = drops(db)
    assert d["state"] == "done" and d["files_new"] == 2 and d["files_removed"] == 2
    assert not (inbox / "相机A 2026-11-20").exists()  # removed only after verification
    sess = db.execute("select kind from sessions where id = ?", [d["session_id"]]).fetchone()
    assert sess[0] == "inbox"
