"""The watcher itself: folder removed while watched, kernel and queue overflow, idle cost,
settings applied while running."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import sqlite_utils
from structlog.testing import capture_logs
from test_inbox_support import (
    drop_state,
    inbox_settings,
    make_drop,
    recordings,
    running,
    wait_drop,
    wait_until,
    write_file,
)

from station.inbox.service import InboxBusy, InboxService
from station.settings_watch import SettingsWatcher
from station.vault import Vault

SIDE = {"officer": "123456"}


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    p = tmp_path / "inbox"
    p.mkdir()
    return p


def test_inbox_folder_removed_while_watched(
    vault: Vault, db: sqlite_utils.Database, inbox: Path
) -> None:
    with running(vault, inbox_settings([inbox])) as svc, capture_logs() as logs:
        write_file(inbox / "waiting.WAV", b"no details yet")
        wait_drop(db, "waiting.WAV", "needs_details")
        shutil.rmtree(inbox)
        wait_until(lambda: not svc.status()["folders"][0]["present"], 20, "folder gone")
        wait_drop(db, "waiting.WAV", "gone")
        assert svc.status()["running"]  # one folder's trouble never stops the service
        inbox.mkdir()  # it comes back: watched again, without a restart
        wait_until(lambda: svc.status()["folders"][0]["present"], 20, "folder back")
        sha = make_drop(inbox, "after", {"a.MP4": b"after the return"}, sidecar=SIDE)["a.MP4"]
        wait_drop(db, "after", "done")
    assert sha in recordings(db)
    names = [e["event"] for e in logs]
    assert "inbox.folder_gone" in names and "inbox.drop_vanished" in names
    assert "inbox.folder_back" in names


def test_missing_folder_at_start_is_watched_for(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    later = tmp_path / "share" / "inbox"
    with running(vault, inbox_settings([later])) as svc:
        assert svc.status()["folders"][0]["error"].endswith("/ missing")
        later.parent.mkdir()
        later.mkdir()
        wait_until(lambda: svc.status()["folders"][0]["present"], 20, "folder appears")
        make_drop(later, "d", {"x.MP4": b"x"}, sidecar=SIDE)
        wait_drop(db, "d", "done")


def _emitter_group(svc: InboxService, folder: Path) -> object:
    obs = svc._observers["inotify"]
    for em in obs.emitters:
        if em.watch.path == str(folder):
            return em._inotify  # type: ignore[attr-defined]
    raise AssertionError("no emitter for the inbox")


def test_kernel_queue_overflow_triggers_a_rescan(
    vault: Vault, db: sqlite_utils.Database, inbox: Path
) -> None:
    """Hold watchdog's reader so the kernel's inotify queue (16,384 events) really overflows
    (IN_Q_OVERFLOW); the drop made meanwhile has no event of its own and is found by the
    rescan the overflow triggers."""
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    noise = inbox / ".noise"  # hidden: not a drop
    noise.mkdir()
    a, b = noise / "a", noise / "b"
    a.write_bytes(b"")
    b.write_bytes(b"")
    settings = inbox_settings([inbox], event_queue_max=4 * limit)  # our own queue never fills
    with running(vault, settings) as svc, capture_logs() as logs:
        assert svc.wait_idle(10)
        group = _emitter_group(svc, inbox)
        with group._lock:  # type: ignore[attr-defined]
            for i in range(limit + 2000):
                os.utime(a if i % 2 else b, None)  # alternate: the kernel merges repeats
            sha = make_drop(inbox, "lost-events", {"a.MP4": b"dropped meanwhile"}, sidecar=SIDE)
        wait_drop(db, "lost-events", "done")
        assert svc.status()["overflows"] >= 1
        assert svc.status()["queue_full"] == 0
    assert sha["a.MP4"] in recordings(db)
    assert any(e["event"] == "inbox.watch_overflow" for e in logs)


def test_own_queue_full_means_rescan_not_growth(
    vault: Vault, db: sqlite_utils.Database, inbox: Path
) -> None:
    settings = inbox_settings([inbox], event_queue_max=16)
    with running(vault, settings) as svc:
        shas = make_drop(
            inbox, "many", {f"f{i:03d}.JPG": b"%d" % i for i in range(200)}, sidecar=SIDE
        )
        for i in range(100):
            write_file(inbox / f"loose{i:03d}.JPG", b"loose %d" % i)
        wait_drop(db, "many", "done")
        assert svc.wait_idle(60)
        status = svc.status()
    assert set(shas.values()) <= set(recordings(db))
    assert status["queue_full"] > 0 and status["rescans"] >= 2
    assert drop_state(db, "loose099.JPG") == "needs_details"


def _switches() -> dict[str, int]:
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            text = Path(f"/proc/self/task/{tid}/status").read_text()
        except OSError:
            continue
        out[tid] = sum(int(x.split()[1]) for x in text.splitlines() if "ctxt_switches" in x)
    return out


def test_idle_watcher_never_wakes(vault: Vault, inbox: Path) -> None:
    """No polling where inotify works: over an idle stretch none of the service's threads is
    scheduled even once (context switches counted by the kernel, not timed)."""
    before = set(os.listdir("/proc/self/task"))
    with running(vault, inbox_settings([inbox])) as svc:
        assert svc.wait_idle(10)
        time.sleep(0.3)
        ours = set(os.listdir("/proc/self/task")) - before
        assert len(ours) >= 3  # worker, observer, inotify reader, emitters
        first = _switches()
        time.sleep(2.0)
        second = _switches()
    woke = {t: second[t] - first[t] for t in ours if t in first and t in second}
    assert woke and all(n == 0 for n in woke.values()), woke


def test_only_one_service_per_home(vault: Vault, inbox: Path) -> None:
    with running(vault, inbox_settings([inbox])), pytest.raises(InboxBusy):
        InboxService(vault, inbox_settings([inbox])).start()


def test_settings_change_reaches_the_running_service(
    vault: Vault, db: sqlite_utils.Database, inbox: Path, tmp_path: Path
) -> None:
    second = tmp_path / "inbox2"
    second.mkdir()
    vault.settings_path.write_text(f'[inbox]\nfolders = ["{inbox}"]\nsettle_seconds = 0.3\n')
    settings = vault.settings()
    applied = threading.Event()
    with running(vault, settings) as svc:

        def on_change(new, old, keys):  # type: ignore[no-untyped-def]
            svc.update_settings(new)
            applied.set()

        w = SettingsWatcher(vault.settings_path, on_change, current=settings)
        w.start()
        try:
            gen = w.generation
            vault.settings_path.write_text(
                f'[inbox]\nfolders = ["{inbox}", "{second}"]\nsettle_seconds = 0.3\n'
            )
            assert w.wait_checked(gen, 10) and applied.is_set()
            wait_until(lambda: len(svc.status()["folders"]) == 2, 10, "second folder watched")
            sha = make_drop(second, "new-folder", {"n.MP4": b"n"}, sidecar=SIDE)["n.MP4"]
            wait_drop(db, "new-folder", "done")
            gen = w.generation
            vault.settings_path.write_text('[inbox]\nfolders = ["relative/path"]\n')
            assert w.wait_checked(gen, 10)
            assert w.status()["last_error"]["key"] == "inbox.folders[0]"
            assert len(svc.status()["folders"]) == 2  # refused: the running settings stay
        finally:
            w.stop()
    assert sha in recordings(db)


def test_daemon_services_apply_inbox_settings_and_report_status(
    vault: Vault, db: sqlite_utils.Database, inbox: Path, tmp_path: Path
) -> None:
    from station.app.inbox_services import daemon_services

    second = tmp_path / "inbox2"
    second.mkdir()
    vault.settings_path.write_text(f'[inbox]\nfolders = ["{inbox}"]\nsettle_seconds = 0.3\n')
    from station.transcode.jobs import enqueue_missing

    seen: list[list[str]] = []
    statuses: list[dict[str, object]] = []
    woken: list[int] = []

    def wake() -> None:  # what TranscodeService.wake leads to: a derivative job per recording
        woken.append(enqueue_missing(db, vault.settings()))

    svc, watcher = daemon_services(
        vault,
        vault.settings(),
        on_settings=[lambda new, old, keys: seen.append(keys)],
        on_ingested=[wake],
    )
    svc.status_listeners.append(statuses.append)
    svc.start()
    watcher.start()
    try:
        gen = watcher.generation
        vault.settings_path.write_text(
            f'[inbox]\nfolders = ["{second}"]\nsettle_seconds = 0.3\n[log]\nlevel = "debug"\n'
        )
        assert watcher.wait_checked(gen, 10)
        wait_until(lambda: [f["path"] for f in svc.status()["folders"]] == [str(second)], 10)
        make_drop(second, "d", {"a.MP4": b"a"}, sidecar=SIDE)
        wait_drop(db, "d", "done")
        wait_until(lambda: bool(statuses), 10, "a status update")
    finally:
        watcher.stop()
        svc.stop()
    assert seen == [["inbox.folders", "log.level"]]
    assert statuses[-1]["drops"] == {"done": 1}
    assert woken == [1]  # the drop's video got its archival derivative job
    job = db.execute("select state from derivatives").fetchone()
    assert job[0] == "queued"
