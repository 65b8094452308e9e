"""The ingest engine end to end on real files (R1, R5, R7; DESIGN.md invariants 1–3)."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from station.config import Settings, parse_settings
from station.errors import VolumeGoneError
from station.hashing.copy import open_source
from station.ingest import IngestContext, ingest_files, ingest_volume, recover_at_startup
from station.vault import Vault


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def media(volume: Path) -> list[Path]:
    return sorted(p for p in volume.rglob("*") if p.is_file())


def test_ingest_stores_verified_read_only_originals(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, volume: Path
) -> None:
    before = {p: sha(p) for p in media(volume)}
    report = ingest_volume(vault, db, settings, volume, IngestContext(kind="cli"), actor="t")
    assert report.count("new") == 3 and report.ok
    assert sorted(report.verified_sources()) == sorted(before)
    for src, digest in before.items():
        row = db.execute(
            "select vault_path, size from recordings where sha256 = ?", [digest]
        ).fetchone()
        assert row is not None
        stored = vault.home / row[0]
        assert sha(stored) == digest  # bit-exact (R7)
        assert stat.S_IMODE(stored.stat().st_mode) == 0o444
        assert row[1] == src.stat().st_size
    # the source was never modified
    assert {p: sha(p) for p in media(volume)} == before
    assert list(vault.staging.iterdir()) == []
    # one audit entry per stored file, in the chain
    events = [r[0] for r in db.execute("select event from audit_log order by seq")]
    assert events.count("recording.ingested") == 3


def test_filename_metadata_and_r1_delay(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, volume: Path
) -> None:
    ingest_volume(vault, db, settings, volume, IngestContext(kind="cli", drift_s=40.0), actor="t")
    rows = list(db.query("select * from recordings order by sequence"))
    assert [r["sequence"] for r in rows] == [1, 2, 3]
    assert all(r["device_id"] == "DSJ0001" and r["officer_id"] == "100001" for r in rows)
    assert [r["important"] for r in rows] == [1, 0, 0]
    assert all(r["time_source"] == "filename" for r in rows)
    first = rows[0]
    # device wall clock in Asia/Shanghai (UTC+8), 40 s fast: corrected UTC = local - 8 h - 40 s
    import datetime as dt

    from station.timeutil import local_naive_to_utc, parse_iso, to_iso

    local = dt.datetime.fromisoformat(first["recorded_at_device"])
    expect = local_naive_to_utc(local, "Asia/Shanghai") - dt.timedelta(seconds=40)
    assert first["recorded_at"] == to_iso(expect)
    assert first["drift_s"] == 40.0
    # R1: delay measured from the end of the recording (mtime, corrected) to ingest
    end = parse_iso(first["end_at"])
    ingested = parse_iso(first["ingested_at"])
    assert first["ingest_delay_s"] == pytest.approx((ingested - end).total_seconds(), abs=1)
    assert first["ingest_delay_s"] > 3600  # sim clips end an hour before now


def test_reingest_adds_nothing(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, volume: Path
) -> None:
    ingest_volume(vault, db, settings, volume, IngestContext(kind="cli"), actor="t")
    n_files = sum(1 for p in vault.originals.rglob("*") if p.is_file())
    # one vault copy rots without changing its size: a check by size would still pass it
    rotten = next(p for p in vault.originals.rglob("*") if p.is_file())
    size = rotten.stat().st_size
    rotten.chmod(0o644)
    rotten.write_bytes(b"\0" * size)
    again = ingest_volume(vault, db, settings, volume, IngestContext(kind="cli"), actor="t")
    assert again.count("held") == 3 and again.count("new") == 0
    # held files count as verified because this run re-hashed the vault's copies from disk
    # (DESIGN.md invariant 2), not because a file of that size exists: the rotten one was found
    # and replaced by this run's verified copy
    assert len(again.verified_sources()) == 3 and all(f.verified for f in again.files)
    assert sha(rotten) == rotten.name.split(".")[0]
    assert [p.name for p in (vault.home / "quarantine").iterdir()]
    assert db.execute("select count(*) from recordings").fetchone()[0] == 3
    assert sum(1 for p in vault.originals.rglob("*") if p.is_file()) == n_files
    assert db.execute("select count(*) from sightings where outcome='held'").fetchone()[0] == 3
    # without the re-read (verify_after_write off) a held file is never counted as verified
    unproven = parse_settings(
        {
            "ingest": {"verify_after_write": False},
            "dock": {"clear_policy": "off"},
            "inbox": {"after_verify": "keep"},
        }
    )
    third = ingest_volume(vault, db, unproven, volume, IngestContext(kind="cli"), actor="t")
    assert third.count("held") == 3 and third.verified_sources() == []


def test_same_content_twice_on_one_volume_is_stored_once(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    vol = tmp_path / "v"
    vol.mkdir()
    (vol / "a.MP4").write_bytes(b"x" * 5000)
    (vol / "b.MP4").write_bytes(b"x" * 5000)
    rep = ingest_volume(vault, db, settings, vol, IngestContext(kind="cli"), actor="t")
    assert sorted(f.outcome for f in rep.files) == ["held", "new"]
    assert db.execute("select count(*) from recordings").fetchone()[0] == 1


def test_damaged_media_stored_and_flagged(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, volume: Path
) -> None:
    clip = media(volume)[0]
    data = clip.read_bytes()
    (volume / "TRUNC.MP4").write_bytes(data[: len(data) // 2])
    (volume / "EMPTY.MP4").write_bytes(b"")
    (volume / "NOIDX.MP4").write_bytes(data[:32] + b"\0" * 100)
    rep = ingest_volume(vault, db, settings, volume, IngestContext(kind="cli"), actor="t")
    assert rep.count("failed") == 0
    damaged = {
        r["original_name"]: r["damage_reason"]
        for r in db.query("select original_name, damage_reason from recordings where damaged = 1")
    }
    assert set(damaged) == {"TRUNC.MP4", "EMPTY.MP4", "NOIDX.MP4"}
    assert "truncated" in damaged["TRUNC.MP4"]
    assert "empty" in damaged["EMPTY.MP4"]
    # stored bit-exact all the same
    row = db.execute("select vault_path from recordings where original_name='TRUNC.MP4'").fetchone()
    assert (vault.home / row[0]).read_bytes() == data[: len(data) // 2]
    # an intact clip is not flagged
    assert db.execute("select count(*) from recordings where damaged = 0").fetchone()[0] == 3


def test_unknown_files_are_catalogued_as_other(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    vol = tmp_path / "v"
    (vol / "MISC").mkdir(parents=True)
    (vol / "MISC" / "device.log").write_text("log")
    (vol / "MISC" / "NOEXT").write_text("??")
    (vol / "PHOTO.JPG").write_bytes(b"\xff\xd8" + b"1" * 10 + b"\xff\xd9")
    (vol / "REC.WAV").write_bytes(b"RIFF....")
    ingest_volume(vault, db, settings, vol, IngestContext(kind="cli"), actor="t")
    kinds = {r[0]: r[1] for r in db.execute("select original_name, media_kind from recordings")}
    assert kinds == {
        "device.log": "other",
        "NOEXT": "other",
        "PHOTO.JPG": "image",
        "REC.WAV": "audio",
    }


def test_awkward_names(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    vol = tmp_path / "v"
    vol.mkdir()
    names = [
        b"..hidden.MP4",
        b"a..b.MP4",
        b"\xff\xfebad-utf8.MP4",
        b"L" * 251 + b".MP4",
        "执法记录_2024.MP4".encode(),
    ]
    for i, n in enumerate(names):
        with open(os.path.join(os.fsencode(vol), n), "wb") as f:
            f.write(b"clip %d" % i)
    rep = ingest_volume(vault, db, settings, vol, IngestContext(kind="cli"), actor="t")
    assert rep.count("new") == len(names) and rep.ok
    stored = {r[0] for r in db.execute("select original_name from recordings")}
    assert "\\xff\\xfebad-utf8.MP4" in stored
    assert "执法记录_2024.MP4" in stored
    assert "L" * 251 + ".MP4" in stored
    # nothing was written outside the vault's originals
    assert all(p.is_relative_to(vault.originals) for p in vault.originals.rglob("*"))


def test_files_outside_base_refused(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    base = tmp_path / "drop"
    base.mkdir()
    (base / "in.MP4").write_bytes(b"inside")
    outside = tmp_path / "secret.MP4"
    outside.write_bytes(b"outside")
    rep = ingest_files(
        vault,
        db,
        settings,
        [base / "in.MP4", outside, Path("../secret.MP4"), Path("/etc/passwd")],
        base,
        IngestContext(kind="inbox"),
        actor="t",
    )
    outcomes = sorted((f.rel, f.outcome) for f in rep.files)
    assert ("in.MP4", "new") in outcomes
    assert sum(1 for _, o in outcomes if o == "failed") == 3
    assert db.execute("select count(*) from recordings").fetchone()[0] == 1


def test_symlinks_and_device_nodes_never_read(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    vol = tmp_path / "v"
    vol.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("not evidence")
    (vol / "LINK.MP4").symlink_to(secret)
    (vol / "DIRLINK").symlink_to(tmp_path)
    os.mkfifo(vol / "FIFO.MP4")  # reading it would block forever
    if os.geteuid() == 0:
        os.mknod(vol / "NULL.MP4", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    (vol / "REAL.MP4").write_bytes(b"real")
    rep = ingest_volume(vault, db, settings, vol, IngestContext(kind="cli"), actor="t")
    by = {f.rel: f for f in rep.files}
    assert by["REAL.MP4"].outcome == "new"
    for name in ("LINK.MP4", "DIRLINK", "FIFO.MP4"):
        assert by[name].outcome == "skipped" and by[name].error
    assert "LINK.MP4" not in [str(p.name) for p in rep.verified_sources()]
    assert db.execute("select count(*) from recordings").fetchone()[0] == 1
    skipped = db.execute("select count(*) from sightings where outcome='skipped'").fetchone()[0]
    assert skipped >= 3  # listed, so nothing vanishes unseen


class OnSecondFile:
    """Readers (opened ahead or not) that run ``act`` when the second file's first byte is
    read, and fail every read after ``act`` with ``gone`` (ENODEV) when it is set."""

    def __init__(self, act: Callable[[], None], gone: bool = False) -> None:
        self.act, self.gone, self.files_read, self.done = act, gone, 0, False

    def __call__(self, p: Path) -> Any:
        outer = self
        inner = open_source(p)

        class Reader:
            first = True

            def readinto(self, buffer: memoryview) -> int | None:
                if self.first:
                    self.first = False
                    outer.files_read += 1
                    if outer.files_read == 2:
                        outer.act()
                        outer.done = True
                if outer.done and outer.gone:
                    raise OSError(errno.ENODEV, os.strerror(errno.ENODEV), str(p))
                return inner.readinto(buffer)

            def will_need(self) -> None:
                inner.will_need()

            def close(self) -> None:
                inner.close()

        return Reader()


def test_stop_event_interrupts_cleanly(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, volume: Path
) -> None:
    stop = threading.Event()
    opener = OnSecondFile(stop.set)
    rep = ingest_volume(
        vault, db, settings, volume, IngestContext(kind="cli"), actor="t", stop=stop, opener=opener
    )
    assert rep.aborted == "stopped"
    assert rep.count("new") == 1
    state = db.execute("select state from sessions where id = ?", [rep.session_id]).fetchone()[0]
    assert state == "interrupted"
    assert list(vault.staging.iterdir()) == []


def test_volume_vanishing_mid_ingest(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, volume: Path
) -> None:
    import shutil

    # the recorder is pulled out: its folder goes, and reads of files already open fail
    opener = OnSecondFile(lambda: shutil.rmtree(volume), gone=True)

    with pytest.raises(VolumeGoneError) as e:
        ingest_volume(
            vault, db, settings, volume, IngestContext(kind="cli"), actor="t", opener=opener
        )
    rep = e.value.report  # type: ignore[attr-defined]
    assert rep.aborted == "volume gone"
    assert rep.count("new") == 1 and len(rep.verified_sources()) == 1
    state = db.execute("select state from sessions where id = ?", [rep.session_id]).fetchone()[0]
    assert state == "interrupted"
    assert list(vault.staging.iterdir()) == []


def test_recover_reaps_staging_and_running_sessions(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, volume: Path
) -> None:
    partial = vault.staging / "s9-1-1.part"
    partial.write_bytes(b"half a file")
    db.execute("insert into sessions (kind, started_at, state) values ('dock', 'x', 'running')")
    db.conn.commit()
    assert recover_at_startup(vault, db) == {"staging_reaped": 1, "sessions_interrupted": 1}
    assert not partial.exists()
    # a partial copy is never taken for a stored file
    assert db.execute("select count(*) from recordings").fetchone()[0] == 0


def test_crash_between_store_and_commit_resumes(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, volume: Path
) -> None:
    """An original linked into the vault whose catalog commit never happened is adopted."""
    clip = media(volume)[0]
    digest = sha(clip)
    orphan = vault.original_path(digest, "mp4")
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(clip.read_bytes())
    rep = ingest_volume(vault, db, settings, volume, IngestContext(kind="cli"), actor="t")
    assert rep.count("new") == 3
    assert db.execute("select count(*) from recordings where sha256 = ?", [digest]).fetchone()[0]


def test_ten_thousand_small_files(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    vol = tmp_path / "many"
    for d in range(10):
        (vol / f"D{d}").mkdir(parents=True)
        for i in range(1000):
            (vol / f"D{d}" / f"F{i:04d}.JPG").write_bytes(b"\xff\xd8%d-%d\xff\xd9" % (d, i))
    rep = ingest_volume(vault, db, settings, vol, IngestContext(kind="cli"), actor="t")
    assert rep.count("new") == 10_000 and rep.ok
    assert db.execute("select count(*) from recordings").fetchone()[0] == 10_000
    assert (
        db.execute("select count(*) from audit_log where event='recording.ingested'").fetchone()[0]
        == 10_000
    )


def test_purged_recording_that_returns_is_stored_again(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, volume: Path
) -> None:
    """R9 purged a recording; the recorder still had it: it is evidence again, never dropped."""
    ingest_volume(vault, db, settings, volume, IngestContext(kind="cli"), actor="t")
    row = db.execute("select sha256, vault_path from recordings limit 1").fetchone()
    stored = vault.home / row[1]
    stored.chmod(0o644)
    stored.unlink()  # as the retention executor leaves it
    with db.conn:
        db.execute("update recordings set state = 'purged' where sha256 = ?", [row[0]])
    rep = ingest_volume(vault, db, settings, volume, IngestContext(kind="cli"), actor="t")
    assert rep.count("new") == 1 and rep.count("held") == 2
    assert stored.exists() and sha(stored) == row[0]
    assert db.execute("select state from recordings where sha256 = ?", [row[0]]).fetchone()[0] == (
        "stored"
    )
    events = [r[0] for r in db.execute("select event from audit_log where subject = ?", [row[0]])]
    assert events[-1] == "recording.restored_by_ingest"
