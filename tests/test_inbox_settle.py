"""Completeness, pure and real: the settle tracker, the /proc writers check, drop scanning
(symlinks never followed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from station.inbox.scan import drop_name_for, list_drop_names, scan_drop
from station.inbox.settle import SettleTracker
from station.inbox.writers import writers

K = ("/in", "drop")


def test_quiet_time_alone_when_close_events_are_unknown() -> None:
    t = SettleTracker(2.0)
    t.note(K, "/in/drop/a", "modified", 10.0, close_events=False)
    assert t.ready(11.9) == [] and t.next_due() == 12.0
    t.note(K, "/in/drop/a", "modified", 11.0, close_events=False)  # still changing
    assert t.ready(12.5) == []
    assert t.ready(13.0) == [K]


def test_open_for_writing_blocks_however_long_the_pause() -> None:
    t = SettleTracker(1.0)
    t.note(K, "/in/drop/a", "created", 0.0)
    t.note(K, "/in/drop/a", "modified", 0.1)
    assert t.ready(1000.0) == [] and t.next_due() is None  # waits for the close, no timer
    t.note(K, "/in/drop/a", "closed", 1000.0)
    assert t.ready(1000.5) == [] and t.ready(1001.0) == [K]


def test_delete_and_move_while_open() -> None:
    t = SettleTracker(1.0)
    t.note(K, "/in/drop/a.part", "modified", 0.0)
    t.moved(K, "/in/drop/a.part", "/in/drop/a", 0.5)
    assert t.open_for_writing(K) == {"/in/drop/a"}
    t.note(K, "/in/drop/a", "deleted", 0.6)
    assert t.ready(1.6) == [K]


def test_busy_and_forget() -> None:
    t = SettleTracker(1.0)
    t.note(K, "/in/drop/a", "modified", 0.0)
    t.forget_writes()  # after an overflow nobody knows: quiet time + /proc check decide
    assert t.ready(1.0) == [K]
    t.busy(K, 1.0, retry_s=5.0)
    assert t.ready(5.9) == [] and t.ready(6.0) == [K]
    t.done(K)
    assert t.next_due() is None and len(t) == 0


def test_writers_sees_a_real_process_holding_a_file_open(tmp_path: Path) -> None:
    f = tmp_path / "clip.MP4"
    f.write_bytes(b"")
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys,time; fh=open(sys.argv[1],'ab'); print('ok',flush=True); time.sleep(60)",
            str(f),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ok\n"
        found = writers([str(f)])
        assert found == {str(f): [child.pid]}
        assert writers(under=str(tmp_path)) == {str(f): [child.pid]}  # any file below a drop
        assert writers(under=str(tmp_path / "elsewhere")) == {}
        with open(f, "rb"):  # a reader is not a writer
            assert writers([str(tmp_path / "other")]) == {}
    finally:
        child.kill()
        child.wait()
    assert writers([str(f)]) == {}


def test_scan_never_follows_symlinks(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    secret = tmp_path / "secret.MP4"
    secret.write_bytes(b"not evidence")
    d = inbox / "drop"
    (d / "sub").mkdir(parents=True)
    (d / "a.MP4").write_bytes(b"a")
    (d / "sub" / "b.JPG").write_bytes(b"b")
    (d / "link.MP4").symlink_to(secret)
    (d / "dirlink").symlink_to(tmp_path)
    os.mkfifo(d / "pipe")
    (d / "station.json").write_text("{}")
    (d / ".hidden.MP4.part").write_bytes(b"in flight")
    (d / "a.MP4.station-error.txt").write_text("ours")
    (inbox / "whole-link").symlink_to(secret)
    listing = scan_drop(inbox, "drop")
    assert [e.rel for e in listing.files] == ["a.MP4", "sub/b.JPG"]
    assert sorted((e.rel, e.kind) for e in listing.refused) == [
        ("dirlink", "symlink"),
        ("link.MP4", "symlink"),
        ("pipe", "special"),
    ]
    assert listing.sidecar == d / "station.json"
    assert scan_drop(inbox, "whole-link").kind == "symlink"
    assert list_drop_names(inbox) == ["drop", "whole-link"]
    assert drop_name_for(inbox, inbox / "x.MP4.station.json") == "x.MP4"
    assert drop_name_for(inbox, inbox / "drop" / "sub" / "b.JPG") == "drop"
    assert drop_name_for(inbox, tmp_path / "elsewhere") is None


def test_network_shares_are_polled(tmp_path: Path) -> None:
    from station.inbox.watch import fs_type, watch_mode

    mi = tmp_path / "mountinfo"
    mi.write_text(
        "22 1 252:0 / / rw,relatime - ext4 /dev/vda rw\n"
        "40 22 0:50 / /srv/share rw,relatime shared:1 - nfs4 nas:/export rw,vers=4.2\n"
        "41 22 0:51 / /mnt/card\\040reader rw - fuseblk /dev/sdb1 rw\n"
    )
    assert fs_type(Path("/srv/share/inbox"), str(mi)) == "nfs4"
    assert fs_type(Path("/srv/sharex"), str(mi)) == "ext4"
    assert fs_type(Path("/mnt/card reader/x"), str(mi)) == "fuseblk"
    assert watch_mode(tmp_path, "auto") == "inotify"  # the test's own tmp: a local disk
    assert watch_mode(tmp_path, "poll") == "poll"
