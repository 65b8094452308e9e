"""The daemon's TranscodeService: worker processes, wake-up, stop (terminate → wait → kill of a
worker's ffmpeg), and the CLI commands with --json and bilingual help."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click
import pytest
import sqlite_utils
from click.testing import CliRunner
from transcode_support import add_recording, h264_aac_mp4, mjpeg_pcm_avi, probe_json, stub

from station.cli import main as cli_main
from station.config import Settings
from station.transcode.service import TranscodeService
from station.vault import Vault
from station_testbed.waiting import wait_progress


def states(db: sqlite_utils.Database) -> list[str]:
    return [r[0] for r in db.execute("select state from derivatives order by id")]


def wait_until(predicate, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached")


def write_settings(vault: Vault, text: str) -> Settings:
    vault.settings_path.write_text(text, encoding="utf-8")
    return vault.settings()


def test_service_runs_jobs_in_worker_processes(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    settings = write_settings(vault, "[transcode]\nworkers = 2\n")
    add_recording(vault, db, h264_aac_mp4(tmp_path / "a.MP4", 1.0))
    add_recording(vault, db, mjpeg_pcm_avi(tmp_path / "b.AVI", 1.0))
    service = TranscodeService(vault, settings)
    workers: set[int] = set()
    service.start()
    try:
        service.wake()

        def finished() -> bool:
            workers.update(service.running_workers())
            return states(db) == ["done", "done"]

        wait_progress(
            finished,
            lambda: db.execute("select id, state, attempts, failure from derivatives").fetchall(),
            what="both transcode jobs",
        )
    finally:
        service.stop(timeout=30)
    assert workers and os.getpid() not in workers  # separate processes did the work
    assert service.running_workers() == []
    actors = {
        r[0] for r in db.execute("select actor from audit_log where event like 'derivative%'")
    }
    assert actors == {"station"}


def test_service_stop_ends_a_hanging_ffmpeg_and_requeues_its_job(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    ffmpeg = stub(
        tmp_path / "ffmpeg", f"trap '' TERM\necho $$ > {pidfile}\nwhile :; do sleep 0.05; done"
    )
    settings = write_settings(vault, f'[transcode]\nffmpeg = "{ffmpeg}"\nstop_grace_s = 0.5\n')
    add_recording(vault, db, h264_aac_mp4(tmp_path / "a.MP4", 1.0))
    service = TranscodeService(vault, settings)
    service.start()
    try:
        wait_until(lambda: pidfile.exists() and pidfile.read_text().strip() != "")
        ffmpeg_pid = int(pidfile.read_text())
        assert states(db) == ["running"]
    finally:
        service.stop(timeout=30)
    with pytest.raises(ProcessLookupError):
        os.kill(ffmpeg_pid, 0)
    assert service.running_workers() == []
    r = next(iter(db.query("select state, attempts, failure, error from derivatives")))
    assert (r["state"], r["attempts"], r["failure"]) == ("queued", 0, "stopped")
    assert "(killed)" in r["error"]
    assert not list(vault.archival.rglob(".tmp-*"))


def proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_pause_freezes_workers_and_their_ffmpeg_resume_thaws(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    ffmpeg = stub(tmp_path / "ffmpeg", f"echo $$ > {pidfile}\nwhile :; do sleep 0.05; done")
    settings = write_settings(vault, f'[transcode]\nffmpeg = "{ffmpeg}"\nstop_grace_s = 0.5\n')
    add_recording(vault, db, h264_aac_mp4(tmp_path / "a.MP4", 1.0))
    service = TranscodeService(vault, settings)
    service.start()
    try:
        wait_until(lambda: pidfile.exists() and pidfile.read_text().strip() != "")
        ffmpeg_pid = int(pidfile.read_text())
        (worker,) = service.running_workers()
        service.pause()
        service.pause()  # nested: a second dock session
        wait_until(lambda: proc_state(ffmpeg_pid) == "T" and proc_state(worker) == "T")
        service.resume()
        assert proc_state(ffmpeg_pid) == "T"  # still one session ingesting
        service.resume()
        wait_until(lambda: proc_state(ffmpeg_pid) != "T" and proc_state(worker) != "T")
        service.pause()  # and stop() works on a paused service
    finally:
        service.stop(timeout=30)
    assert service.running_workers() == []
    assert states(db) == ["queued"]


def test_service_without_ffmpeg_keeps_the_station_running(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    settings = write_settings(vault, '[transcode]\nffmpeg = "/nonexistent/ffmpeg"\n')
    add_recording(vault, db, h264_aac_mp4(tmp_path / "a.MP4", 1.0))
    service = TranscodeService(vault, settings)
    service.start()
    try:
        assert service.wake_and_wait()  # a whole pass looked for ffmpeg and the due job
        assert service.running_workers() == []
        assert service.tools is None  # it says so in the log (transcode.ffmpeg_missing) and waits
    finally:
        service.stop(timeout=10)
    assert states(db) == []  # nothing claimed, nothing failed: jobs wait for a working ffmpeg


def test_idle_service_starts_no_worker(vault: Vault, db: sqlite_utils.Database) -> None:
    service = TranscodeService(vault, Settings())
    service.start()
    try:
        assert service.wake_and_wait()  # a whole pass looked for due jobs: there are none
        assert service.running_workers() == [] and service.tools is not None
    finally:
        service.stop(timeout=10)


def test_cli_commands_have_json_and_bilingual_help(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    sha = add_recording(vault, db, h264_aac_mp4(tmp_path / "a.MP4", 1.0))
    runner = CliRunner()
    home = ["--home", str(vault.home)]
    for sub in ("status", "retry", "run-once"):
        helptext = runner.invoke(cli_main, [*home, "transcode", sub, "--help"]).output
        assert "--json" in helptext
        # the summary line is "中文 / English": Chinese before the slash, English after it
        group = cli_main.get_command(click.Context(cli_main), "transcode")
        assert isinstance(group, click.Group)
        cmd = group.get_command(click.Context(group), sub)
        assert cmd is not None and cmd.help
        summary = cmd.help.splitlines()[0]
        zh, sep, en = summary.partition(" / ")
        assert sep and any("\u4e00" <= ch <= "\u9fff" for ch in zh), summary
        assert en[:1].isascii() and en[:1].isalpha() and zh.strip() in helptext, summary
    res = runner.invoke(cli_main, [*home, "transcode", "run-once", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output[res.output.index("{") :])
    assert (data["enqueued"], data["done"]) == (1, 1)
    assert data["outcomes"][0]["original_sha256"] == sha
    res = runner.invoke(cli_main, [*home, "transcode", "status", "--json"])
    status = json.loads(res.output[res.output.index("{") :])
    assert status["counts"] == {"done": 1} and status["pending_or_failed"] == []
    res = runner.invoke(cli_main, [*home, "transcode", "status"])
    assert "done 1" in res.output
    res = runner.invoke(cli_main, [*home, "transcode", "retry"])
    assert res.exit_code != 0 and "--all-failed" in res.output


def test_every_ingested_recording_gets_a_verified_derivative(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    """End to end with the real ingest engine and a simulated recorder volume: no hook in
    ingest is needed, ``enqueue_missing`` finds the new recordings."""
    from station.ingest.engine import IngestContext, ingest_volume
    from station.sim.volume import make_volume
    from station.transcode.service import run_once

    volume = tmp_path / "vol"
    volume.mkdir()
    make_volume(volume, device="DSJ0042", officer="200042", clips=3, seconds=1.0, size="320x240")
    report = ingest_volume(
        vault, db, settings, volume, IngestContext(kind="cli", drift_s=2.0), actor="tester"
    )
    stored = [f.sha256 for f in report.files if f.outcome == "new"]
    assert len(stored) == 3
    summary = run_once(vault, db, settings)
    assert (summary.enqueued, summary.done, summary.failed) == (3, 3, 0)
    for sha in stored:
        d = next(iter(db.query("select * from derivatives where original_sha256 = ?", [sha])))
        assert (d["state"], d["method"]) == ("done", "rewrap")
        rec = db["recordings"].get(sha)  # type: ignore[union-attr]
        assert rec["duration_s"] == pytest.approx(1.0, abs=0.1)
        tags = probe_json(vault.home / d["vault_path"])["format"]["tags"]
        assert tags["officer"].startswith("200042") and tags["device"].startswith("DSJ0042")
        assert tags["recorded_at"] == rec["recorded_at"] and tags["drift_s"] == "2.0"
