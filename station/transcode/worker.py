"""One derivative job, start to end: probe → plan → ffmpeg → fsync → verify → hash → rename →
catalog + audit. Never a partial file under a final name; the original is only ever read (R7).

Run as a process (``python -m station.transcode.worker --home H``) it claims and works through
due jobs at low CPU and I/O priority until none is left or SIGTERM arrives.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from station import log as station_log
from station.config import Settings
from station.errors import is_disk_full
from station.ingest.timing import probe_updates
from station.transcode import jobs
from station.transcode.binaries import Tools, find_tools
from station.transcode.errors import (
    ArchivalFullError,
    DamagedSourceError,
    StoppedError,
    ToolFailedError,
    VerificationError,
)
from station.transcode.fileops import Background, Laps, fsync_file, install, sha256_file
from station.transcode.meta import build_metadata, case_numbers, recording_row
from station.transcode.mp4probe import quick_probe
from station.transcode.plan import (
    Command,
    EncodeOptions,
    Method,
    build_check,
    build_command,
    build_quality,
    choose_method,
)
from station.transcode.probe import MediaInfo, assess, probe, read_check
from station.transcode.retag import retag_stale
from station.transcode.runner import FedTool, RunResult, lower_priority, run_tool
from station.transcode.verify import QualityLimits, judge
from station.vault import Vault

log = station_log.get()
Meta = dict[str, str | None]


@dataclass
class Outcome:
    original_sha256: str
    state: str  # done | failed | queued
    failure: str | None = None
    error: str | None = None
    partial: bool = False
    vault_path: str | None = None


def work_root(vault: Vault) -> Path:
    """Scratch space of running jobs (aux hashes, stderr): under run/, not staging/, so that an
    ingest reaping its own partial copies never removes a running job's files."""
    return vault.run / "transcode"


def _is_full(result: RunResult) -> bool:
    return "No space left on device" in result.stderr


def _recording_updates(row: dict[str, object], info: MediaInfo) -> dict[str, object]:
    """The recording's start, end and ingest delay recomputed from the probe (R1, R2)."""
    return probe_updates(row, info.duration, info.creation_time)


class _Job:
    """State of one run, so every exit path can clean up after itself."""

    def __init__(
        self,
        vault: Vault,
        db: sqlite_utils.Database,
        settings: Settings,
        tools: Tools,
        job: jobs.Job,
        actor: str,
        stop: threading.Event | None,
        nice: int | None = None,
    ) -> None:
        self.vault, self.db, self.settings, self.tools = vault, db, settings, tools
        self.job, self.actor, self.stop = job, actor, stop
        self.cfg = settings.transcode
        # the tools' priority: nice + I/O class idle (the daemon's), or None: the caller's own
        self.nice = nice
        self.probed_by = "ffprobe"  # or "boxes": mp4probe read the original
        self.src = vault.home / job.original_path
        self.workdir = work_root(vault) / f"{os.getpid()}-{job.id}"
        self.temps: list[Path] = []

    def run(self, argv: list[str], capture: bool = False) -> RunResult:
        return run_tool(
            argv,
            workdir=self.workdir,
            nice=self.nice,
            stop=self.stop,
            grace_s=self.cfg.stop_grace_s,
            capture_stdout=capture,
        )

    def tmp_for(self, final: Path) -> Path:
        tmp = final.with_name(f".tmp-{os.getpid()}-{final.name}")
        self.temps.append(tmp)
        return tmp

    def execute(self) -> Outcome:
        job = self.job
        if not self.src.is_file():
            raise DamagedSourceError("the original is missing from the vault", where=str(self.src))
        lap = Laps()
        # A plain H.264/H.265 + AAC MP4 is read from its boxes (no ffprobe process); anything
        # else, and the FFV1 profile (which needs the pixel format), is probed by ffprobe.
        info = quick_probe(self.src) if job.profile == "mp4-h264" else None
        self.probed_by = "boxes" if info is not None else "ffprobe"
        if info is None:
            info = probe(self.tools, self.src, workdir=self.workdir, nice=self.nice, stop=self.stop)
        lap("probe")
        reason = assess(info)
        if reason:
            raise DamagedSourceError(reason, where=str(self.src))
        method = choose_method(job.profile, info, keep_hevc=self.cfg.keep_hevc)
        row = recording_row(self.db, job.original_sha256)
        meta = build_metadata(
            row, case_numbers(self.db, job.original_sha256), self.settings, job.profile
        )
        final = self.vault.archival_path(job.original_sha256, job.profile, method.ext)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp_for(final)
        opts = EncodeOptions(crf=self.cfg.crf, preset=self.cfg.preset)
        cmd = build_command(self.tools.ffmpeg, method, self.src, tmp, self.workdir, meta, opts)
        log.info(
            "transcode.job_started", job=job.id, sha256=job.original_sha256, method=method.name
        )
        checker = None
        if method.name == "rewrap":
            # The read-back's ffmpeg starts now and waits for its input on stdin: its start-up
            # overlaps the re-wrap, and later one read of the file feeds it and the SHA-256.
            fed = build_check(self.tools.ffmpeg, method, tmp, self.workdir, from_stdin=True)
            checker = FedTool(fed.argv, workdir=self.workdir, nice=self.nice)
        try:
            return self._make_and_check(lap, method, cmd, tmp, final, meta, row, info, checker)
        finally:
            if checker is not None:
                checker.close()

    def _make_and_check(
        self,
        lap: Laps,
        method: Method,
        cmd: Command,
        tmp: Path,
        final: Path,
        meta: Meta,
        row: dict[str, object],
        info: MediaInfo,
        checker: FedTool | None,
    ) -> Outcome:
        job = self.job
        made = self.run(cmd.argv)
        lap("make")
        if _is_full(made):
            raise ArchivalFullError(made.describe(), where=str(final.parent))
        if made.returncode != 0 or made.stderr.strip():
            damage = read_check(
                self.tools, self.src, workdir=self.workdir, nice=self.nice, stop=self.stop
            )
            if damage:
                return self.damaged(damage, made, tmp, method, cmd, meta)
            if made.returncode != 0:
                raise ToolFailedError(f"ffmpeg {made.describe()}", where=str(self.src))
            log.warning("transcode.ffmpeg_messages", job=job.id, stderr=made.stderr[-500:])
        fsync_file(tmp)
        lap("fsync")
        if checker is not None:
            # R7: the evicted file is read once from the disk; the same bytes go to the
            # waiting ffmpeg (packet and decoded-audio hashes) and into the SHA-256.
            check = build_check(self.tools.ffmpeg, method, tmp, self.workdir, from_stdin=True)
            checked, sha, size = checker.feed(tmp, stop=self.stop, grace_s=self.cfg.stop_grace_s)
        else:
            check = build_check(self.tools.ffmpeg, method, tmp, self.workdir)
            # The SHA-256 of the derivative is taken while ffmpeg reads it back: one trip to
            # the disk serves both (they read the same pages), on two cores.
            hashing = Background(sha256_file, tmp)
            try:
                checked = self.run(check.argv)
            finally:
                sha, size = hashing.result()  # never leave the thread behind
        lap("check+sha256")
        if _is_full(checked):
            raise ArchivalFullError(checked.describe(), where=str(self.workdir))
        if checked.returncode != 0 or checked.stderr.strip():
            raise VerificationError(
                f"转码文件解码出错 / the derivative does not decode cleanly: {checked.describe()}",
                where=str(final),
            )
        aux = {**cmd.aux, **check.aux}
        if method.name == "reencode" and method.has_video:
            # Not a re-wrap: compare every decoded picture with the original's (PSNR/SSIM).
            quality = build_quality(self.tools.ffmpeg, method, self.src, tmp, self.workdir)
            compared = self.run(quality.argv)
            lap("quality")
            if compared.returncode != 0:
                raise VerificationError(
                    f"画面比对失败 / the picture comparison failed: {compared.describe()}",
                    where=str(final),
                )
            aux.update(quality.aux)
        limits = QualityLimits(self.cfg.verify_min_psnr_db, self.cfg.verify_min_ssim)
        verdict = judge(method.name, aux, limits)
        verdict.raise_if_failed(str(final))
        install(tmp, final)
        rel = str(final.relative_to(self.vault.home))
        jobs.mark_done(
            self.db,
            job,
            actor=self.actor,
            fields={
                "sha256": sha,
                "size": size,
                "ext": method.ext,
                "vault_path": rel,
                "method": method.name,
                "ffmpeg_version": self.tools.version,
                "command": jobs.command_json(cmd.argv),
                "verification": json.dumps(verdict.as_dict(), ensure_ascii=False),
                "tagged_cases": meta.get("case") or "",
            },
            recording_updates=_recording_updates(row, info),
        )
        lap("commit")
        log.info(
            "transcode.derivative_created",
            job=job.id,
            sha256=job.original_sha256,
            path=rel,
            seconds=lap.laps,
            probed_by=self.probed_by,
            priority="low" if self.nice is not None else "normal",
        )
        return Outcome(job.original_sha256, "done", vault_path=rel)

    def damaged(
        self, damage: str, made: RunResult, tmp: Path, method: Method, cmd: Command, meta: Meta
    ) -> Outcome:
        """Damaged original: flag it; keep what ffmpeg could read as a *partial* salvage.

        The first try is the output of the normal run; when that does not decode cleanly (a
        re-wrap copies the broken packet too), a re-encode through ffmpeg's decoder, which drops
        or conceals what it cannot read, is the second.
        """
        job = self.job
        error = f"原始文件损坏 / damaged source: {damage}"
        fields: dict[str, object] = {"command": jobs.command_json(cmd.argv), "method": method.name}
        candidates: list[tuple[Path, Method, list[str]]] = []
        if made.returncode == 0:
            candidates.append((tmp, method, cmd.argv))
        if method.name == "rewrap":
            again = Method("reencode", method.ext, method.has_video, method.has_audio, "aac")
            tmp2 = self.tmp_for(tmp.with_name(f"salvage-{tmp.name}"))
            opts = EncodeOptions(crf=self.cfg.crf, preset=self.cfg.preset)
            cmd2 = build_command(self.tools.ffmpeg, again, self.src, tmp2, self.workdir, meta, opts)
            candidates.append((tmp2, again, cmd2.argv))
        salvage_rel = None
        for i, (path, how, argv) in enumerate(candidates):
            if i > 0 and self.run(argv).returncode != 0:
                continue
            if not path.exists() or path.stat().st_size == 0:
                continue
            fsync_file(path)
            bad = read_check(self.tools, path, workdir=self.workdir, nice=self.nice, stop=self.stop)
            if bad is not None:
                log.info("transcode.salvage_rejected", job=job.id, method=how.name, error=bad)
                continue
            salvage = self.vault.archival_path(
                job.original_sha256, job.profile, f"partial.{method.ext}"
            )
            sha, size = sha256_file(path)
            install(path, salvage)
            salvage_rel = str(salvage.relative_to(self.vault.home))
            fields.update(
                {
                    "sha256": sha,
                    "size": size,
                    "ext": f"partial.{method.ext}",
                    "vault_path": salvage_rel,
                    "partial": 1,
                    "method": how.name,
                    "command": jobs.command_json(argv),
                    "ffmpeg_version": self.tools.version,
                }
            )
            break
        raise _Damaged(error, fields, salvage_rel)


class _Damaged(Exception):
    def __init__(self, error: str, fields: dict[str, object], salvage: str | None) -> None:
        super().__init__(error)
        self.error, self.fields, self.salvage = error, fields, salvage


def process_job(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    tools: Tools,
    job: jobs.Job,
    *,
    actor: str,
    stop: threading.Event | None = None,
    low_priority: bool = True,
) -> Outcome:
    """Run one claimed job and leave it done, failed or re-queued — never "running".

    ``low_priority``: the tools run at nice ``transcode.nice`` and I/O class idle (the daemon's
    workers, so a job never slows an ingest); False: at the caller's own priority (a person
    waiting for ``transcode run-once``)."""
    nice = settings.transcode.nice if low_priority else None
    run = _Job(vault, db, settings, tools, job, actor, stop, nice)
    sha = job.original_sha256
    try:
        return run.execute()
    except _Damaged as exc:
        jobs.mark_failed(
            db,
            job,
            actor=actor,
            failure="damaged",
            error=exc.error,
            fields=exc.fields,
            flag_recording=True,
        )
        log.error(
            "transcode.damaged_source", job=job.id, sha256=sha, error=exc.error, salvage=exc.salvage
        )
        return Outcome(sha, "failed", "damaged", exc.error, exc.salvage is not None, exc.salvage)
    except DamagedSourceError as exc:
        error = f"原始文件损坏 / damaged source: {exc.message}"
        jobs.mark_failed(db, job, actor=actor, failure="damaged", error=error, flag_recording=True)
        log.error("transcode.damaged_source", job=job.id, sha256=sha, error=error)
        return Outcome(sha, "failed", "damaged", error)
    except StoppedError as exc:
        state = jobs.reschedule(
            db,
            job,
            settings,
            actor=actor,
            failure="stopped",
            error=exc.message,
            count_attempt=False,
        )
        log.info("transcode.job_stopped", job=job.id, sha256=sha)
        return Outcome(sha, state, "stopped", exc.message)
    except (ArchivalFullError, OSError) as exc:
        if isinstance(exc, OSError) and not is_disk_full(exc):
            raise
        text = exc.render() if isinstance(exc, ArchivalFullError) else str(exc)
        error = f"归档存储已满 / archival disk full: {text}"
        state = jobs.reschedule(
            db, job, settings, actor=actor, failure="full", error=error, count_attempt=False
        )
        log.error("transcode.vault_full", job=job.id, sha256=sha, error=error)
        return Outcome(sha, state, "full", error)
    except (ToolFailedError, VerificationError) as exc:
        failure = "tool" if isinstance(exc, ToolFailedError) else "verify"
        state = jobs.reschedule(db, job, settings, actor=actor, failure=failure, error=exc.render())
        log.error(
            "transcode.job_failed",
            job=job.id,
            sha256=sha,
            failure=failure,
            error=exc.render(),
            state=state,
        )
        return Outcome(sha, state, failure, exc.render())
    except Exception as exc:  # a bug or an unforeseen error: never leave the job "running"
        error = f"内部错误 / internal error: {type(exc).__name__}: {exc}"
        log.exception("transcode.job_crashed", job=job.id, sha256=sha)
        state = jobs.reschedule(db, job, settings, actor=actor, failure="internal", error=error)
        return Outcome(sha, state, "internal", error)
    finally:
        for tmp in run.temps:
            tmp.unlink(missing_ok=True)
        shutil.rmtree(run.workdir, ignore_errors=True)


def work_through(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    tools: Tools,
    *,
    actor: str,
    stop: threading.Event | None = None,
    limit: int | None = None,
    low_priority: bool = True,
) -> list[Outcome]:
    """Claim and run due jobs until none is due (or ``limit`` ran, or ``stop`` was set)."""
    done: list[Outcome] = []
    while (stop is None or not stop.is_set()) and (limit is None or len(done) < limit):
        job = jobs.claim_next(db)
        if job is None:
            break
        done.append(
            process_job(
                vault, db, settings, tools, job, actor=actor, stop=stop, low_priority=low_priority
            )
        )
    if stop is None or not stop.is_set():
        # Cases linked after a derivative was made: a new version carries them in its tags.
        retag_stale(vault, db, settings, tools, actor=actor, stop=stop, low_priority=low_priority)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="station transcode worker process")
    parser.add_argument("--home", required=True)
    parser.add_argument("--actor", default="station")
    args = parser.parse_args(argv)
    from station.catalog import open_catalog

    vault = Vault(Path(args.home))
    settings = vault.settings()
    station_log.configure(settings.log.level, json=True)
    lower_priority(settings.transcode.nice)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    db = open_catalog(vault.catalog_path, migrate=False)
    try:
        tools = find_tools(settings, cache_dir=vault.run)
        outcomes = work_through(vault, db, settings, tools, actor=args.actor, stop=stop)
        log.info("transcode.worker_exit", jobs=len(outcomes), stopped=stop.is_set())
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
