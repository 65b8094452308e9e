"""The watched inbox end to end: real inotify, real engine, real SQLite.

Each "bad input" of the issue has a test here or in test_inbox_watch.py.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlite_utils
from structlog.testing import capture_logs
from test_inbox_support import (
    drop_state,
    drops,
    inbox_settings,
    make_drop,
    recordings,
    running,
    wait_drop,
    wait_until,
    write_file,
)

from station.ingest import engine
from station.vault import Vault

SIDE = {"officer": "123456", "device": "CAM-07", "unit": "430400000000"}


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    p = tmp_path / "inbox"
    p.mkdir()
    return p


def test_drop_with_sidecar_is_ingested_and_removed(
    vault: Vault, db: sqlite_utils.Database, inbox: Path
) -> None:
    with running(vault, inbox_settings([inbox])):
        shas = make_drop(
            inbox,
            "相机A 2026-11-20",
            {"DCIM/100CANON/IMG_0001.JPG": b"\xff\xd8one\xff\xd9", "clip.MP4": b"x" * 5000},
            sidecar=SIDE,
        )
        wait_drop(db, "相机A 2026-11-20", "done")
    recs = recordings(db)
    for sha in shas.values():
        assert recs[sha]["officer_id"] == "123456" and recs[sha]["device_id"] == "CAM-07"
    (d,) = drops(db)
    assert d["files_new"] == 2 and d["files_removed"] == 2 and d["details_source"] == "sidecar"
    assert not (inbox / "相机A 2026-11-20").exists()  # removed only after verification
    sess = db.execute("select kind from sessions where id = ?", [d["session_id"]]).fetchone()
    assert sess[0] == "inbox"
    events = [r[0] for r in db.execute("select event from audit_log order by seq")]
    assert "inbox.drop_ingested" in events


def test_single_file_drop_without_sidecar_waits_for_details(
    vault: Vault, db: sqlite_utils.Database, inbox: Path
) -> None:
    with running(vault, inbox_settings([inbox])) as svc, capture_logs() as logs:
        sha = write_file(inbox / "REC0001.WAV", b"RIFF....WAVE")
        wait_drop(db, "REC0001.WAV", "needs_details")
        assert svc.wait_idle(10)
        assert recordings(db) == {}  # never guessed
        # a sidecar beside the single file completes it
        (inbox / "REC0001.WAV.station.json").write_text('{"officer": "654321"}')
        wait_drop(db, "REC0001.WAV", "done")
    assert recordings(db)[sha]["officer_id"] == "654321"
    assert not (inbox / "REC0001.WAV").exists()
    assert not (inbox / "REC0001.WAV.station.json").exists()
    assert any(e["event"] == "inbox.drop_needs_details" for e in logs)


def test_startup_scan_takes_what_was_dropped_while_down(
    vault: Vault, db: sqlite_utils.Database, inbox: Path
) -> None:
    shas = make_drop(inbox, "while-down", {"a.MP4": b"a" * 100}, sidecar=SIDE)
    old = 1_700_000_000
    os.utime(inbox / "while-down" / "a.MP4", (old, old))
    with running(vault, inbox_settings([inbox])):
        wait_drop(db, "while-down", "done")
    assert set(shas.values()) <= set(recordings(db))


@pytest.mark.parametrize(
    ("text", "name", "needle"),
    [
        ('{"officer": "123456",}', "station.json", "not valid JSON"),
        ('{"officer": "123456", "camera": "X"}', "station.json", "camera"),
        ('officer = "123456"\nguessed_unit = "1"\n', "station.toml", "guessed_unit"),
    ],
)
def test_bad_sidecar_holds_the_drop_with_an_error_file(
    vault: Vault, db: sqlite_utils.Database, inbox: Path, text: str, name: str, needle: str
) -> None:
    with running(vault, inbox_settings([inbox])), capture_logs() as logs:
        shas = make_drop(inbox, "bad", {"a.MP4": b"evidence"}, sidecar=text, sidecar_name=name)
        wait_drop(db, "bad", "held")
        err = inbox / "bad" / "station-error.txt"
        wait_until(err.exists, 10, "the error file")
        assert needle in err.read_text(encoding="utf-8")
        wait_until(lambda: any(e["event"] == "inbox.sidecar_invalid" for e in logs), 10, "log")
        assert (inbox / "bad" / "a.MP4").read_bytes() == b"evidence"  # held, untouched
        assert recordings(db) == {}
        (ev,) = [e for e in logs if e["event"] == "inbox.sidecar_invalid"]
        assert needle in ev["error"]
        # fixing the sidecar releases the drop; the stale error file goes with it
        (inbox / "bad" / name).unlink()
        (inbox / "bad" / "station.json").write_text('{"officer": "123456"}')
        wait_drop(db, "bad", "done")
    assert set(shas.values()) <= set(recordings(db))
    assert not (inbox / "bad").exists()


@pytest.mark.slow
def test_slow_appender_is_never_ingested_half_way(
    vault: Vault, db: sqlite_utils.Database, inbox: Path
) -> None:
    """A writer appends for ~10 s, with a pause three times the settle time while it holds the
    file open: only the complete file is ever ingested (close-write)."""
    (inbox / "cam").mkdir()
    (inbox / "cam" / "station.json").write_text('{"officer": "123456"}')
    target = inbox / "cam" / "long.MP4"
    script = (
        "import sys, time\n"
        "with open(sys.argv[1], 'wb') as fh:\n"
        "    for i in range(17):\n"
        "        fh.write(bytes([i]) * 65536); fh.flush()\n"
        "        time.sleep(3.0 if i == 8 else 0.45)\n"
    )
    full = b"".join(bytes([i]) * 65536 for i in range(17))
    with running(vault, inbox_settings([inbox], settle_seconds=1.0)) as svc:
        writer = subprocess.Popen([sys.executable, "-c", script, str(target)])
        try:
            wait_until(lambda: writer.poll() is not None, 30, "the writer")
            assert recordings(db) == {}  # nothing was taken while it was being written
            wait_drop(db, "cam", "done")
            assert svc.wait_idle(10)
        finally:
            writer.kill()
            writer.wait()
    assert list(recordings(db)) == [hashlib.sha256(full).hexdigest()]


def test_polled_share_waits_for_size_and_mtime_to_settle(
    vault: Vault, db: sqlite_utils.Database, inbox: Path
) -> None:
    """Where close-write is not reported (polling, network shares) the settle time decides."""
    (inbox / "share").mkdir()
    (inbox / "share" / "station.json").write_text('{"officer": "123456"}')
    target = inbox / "share" / "grow.MP4"
    script = (
        "import sys, time\n"
        "for i in range(10):\n"
        "    with open(sys.argv[1], 'ab') as fh:\n"  # open-append-close: no long-open writer
        "        fh.write(bytes([i]) * 4096)\n"
        "    time.sleep(0.3)\n"
    )
    full = b"".join(bytes([i]) * 4096 for i in range(10))
    settings = inbox_settings([inbox], settle_seconds=1.5, watch_mode="poll", poll_seconds=0.2)
    with running(vault, settings):
        subprocess.run([sys.executable, "-c", script, str(target)], check=True)
        wait_drop(db, "share", "done")
    assert list(recordings(db)) == [hashlib.sha256(full).hexdigest()]


def test_drop_of_2000_files_at_once(vault: Vault, db: sqlite_utils.Database, inbox: Path) -> None:
    """2,000 files written into a watched inbox in one burst (about 8,000 inotify events). The
    drop settles after 2 s of quiet, not 0.3 s: on a loaded machine the writer itself can pause
    that long, and a drop still being written is rightly taken in two parts."""
    with running(vault, inbox_settings([inbox], settle_seconds=2.0)) as svc:
        d = inbox / "burst"
        d.mkdir()
        (d / "station.json").write_text('{"officer": "123456", "device": "CAM-99"}')
        shas = {
            write_file(d / f"DCIM/{i // 500:03d}/IMG_{i:04d}.JPG", b"\xff\xd8%d\xff\xd9" % i)
            for i in range(2000)
        }
        wait_drop(db, "burst", "done")
        assert svc.wait_idle(30)
        status = svc.status()
    assert shas <= set(recordings(db))
    (row,) = drops(db)
    assert row["files_new"] == 2000 and row["files_removed"] == 2000
    assert not d.exists()
    assert status["drops"] == {"done": 1} and status["overflows"] == 0
    assert db.execute("select count(*) from sessions").fetchone()[0] == 1  # one session


def test_symlink_in_a_drop_is_never_followed(
    vault: Vault, db: sqlite_utils.Database, inbox: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.MP4"
    secret.write_bytes(b"something outside the inbox")
    with running(vault, inbox_settings([inbox])), capture_logs() as logs:
        src = tmp_path / "build" / "linky"
        src.mkdir(parents=True)
        ok = write_file(src / "ok.MP4", b"fine")
        (src / "station.json").write_text('{"officer": "123456"}')
        (src / "evil.MP4").symlink_to(secret)
        os.rename(src, inbox / "linky")
        (inbox / "whole.MP4").symlink_to(secret)  # a symlink as the drop itself
        wait_drop(db, "linky", "partial")
        wait_drop(db, "whole.MP4", "refused")
        wait_until(lambda: any(e["event"] == "inbox.drop_refused" for e in logs), 10, "log")
    recs = recordings(db)
    assert ok in recs and hashlib.sha256(secret.read_bytes()).hexdigest() not in recs
    assert (inbox / "linky" / "evil.MP4").is_symlink()  # left where it was
    assert "symbolic link" in (inbox / "linky" / "evil.MP4.station-error.txt").read_text()
    assert (inbox / "whole.MP4.station-error.txt").exists()
    assert not (inbox / "linky" / "ok.MP4").exists()
    assert {e["event"] for e in logs} >= {"inbox.symlink_refused", "inbox.drop_refused"}


def test_same_drop_copied_in_twice(vault: Vault, db: sqlite_utils.Database, inbox: Path) -> None:
    files = {"a.MP4": b"first clip", "b.JPG": b"\xff\xd8b\xff\xd9"}
    with running(vault, inbox_settings([inbox])):
        shas = make_drop(inbox, "twice", files, sidecar=SIDE)
        wait_drop(db, "twice", "done")
        make_drop(inbox, "twice", files, sidecar=SIDE)  # the same drop again, same name
        wait_until(lambda: len(drops(db)) == 2 and drops(db)[1]["state"] == "done", 20)
        make_drop(inbox, "twice (copy)", files, sidecar=SIDE)  # and under another name
        wait_drop(db, "twice (copy)", "done")
    rows = drops(db)
    assert [(r["files_new"], r["files_held"]) for r in rows] == [(2, 0), (0, 2), (0, 2)]
    assert set(recordings(db)) == set(shas.values())  # stored once
    sightings = db.execute("select count(*) from sightings").fetchone()[0]
    assert sightings == 6  # every copy seen and recorded
    assert list(inbox.iterdir()) == []


def test_keep_policy_leaves_files_and_never_reingests(
    vault: Vault, db: sqlite_utils.Database, inbox: Path
) -> None:
    with running(vault, inbox_settings([inbox], after_verify="keep")) as svc:
        make_drop(inbox, "kept", {"a.MP4": b"keep me"}, sidecar=SIDE)
        wait_drop(db, "kept", "done")
        svc.rescan()
        assert svc.wait_idle(10)
    assert (inbox / "kept" / "a.MP4").read_bytes() == b"keep me"
    assert db.execute("select count(*) from sessions").fetchone()[0] == 1


def test_file_deleted_while_the_station_copies_it(
    vault: Vault, db: sqlite_utils.Database, inbox: Path
) -> None:
    """Deleted after the station opened it: the open file is read to the end and verified.
    Deleted just before: nothing to read, logged, no error file, the rest goes on."""
    from station.hashing.copy import open_source

    def opener(path: Path):  # type: ignore[no-untyped-def]
        if path.name == "gone-before.MP4":
            path.unlink()
            return open_source(path)
        reader = open_source(path)
        if path.name == "gone-during.MP4":
            path.unlink()
        return reader

    ingest = functools.partial(engine.ingest_files, opener=opener)
    files = {"gone-during.MP4": b"d" * 300_000, "gone-before.MP4": b"b" * 10, "ok.MP4": b"ok"}
    with running(vault, inbox_settings([inbox]), ingest=ingest), capture_logs() as logs:
        shas = make_drop(inbox, "midcopy", files, sidecar=SIDE)
        wait_drop(db, "midcopy", "done", "partial")
    recs = recordings(db)
    assert shas["gone-during.MP4"] in recs and shas["ok.MP4"] in recs
    assert shas["gone-before.MP4"] not in recs
    assert any(e["event"] == "inbox.file_vanished" for e in logs)
    assert not list(inbox.rglob("*.station-error.txt"))


def test_file_deleted_while_being_copied_into_the_inbox(
    vault: Vault, db: sqlite_utils.Database, inbox: Path
) -> None:
    """A copy into the inbox that is cancelled (file deleted half-written) is never ingested."""
    (inbox / "cancel").mkdir()
    (inbox / "cancel" / "station.json").write_text('{"officer": "123456"}')
    ok = write_file(inbox / "cancel" / "ok.MP4", b"complete")
    script = (
        "import os, sys, time\n"
        "fh = open(sys.argv[1], 'wb'); fh.write(b'half' * 1000); fh.flush()\n"
        "time.sleep(1.5); os.unlink(sys.argv[1]); fh.close()\n"
    )
    with running(vault, inbox_settings([inbox], settle_seconds=0.5)):
        subprocess.run(
            [sys.executable, "-c", script, str(inbox / "cancel" / "half.MP4")], check=True
        )
        wait_drop(db, "cancel", "done")
    assert list(recordings(db)) == [ok]
    assert db.execute("select count(*) from sightings where outcome = 'failed'").fetchone()[0] == 0


def test_failed_file_stays_with_an_error_file(
    vault: Vault, db: sqlite_utils.Database, inbox: Path
) -> None:
    """A file the engine cannot read stays where it was, with an error file explaining why
    (EIO on the second read, by the engine's fault-injecting reader)."""
    from station.hashing.copy import open_source
    from station.hashing.faults import FailingReader

    def opener(path: Path):  # type: ignore[no-untyped-def]
        reader = open_source(path)
        return FailingReader(reader, "rE", str(path)) if path.name == "bad.MP4" else reader

    ingest = functools.partial(engine.ingest_files, opener=opener)
    with running(vault, inbox_settings([inbox]), ingest=ingest):
        shas = make_drop(
            inbox, "eio", {"bad.MP4": b"u" * 3_000_000, "good.MP4": b"g"}, sidecar=SIDE
        )
        wait_drop(db, "eio", "partial")
    assert (inbox / "eio" / "bad.MP4").read_bytes() == b"u" * 3_000_000
    text = (inbox / "eio" / "bad.MP4.station-error.txt").read_text(encoding="utf-8")
    assert "Input/output error" in text and "原因 / reason" in text
    assert shas["good.MP4"] in recordings(db) and not (inbox / "eio" / "good.MP4").exists()
    assert (inbox / "eio" / "station.json").exists()  # the drop is not finished: sidecar kept
    assert drop_state(db, "eio") == "partial"


def test_sidecar_case_links_recordings_and_unknown_case_is_not_guessed(
    vault: Vault, db: sqlite_utils.Database, inbox: Path
) -> None:
    from station.cases.store import create_case

    create_case(db, "衡建罚〔2026〕12号", name="违法建设 / illegal building", actor="clerk")
    with running(vault, inbox_settings([inbox])), capture_logs() as logs:
        known = make_drop(
            inbox, "k", {"a.MP4": b"case clip"}, sidecar={**SIDE, "case": "衡建罚〔2026〕12号"}
        )
        unknown = make_drop(
            inbox, "u", {"b.MP4": b"other clip"}, sidecar={**SIDE, "case": "NOPE-1"}
        )
        wait_drop(db, "k", "done")
        wait_drop(db, "u", "done")
    links = {(r[0], r[1]) for r in db.execute("select case_number, sha256 from case_recordings")}
    assert links == {("衡建罚〔2026〕12号", known["a.MP4"])}
    assert unknown["b.MP4"] in recordings(db)  # ingested all the same (R1 deadline)
    (ev,) = [e for e in logs if e["event"] == "inbox.case_unknown"]
    assert ev["case"] == "NOPE-1"


@pytest.mark.root
def test_vault_full_keeps_every_unverified_file_in_the_inbox(
    small_vault: Vault, inbox: Path
) -> None:
    """Disk full mid-drop: verified files may go, every other file stays in the inbox, the drop
    waits (retried later), and nothing is lost (DESIGN invariant 2)."""
    files = {f"R{i}.MP4": os.urandom(4 << 20) for i in range(8)}  # 32 MiB > 24 MiB disk
    with running(small_vault, inbox_settings([inbox])) as svc, capture_logs() as logs:
        db = sqlite_utils.Database(small_vault.catalog_path)
        shas = make_drop(inbox, "big", files, sidecar=SIDE)
        wait_until(lambda: any(e["event"] == "inbox.ingest_error" for e in logs), 60, "full")
        wait_until(lambda: svc.status()["last_error"] is not None, 10, "the error in status")
        row = db.execute("select state, error from inbox_drops").fetchone()
    assert row[0] == "settling" and "full" in row[1]
    stored = set(recordings(db))
    left = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (inbox / "big").glob("*.MP4")}
    assert stored | left == set(shas.values())  # every file: in the vault or still here
    assert not stored & left  # what was verified was removed, what was not stayed
    assert len(left) > 0
    db.close()


def test_names_that_are_not_utf8(vault: Vault, db: sqlite_utils.Database, inbox: Path) -> None:
    """Card readers show whatever bytes a camera wrote: such names are ingested, shown with
    backslash escapes in the catalog, and never crash the inbox."""
    raw = os.path.join(os.fsencode(inbox), b"card\xff")
    staging = os.path.join(os.fsencode(inbox.parent), b"card\xff")
    os.mkdir(staging)
    with open(os.path.join(staging, b"caf\xe9.MP4"), "wb") as fh:
        fh.write(b"latin-1 name")
    with open(os.path.join(staging, b"station.json"), "w") as fh:
        fh.write('{"officer": "123456"}')
    with running(vault, inbox_settings([inbox])):
        os.rename(staging, raw)
        wait_drop(db, "card\\xff", "done")
    (rec,) = recordings(db).values()
    assert rec["original_path"] == "card\\xff/caf\\xe9.MP4"
    assert not os.path.exists(raw)
