"""The transcode service for the daemon, and ``run_once`` for the CLI and tests.

The service thread sleeps on an Event (long timeout: ``transcode.idle_poll_s``, or until the next
back-off is due), so an idle station spends no CPU on it. When jobs are due it starts worker
*processes* (``python -m station.transcode.worker``), at most ``transcode.workers`` at a time;
each claims jobs until none is due and exits. ``wake()`` (e.g. after an ingest) looks at once.
``pause()``/``resume()`` freeze and thaw the workers while an ingest runs. ``stop()`` sends
SIGTERM (a worker stops its ffmpeg: terminate → wait → kill, re-queues the job), waits, then
kills what is left; a job a killed worker leaves "running" is re-queued (``requeue_orphans``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlite_utils

from station.catalog import open_catalog
from station.config import Settings
from station.log import get
from station.transcode import jobs, retag
from station.transcode.binaries import Tools, find_tools
from station.transcode.errors import ToolMissingError
from station.transcode.runner import stop_process
from station.transcode.worker import Outcome, work_root, work_through
from station.vault import Vault

log = get()


@dataclass
class Summary:
    enqueued: int = 0
    requeued: int = 0
    done: int = 0
    failed: int = 0
    retry_later: int = 0
    partial: int = 0
    ffmpeg: str | None = None
    ffmpeg_source: str | None = None
    ffmpeg_version: str | None = None
    priority: str = "low"  # of the tools: low (nice + I/O idle) | normal
    outcomes: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def reap_temporaries(vault: Vault) -> int:
    """Remove temp derivatives and work folders of worker processes that no longer run."""
    n = 0
    for tmp in vault.archival.rglob(".tmp-*"):
        pid = tmp.name.split("-")[1] if tmp.name.count("-") >= 2 else ""
        if pid.isdigit() and _alive(int(pid)):
            continue
        tmp.unlink(missing_ok=True)
        n += 1
    root = work_root(vault)
    if root.is_dir():
        for d in root.iterdir():
            pid = d.name.split("-")[0]
            if pid.isdigit() and _alive(int(pid)):
                continue
            shutil.rmtree(d, ignore_errors=True)
            n += 1
    if n:
        log.info("transcode.temporaries_reaped", count=n)
    return n


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_once(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    *,
    actor: str = "station",
    limit: int | None = None,
    stop: threading.Event | None = None,
    tools: Tools | None = None,
    low_priority: bool = True,
) -> Summary:
    """Queue what is missing, then run every due job in this process. ``low_priority``: ffmpeg
    at nice ``transcode.nice`` and I/O class idle, as the daemon runs it; False: at this
    process's own priority (see ``choose_priority``)."""
    # ToolMissingError before any job is touched
    tools = tools or find_tools(settings, cache_dir=vault.run)
    summary = Summary(
        ffmpeg=tools.ffmpeg,
        ffmpeg_source=tools.source,
        ffmpeg_version=tools.version,
        priority="low" if low_priority else "normal",
    )
    summary.requeued = jobs.requeue_orphans(db)
    reap_temporaries(vault)
    summary.enqueued = jobs.enqueue_missing(db, settings)
    outcomes: list[Outcome] = work_through(
        vault, db, settings, tools, actor=actor, stop=stop, limit=limit, low_priority=low_priority
    )
    for o in outcomes:
        if o.state == "done":
            summary.done += 1
        elif o.state == "failed":
            summary.failed += 1
        else:
            summary.retry_later += 1
        summary.partial += int(o.partial)
        summary.outcomes.append(asdict(o))
    log.info(
        "transcode.run_once",
        done=summary.done,
        failed=summary.failed,
        retry_later=summary.retry_later,
        enqueued=summary.enqueued,
    )
    return summary


PRIORITIES = ("auto", "normal", "low")


def busy_slots(vault: Vault) -> int:
    """Dock slots of a running daemon that are not yet safe to undock (an ingest under way)."""
    from station.status import daemon_alive, read_status

    status = read_status(vault.run / "status.json")
    if not status or not daemon_alive(status):
        return 0
    return sum(1 for s in status.get("slots") or [] if not s.get("safe_to_undock"))


def choose_priority(choice: str, *, interactive: bool, busy: int) -> bool:
    """Whether ``transcode run-once`` runs its tools at low priority (True) or normal (False).

    ``low`` and ``normal`` are what they say. ``auto``: normal when a person waits for it at a
    terminal (``interactive``) and no dock slot is ingesting (``busy`` = 0); low otherwise —
    scripts and timers, and any run while an officer's recorder is being copied (R1: the
    ingest comes first), as the daemon's workers always run.
    """
    if choice not in PRIORITIES:
        raise ValueError(f"unknown priority {choice!r}")
    if choice == "auto":
        return not (interactive and busy == 0)
    return choice == "low"


class TranscodeService:
    """Runs derivative jobs in worker processes for the daemon."""

    def __init__(self, vault: Vault, settings: Settings, *, actor: str = "station") -> None:
        self.vault, self.settings, self.actor = vault, settings, actor
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._paused = 0
        self._passes = 0  # passes of the loop finished, under _passed
        self._passed = threading.Condition()
        self.tools: Tools | None = None

    # -- public face -------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="transcode-service", daemon=False)
        self._thread.start()
        log.info("transcode.service_started", workers=self.settings.transcode.workers)

    def wake(self) -> None:
        """Look for new recordings and due jobs now (call after an ingest)."""
        self._wake.set()

    def wake_and_wait(self, timeout: float = 60.0) -> bool:
        """Wake the loop and wait until a pass of it has finished after this call: whatever
        that pass decides (spawn workers, or wait for ffmpeg) is done when this returns True."""
        with self._passed:
            target = self._passes + 1
        self.wake()
        with self._passed:
            return self._passed.wait_for(lambda: self._passes >= target, timeout)

    def pause(self) -> None:
        """Freeze every worker and its ffmpeg (SIGSTOP to their process groups); start none.

        For the daemon to call when a dock session starts: ingest comes first (R1), and on a
        disk whose I/O scheduler ignores ionice (mq-deadline, none) a re-wrap would otherwise
        take a third of the ingest's throughput (bench/transcode.py). Nested calls count.
        """
        with self._lock:
            self._paused += 1
            if self._paused == 1:
                self._signal_all(signal.SIGSTOP)
        log.info("transcode.service_paused", depth=self._paused)

    def resume(self) -> None:
        with self._lock:
            if self._paused == 0:
                return
            self._paused -= 1
            if self._paused == 0:
                self._signal_all(signal.SIGCONT)
        log.info("transcode.service_resumed", depth=self._paused)
        self._wake.set()

    @property
    def paused(self) -> bool:
        return self._paused > 0

    def _signal_all(self, sig: signal.Signals) -> None:
        for proc in self._children.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        with self._lock:
            self._paused = 0
            self._signal_all(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            children = list(self._children.values())
        for proc in children:
            if proc.poll() is None:
                proc.terminate()  # the worker stops its ffmpeg and re-queues its job
        for proc in children:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                stop_process(proc, 0)
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None
        log.info("transcode.service_stopped")

    def running_workers(self) -> list[int]:
        with self._lock:
            return [pid for pid, p in self._children.items() if p.poll() is None]

    # -- inside ---------------------------------------------------------------------------------
    def _loop(self) -> None:
        db = open_catalog(self.vault.catalog_path)
        try:
            jobs.requeue_orphans(db)
            reap_temporaries(self.vault)
            while not self._stop.is_set():
                wait = self._tick(db)
                with self._passed:
                    self._passes += 1
                    self._passed.notify_all()
                self._wake.wait(wait)
                self._wake.clear()
        except Exception as exc:  # the station goes on without derivatives; say so loudly
            log.exception("transcode.service_crashed", error=str(exc))
        finally:
            db.close()

    def _tick(self, db: sqlite_utils.Database) -> float:
        cfg = self.settings.transcode
        if self.tools is None:
            try:
                self.tools = find_tools(self.settings)
            except ToolMissingError as exc:
                log.error("transcode.ffmpeg_missing", error=exc.render())
                return cfg.idle_poll_s
        if self.paused:
            return cfg.idle_poll_s  # resume() wakes the loop
        jobs.requeue_orphans(db)  # a worker that died (OOM, kill -9) leaves its job "running"
        jobs.enqueue_missing(db, self.settings)
        due = jobs.count_due(db)
        if not due and retag.count_stale(db, cfg.retry_max_s):
            due = 1  # a worker also brings derivatives' case tags up to date
        with self._lock:
            busy = sum(1 for p in self._children.values() if p.poll() is None)
        for _ in range(min(due, cfg.workers - busy)):
            self._spawn()
        until = jobs.seconds_until_due(db)
        if until is None or until == 0.0:
            return cfg.idle_poll_s  # workers busy or nothing queued; a worker exit wakes us
        return min(cfg.idle_poll_s, until + 0.5)

    def _spawn(self) -> None:
        argv = [sys.executable, "-m", "station.transcode.worker", "--home", str(self.vault.home)]
        argv += ["--actor", self.actor]
        # Own process group: pause() freezes the worker together with its ffmpeg.
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, close_fds=True, start_new_session=True
        )
        with self._lock:
            self._children[proc.pid] = proc
        log.info("transcode.worker_started", pid=proc.pid)
        threading.Thread(target=self._reap, args=(proc,), name=f"transcode-reap-{proc.pid}").start()

    def _reap(self, proc: subprocess.Popen[bytes]) -> None:
        code = proc.wait()
        with self._lock:
            self._children.pop(proc.pid, None)
        log.info("transcode.worker_exited", pid=proc.pid, returncode=code)
        self._wake.set()
