"""Bad tools and bad disks: ffmpeg missing, exiting 1, killed by a signal, hanging on stop; low
priority of the tools; a crashed worker's job; the archival disk full (a real ext4 on a loop
device). Stub ffmpeg executables are real programs, never a mocked Popen."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner
from transcode_support import add_recording, h264_aac_mp4, stub

from station.catalog import write_txn
from station.cli import main as cli_main
from station.config import Settings
from station.timeutil import parse_iso, utcnow
from station.transcode import jobs
from station.transcode.binaries import find_tools
from station.transcode.errors import ToolMissingError
from station.transcode.service import busy_slots, choose_priority, run_once
from station.transcode.worker import process_job, work_root
from station.vault import Vault


def row(db: sqlite_utils.Database, sha: str) -> dict[str, Any]:
    return next(iter(db.query("select * from derivatives where original_sha256 = ?", [sha])))


def failed_audit(db: sqlite_utils.Database, sha: str) -> list[dict[str, Any]]:
    return list(
        db.query("select * from audit_log where event = 'derivative.failed' and subject = ?", [sha])
    )


@pytest.fixture
def clip(vault: Vault, db: sqlite_utils.Database, tmp_path: Path) -> str:
    return add_recording(vault, db, h264_aac_mp4(tmp_path / "clip.MP4", 1.0))


def test_configured_ffmpeg_missing_is_a_clear_error(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, clip: str
) -> None:
    settings.transcode.ffmpeg = "/nonexistent/ffmpeg"
    with pytest.raises(ToolMissingError) as err:
        run_once(vault, db, settings)
    assert err.value.where == "transcode.ffmpeg" and "/nonexistent/ffmpeg" in err.value.message
    assert db["derivatives"].count == 0  # type: ignore[union-attr]  # nothing touched


def test_no_ffmpeg_anywhere(
    vault: Vault, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if importlib.util.find_spec("imageio_ffmpeg") is not None:
        pytest.skip("imageio-ffmpeg is installed and supplies an ffmpeg")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ToolMissingError) as err:
        find_tools(settings)
    assert "ffmpeg not found" in err.value.message
    # the CLI says it in both languages, with its own exit code
    home = vault.home
    runner = CliRunner()
    init = runner.invoke(cli_main, ["--home", str(home), "init"])
    assert init.exit_code == 0
    result = runner.invoke(cli_main, ["--home", str(home), "transcode", "run-once", "--json"])
    assert result.exit_code == ToolMissingError.exit_code
    assert "找不到 ffmpeg" in result.output and "ffmpeg not found" in result.output


def test_ffmpeg_exit_1_is_retried_with_backoff_then_retry_command(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, clip: str, tmp_path: Path
) -> None:
    settings.transcode.ffmpeg = str(
        stub(tmp_path / "ffmpeg", "echo 'boom: codec exploded' >&2\nexit 1")
    )
    before = utcnow()
    summary = run_once(vault, db, settings)
    assert (summary.done, summary.failed, summary.retry_later) == (0, 0, 1)
    r = row(db, clip)
    assert (r["state"], r["failure"], r["attempts"]) == ("queued", "tool", 1)
    assert "exit status 1" in r["error"] and "boom: codec exploded" in r["error"]
    wait = (parse_iso(r["next_try_at"]) - before).total_seconds()
    assert wait >= settings.transcode.retry_base_s - 1
    # not due yet: a second run leaves it alone
    assert run_once(vault, db, settings).retry_later == 0
    assert row(db, clip)["attempts"] == 1
    # the original is fine: it is not flagged as damaged
    assert db["recordings"].get(clip)["damaged"] == 0  # type: ignore[union-attr]
    assert not list(vault.archival.rglob("*.mp4")) and not list(vault.archival.rglob(".tmp-*"))
    # retry (a clerk's command) with a working ffmpeg makes it
    settings.transcode.ffmpeg = ""
    runner = CliRunner()
    res = runner.invoke(
        cli_main, ["--home", str(vault.home), "transcode", "retry", clip[:10], "--json"]
    )
    assert res.exit_code == 0 and clip in res.output
    res = runner.invoke(cli_main, ["--home", str(vault.home), "transcode", "run-once", "--json"])
    assert res.exit_code == 0, res.output
    assert row(db, clip)["state"] == "done"
    assert len(list(db.query("select * from audit_log where event = 'derivative.retry'"))) == 1


def test_ffmpeg_failing_every_time_ends_failed_after_max_attempts(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, clip: str, tmp_path: Path
) -> None:
    settings.transcode.ffmpeg = str(stub(tmp_path / "ffmpeg", "kill -KILL $$"))
    settings.transcode.retry_base_s = 0.0  # due again at once, so one run uses every attempt
    settings.transcode.max_attempts = 2
    summary = run_once(vault, db, settings)
    assert (summary.failed, summary.retry_later) == (1, 1)
    r = row(db, clip)
    assert (r["state"], r["failure"], r["attempts"]) == ("failed", "tool", 2)
    assert "killed by SIGKILL" in r["error"] and "gave up after 2 attempts" in r["error"]
    entries = failed_audit(db, clip)
    assert len(entries) == 1 and '"flagged":false' in entries[0]["data"]
    result = CliRunner().invoke(
        cli_main, ["--home", str(vault.home), "transcode", "status", "--json"]
    )
    assert result.exit_code == 0 and '"failed": 1' in result.output


# The re-wrap's read-back (fed on stdin, started beside the re-wrap) only reads its input.
_FED_READS = 'case "$*" in *pipe:0*) exec cat > /dev/null;; esac\n'


def test_tools_run_at_low_cpu_and_io_priority(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, clip: str, tmp_path: Path
) -> None:
    seen = tmp_path / "priority.txt"
    body = f"{_FED_READS}cut -d' ' -f19 /proc/$$/stat > {seen}\nionice -p $$ >> {seen}\nexit 1"
    settings.transcode.ffmpeg = str(stub(tmp_path / "ffmpeg", body))
    run_once(vault, db, settings)
    nice, ioclass = seen.read_text().split("\n")[:2]
    assert int(nice) >= min(19, os.nice(0) + settings.transcode.nice)
    assert ioclass.strip() == "idle"


def _priority_stub(tmp_path: Path) -> tuple[str, Path]:
    seen = tmp_path / "priority.txt"
    body = f"{_FED_READS}cut -d' ' -f19 /proc/$$/stat > {seen}\nionice -p $$ >> {seen}\nexit 1"
    return str(stub(tmp_path / "ffmpeg", body)), seen


def test_run_once_for_a_person_waiting_runs_tools_at_normal_priority(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    clip: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.transcode.ffmpeg, seen = _priority_stub(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")  # the stub, for the CLI
    summary = run_once(vault, db, settings, low_priority=False)
    assert summary.priority == "normal"
    nice, ioclass = seen.read_text().split("\n")[:2]
    assert int(nice) == os.nice(0)
    assert ioclass.strip() != "idle"
    # the command line: --priority normal / low; auto without a terminal is low
    runner = CliRunner()
    for choice, want in (("normal", "normal"), ("low", "low"), ("auto", "low")):
        jobs.retry(db, actor="t", all_failed=True, shas=[clip])
        res = runner.invoke(
            cli_main,
            ["--home", str(vault.home), "--service", "transcode", "run-once", "--json",
             "--priority", choice],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        assert f'"priority": "{want}"' in res.output and '"retry_later": 1' in res.output
        assert (seen.read_text().split("\n")[1].strip() == "idle") == (want == "low")
        seen.unlink()


@pytest.mark.parametrize(
    ("choice", "interactive", "busy", "low"),
    [
        ("auto", True, 0, False),  # a person at a terminal, no ingest: normal
        ("auto", True, 1, True),  # a recorder is being copied: the ingest comes first (R1)
        ("auto", False, 0, True),  # scripts and timers: as the daemon
        ("normal", False, 2, False),
        ("low", True, 0, True),
    ],
)
def test_choose_priority(choice: str, interactive: bool, busy: int, low: bool) -> None:
    assert choose_priority(choice, interactive=interactive, busy=busy) is low


def test_busy_slots_read_from_a_live_daemons_status(vault: Vault) -> None:
    import json

    status = vault.run / "status.json"
    status.parent.mkdir(parents=True, exist_ok=True)
    assert busy_slots(vault) == 0  # no daemon
    slots = [{"slot": "1", "safe_to_undock": False}, {"slot": "2", "safe_to_undock": True}]
    status.write_text(json.dumps({"pid": os.getpid(), "slots": slots}), encoding="utf-8")
    assert busy_slots(vault) == 1
    dead = subprocess.Popen(["true"])
    dead.wait()
    status.write_text(json.dumps({"pid": dead.pid, "slots": slots}), encoding="utf-8")
    assert busy_slots(vault) == 0  # a daemon that is gone ingests nothing


def test_a_derivative_whose_packets_differ_on_disk_is_refused(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, clip: str, tmp_path: Path
) -> None:
    """R7: the original is read from its boxes (no ffprobe), the re-wrap is made by the real
    ffmpeg, then one byte of its sample data changes on the disk before the read-back: the
    packet hashes differ and the derivative is refused, nothing installed."""
    real = shutil.which("ffmpeg")
    flip = (
        "import sys\n"
        "f = open(sys.argv[1], 'r+b'); f.seek(-100, 2); b = f.read(1)\n"
        "f.seek(-100, 2); f.write(bytes([b[0] ^ 0xFF])); f.close()\n"
    )
    (tmp_path / "flip.py").write_text(flip, encoding="utf-8")
    body = (
        f'{real} "$@" || exit $?\n'
        'case "$*" in *-movflags*)\n'
        '  for a in "$@"; do case "$a" in *.tmp-*) out="$a";; esac; done\n'
        f'  python3 {tmp_path / "flip.py"} "$out";;\n'
        "esac"
    )
    settings.transcode.ffmpeg = str(stub(tmp_path / "ffmpeg", body))
    summary = run_once(vault, db, settings)
    assert (summary.done, summary.retry_later) == (0, 1)
    r = row(db, clip)
    assert (r["state"], r["failure"]) == ("queued", "verify")
    assert not list(vault.archival.rglob("*.mp4")) and not list(vault.archival.rglob(".tmp-*"))
    # the same job with an honest ffmpeg is made and verified
    settings.transcode.ffmpeg = ""
    jobs.retry(db, actor="t", shas=[clip])
    assert run_once(vault, db, settings).done == 1


def _wait_for(path: Path, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize(
    ("trap", "how"), [("exit 0", "terminated"), ("", "killed")], ids=["obeys", "ignores-term"]
)
def test_stop_terminates_then_kills_ffmpeg_and_requeues(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    clip: str,
    tmp_path: Path,
    trap: str,
    how: str,
) -> None:
    pidfile = tmp_path / "pid"
    body = f"trap '{trap}' TERM\necho $$ > {pidfile}\nwhile :; do sleep 0.05; done"
    settings.transcode.ffmpeg = str(stub(tmp_path / "ffmpeg", body))
    # an ffmpeg that obeys SIGTERM gets a long grace (a loaded machine runs its trap late);
    # one that ignores it is killed after a short one
    settings.transcode.stop_grace_s = 10.0 if trap else 0.5
    tools = find_tools(settings)
    jobs.enqueue_missing(db, settings)
    job = jobs.claim_next(db)
    assert job is not None
    stop = threading.Event()
    result: list[Any] = []
    worker = threading.Thread(
        target=lambda: result.append(
            process_job(vault, db, settings, tools, job, actor="t", stop=stop)
        )
    )
    worker.start()
    pid = int(_wait_for(pidfile))
    stop.set()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert _gone(pid)
    assert result[0].state == "queued" and result[0].failure == "stopped"
    r = row(db, clip)
    assert (r["state"], r["attempts"], r["failure"]) == ("queued", 0, "stopped")
    assert f"({how})" in r["error"]
    assert not list(vault.archival.rglob(".tmp-*"))
    assert not any(work_root(vault).iterdir())


def test_job_left_running_by_a_crash_is_requeued_and_finished(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, clip: str
) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that certainly is not running any more
    jobs.enqueue_missing(db, settings)
    with write_txn(db):
        db.execute(
            "update derivatives set state = 'running', attempts = 1, claimed_by = ?",
            [f"{socket.gethostname()}:{dead.pid}"],
        )
    leftover = vault.archival_path(clip, "mp4-h264", "mp4")
    leftover.parent.mkdir(parents=True, exist_ok=True)
    stale = leftover.with_name(f".tmp-{dead.pid}-{leftover.name}")
    stale.write_bytes(b"half a derivative")
    summary = run_once(vault, db, settings)
    assert (summary.requeued, summary.done) == (1, 1)
    assert not stale.exists()
    r = row(db, clip)
    assert (r["state"], r["attempts"]) == ("done", 2)


def test_live_workers_job_is_not_taken_over(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, clip: str
) -> None:
    jobs.enqueue_missing(db, settings)
    with write_txn(db):
        db.execute(
            "update derivatives set state = 'running', claimed_by = ?",
            [f"{socket.gethostname()}:{os.getpid()}"],
        )
    assert jobs.requeue_orphans(db) == 0
    assert row(db, clip)["state"] == "running"


# -- the archival disk full: a real, small ext4 file system on a loop device ---------------------


@pytest.fixture
def small_archival(vault: Vault, tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or not shutil.which("losetup") or not shutil.which("mkfs.ext4"):
        pytest.skip("needs root, losetup and mkfs.ext4")
    image = tmp_path / "archival.img"
    with open(image, "wb") as f:
        f.truncate(4 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True)
    loop = subprocess.run(
        ["losetup", "-f", "--show", str(image)], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        subprocess.run(["mount", loop, str(vault.archival)], check=True)
        try:
            yield vault.archival
        finally:
            subprocess.run(["umount", str(vault.archival)], check=True)
    finally:
        subprocess.run(["losetup", "-d", loop], check=True)


@pytest.mark.root
def test_archival_disk_full_leaves_nothing_and_retries_later(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    tmp_path: Path,
    small_archival: Path,
) -> None:
    src = h264_aac_mp4(tmp_path / "big.MP4", 4.0, "-s", "640x480", "-b:v", "2M")
    sha = add_recording(vault, db, src)
    filler = small_archival / "filler"
    free = shutil.disk_usage(small_archival).free
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - src.stat().st_size // 3))
        f.flush()
        os.fsync(f.fileno())
    summary = run_once(vault, db, settings)
    assert (summary.done, summary.retry_later) == (0, 1)
    r = row(db, sha)
    assert (r["state"], r["failure"], r["attempts"]) == ("queued", "full", 0)
    assert "No space left on device" in r["error"] and "归档存储已满" in r["error"]
    assert parse_iso(r["next_try_at"]) > utcnow() + dt.timedelta(seconds=10)
    leftovers = [p for p in small_archival.rglob("*") if p.is_file() and p != filler]
    assert leftovers == []  # no partial derivative under any name
    filler.unlink()
    jobs.retry(db, actor="tester", shas=[sha])
    assert run_once(vault, db, settings).done == 1
    assert row(db, sha)["state"] == "done"


def test_ffmpeg_version_is_remembered_until_the_binary_changes(
    settings: Settings, tmp_path: Path
) -> None:
    """``ffmpeg -version`` (the version recorded with every derivative) is asked once per
    binary; an upgraded binary (other size or time) is asked again."""
    calls = tmp_path / "calls"
    ffmpeg = tmp_path / "bin" / "ffmpeg"
    ffmpeg.parent.mkdir()

    def install(version: str) -> None:
        ffmpeg.write_text(
            f'#!/bin/sh\necho x >> {calls}\necho "ffmpeg version {version}"\n', encoding="utf-8"
        )
        ffmpeg.chmod(0o755)

    install("5.1")
    (tmp_path / "bin" / "ffprobe").symlink_to(ffmpeg)
    settings.transcode.ffmpeg = str(ffmpeg)
    cache = tmp_path / "run"
    assert find_tools(settings, cache_dir=cache).version == "ffmpeg version 5.1"
    assert find_tools(settings, cache_dir=cache).version == "ffmpeg version 5.1"
    assert calls.read_text().count("x") == 1
    install("6.0.1")  # an upgrade: another size
    assert find_tools(settings, cache_dir=cache).version == "ffmpeg version 6.0.1"
    assert calls.read_text().count("x") == 2
    assert find_tools(settings).version == "ffmpeg version 6.0.1"  # no cache: always asked
    assert calls.read_text().count("x") == 3
