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


def test_real_transcode_derivative_then_file_and_row_swapped(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, volume: Path
) -> None:
    """A derivative made by the real transcode worker verifies clean; replacing its file *and*
    re-pointing its catalog hash to the new file is caught by the transcode's audit entry."""
    import hashlib

    from station.transcode.service import run_once

    ingest_volume(vault, db, settings, volume, IngestContext(kind="cli"), actor="dock")
    summary = run_once(vault, db, settings, actor="transcode", limit=1)
    assert summary.done == 1
    checkpoint.make_checkpoint(vault, db, settings)
    clean = run_verify(vault, db, settings)
    assert clean.findings == [] and clean.files_checked == 4
    d_id, rel = db.execute("select id, vault_path from derivatives where state = 'done'").fetchone()
    path = vault.home / rel
    os.chmod(path, 0o644)
    forged = b"a different video" * 100
    path.write_bytes(forged)
    conn = sqlite3.connect(vault.catalog_path)
    conn.execute(
        "update derivatives set sha256 = ?, size = ? where id = ?",
        [hashlib.sha256(forged).hexdigest(), len(forged), d_id],
    )
    conn.commit()
    conn.close()
    found = run_verify(vault, db, settings)
    assert [(f.code, f.subject, f.where) for f in found.findings] == [
        ("catalog.row_edited", f"derivative:{d_id}", "derivatives")
    ]
    assert set(found.findings[0].data["fields"]) == {"sha256", "size"}  # type: ignore[index]
