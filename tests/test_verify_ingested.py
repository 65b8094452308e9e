"""``station verify`` on footage stored by the real ingest engine from a simulated recorder
volume (real H.264/AAC clips made by ffmpeg): clean, then tampered from outside (R7)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import sqlite_utils

from station.audit import checkpoint
from station.config import Settings
from station.ingest import IngestContext, ingest_volume
from station.vault import Vault
from station.verify import run_verify


def test_engine_ingest_verifies_clean_then_each_tampering_is_found(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, volume: Path
) -> None:
    report = ingest_volume(
        vault, db, settings, volume, IngestContext(kind="cli", drift_s=2.0), actor="dock"
    )
    assert report.count("new") == 3
    checkpoint.make_checkpoint(vault, db, settings)
    clean = run_verify(vault, db, settings)
    assert clean.ok and clean.findings == [] and clean.files_checked == 3
    # The engine's own audit entries carry the row's key fields: nothing is "unsealed".
    assert not any(f.code == "catalog.row_unsealed" for f in clean.findings)

    rows = list(db.query("select sha256, vault_path from recordings order by sequence"))
    conn = sqlite3.connect(vault.catalog_path)
    conn.execute(
        "update recordings set officer_id = '999999' where sha256 = ?", [rows[0]["sha256"]]
    )
    conn.commit()
    conn.close()
    flipped = vault.home / rows[1]["vault_path"]
    os.chmod(flipped, 0o644)
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0x80
    flipped.write_bytes(bytes(data))
    os.chmod(flipped, 0o444)
    (vault.home / rows[2]["vault_path"]).unlink()

    found = run_verify(vault, db, Settings())
    got = {(f.code, f.subject) for f in found.findings}
    assert got == {
        ("catalog.row_edited", rows[0]["sha256"]),
        ("file.changed", rows[1]["sha256"]),
        ("file.missing", rows[2]["sha256"]),
    }
