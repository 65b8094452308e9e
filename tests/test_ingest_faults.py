"""I/O faults during ingest: read errors, a full vault disk (a real small ext4 on a loop device),
concurrent ingests of the same content. Nothing half-written becomes an original (R7)."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path

import pytest
import sqlite_utils

from station.catalog import open_catalog
from station.config import Settings
from station.errors import VaultFullError, VolumeGoneError
from station.hashing.copy import open_source
from station.hashing.faults import FailingReader
from station.ingest import IngestContext, ingest_volume
from station.vault import Vault


def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_eio_mid_file_fails_that_file_only(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    vol = tmp_path / "v"
    vol.mkdir()
    for name in ("A.MP4", "B.MP4", "C.MP4"):
        (vol / name).write_bytes(os.urandom(300_000))
    settings.ingest.chunk_kib = 64  # several reads per file

    def opener(p: Path):  # type: ignore[no-untyped-def]
        inner = open_source(p)
        return FailingReader(inner, "rrE", str(p)) if p.name == "B.MP4" else inner

    rep = ingest_volume(
        vault, db, settings, vol, IngestContext(kind="cli"), actor="t", opener=opener
    )
    by = {f.rel: f for f in rep.files}
    assert by["B.MP4"].outcome == "failed" and "read error" in (by["B.MP4"].error or "")
    assert by["A.MP4"].outcome == by["C.MP4"].outcome == "new"
    assert vol / "B.MP4" not in rep.verified_sources()  # never cleared (invariant 2)
    assert db.execute("select count(*) from recordings").fetchone()[0] == 2
    assert list(vault.staging.iterdir()) == []
    stored = sum(1 for p in vault.originals.rglob("*") if p.is_file())
    assert stored == 2
    state = db.execute("select state, files_failed from sessions").fetchone()
    assert tuple(state) == ("failed", 1)
    ev = db.execute("select data from audit_log where event = 'ingest.file_failed'").fetchone()
    assert "B.MP4" in ev[0]


def test_device_error_means_volume_gone(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, volume: Path
) -> None:
    def opener(p: Path):  # type: ignore[no-untyped-def]
        return FailingReader(open_source(p), "V", str(p))

    with pytest.raises(VolumeGoneError):
        ingest_volume(
            vault, db, settings, volume, IngestContext(kind="cli"), actor="t", opener=opener
        )
    assert db.execute("select count(*) from recordings").fetchone()[0] == 0
    assert list(vault.staging.iterdir()) == []


@pytest.mark.root
def test_vault_disk_full(small_vault: Vault, settings: Settings, tmp_path: Path) -> None:
    vol = tmp_path / "v"
    vol.mkdir()
    for i in range(8):
        (vol / f"R{i}.MP4").write_bytes(os.urandom(4 << 20))  # 32 MiB > 24 MiB disk
    before = _tree_hashes(vol)
    db = open_catalog(small_vault.catalog_path)
    try:
        _check_disk_full(small_vault, db, settings, vol, before)
    finally:
        db.close()


def _check_disk_full(
    small_vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    vol: Path,
    before: dict[str, str],
) -> None:
    with pytest.raises(VaultFullError) as e:
        ingest_volume(small_vault, db, settings, vol, IngestContext(kind="cli"), actor="t")
    assert "full" in str(e.value)
    rep = e.value.report  # type: ignore[attr-defined]
    assert rep.aborted == "vault full"
    # nothing partial kept: staging is empty, every stored original is whole and catalogued
    assert list(small_vault.staging.iterdir()) == []
    rows = {r[0]: r[1] for r in db.execute("select sha256, vault_path from recordings")}
    on_disk = [p for p in small_vault.originals.rglob("*") if p.is_file()]
    assert len(on_disk) == len(rows) == rep.count("new")
    for p in on_disk:
        assert hashlib.sha256(p.read_bytes()).hexdigest() in rows
    # the verified ones may be cleared, the rest not
    assert len(rep.verified_sources()) == len(rows) < 8
    # the volume is untouched
    assert _tree_hashes(vol) == before
    state = db.execute("select state from sessions").fetchone()[0]
    assert state == "failed"


def test_concurrent_ingests_of_same_content(
    vault: Vault, settings: Settings, volume: Path, tmp_path: Path
) -> None:
    twin = tmp_path / "twin"
    shutil.copytree(volume, twin)
    errors: list[BaseException] = []

    def run(vol: Path) -> None:
        try:
            db = open_catalog(vault.catalog_path)  # both threads race to open and migrate too
            ingest_volume(vault, db, settings, vol, IngestContext(kind="dock"), actor="t")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(v,)) for v in (volume, twin)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    db = open_catalog(vault.catalog_path)
    assert db.execute("select count(*) from recordings").fetchone()[0] == 3
    outcomes = [r[0] for r in db.execute("select outcome from sightings")]
    assert sorted(outcomes) == ["held"] * 3 + ["new"] * 3
    db.close()


def test_faults_go_through_the_production_read_ahead(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    """A test's opener serves the read-ahead too: the small files after the first are opened
    (and advised into the cache) before the first is read, each exactly once, and a fault in a
    reader opened ahead fails that file only."""
    vol = tmp_path / "v"
    vol.mkdir()
    for name in ("A.MP4", "B.MP4", "C.MP4", "D.MP4"):
        (vol / name).write_bytes(os.urandom(200_000))
    events: list[str] = []

    class Watched(FailingReader):
        def readinto(self, buffer: memoryview) -> int | None:
            if self.calls == 0:
                events.append(f"read {Path(self.name).name}")
            return super().readinto(buffer)

        def will_need(self) -> None:
            events.append(f"ahead {Path(self.name).name}")
            super().will_need()

    def opener(p: Path):  # type: ignore[no-untyped-def]
        events.append(f"open {p.name}")
        return Watched(open_source(p), "rE" if p.name == "C.MP4" else "r", str(p))

    settings.ingest.chunk_kib = 64
    rep = ingest_volume(
        vault, db, settings, vol, IngestContext(kind="cli"), actor="t", opener=opener
    )
    first_read = events.index("read A.MP4")
    for name in ("B.MP4", "C.MP4", "D.MP4"):
        assert events.index(f"ahead {name}") < first_read, events
    assert sorted(e for e in events if e.startswith("open ")) == [
        f"open {n}" for n in ("A.MP4", "B.MP4", "C.MP4", "D.MP4")
    ]  # one open per file: the copy used the reader opened ahead
    by = {f.rel: f.outcome for f in rep.files}
    assert by == {"A.MP4": "new", "B.MP4": "new", "C.MP4": "failed", "D.MP4": "new"}
    assert list(vault.staging.iterdir()) == []
