"""``station_testbed.waiting.wait_progress``: the tests' wait on daemon work ends when the work
is done, stalls, fails, or its worker dies — never because a fixed number of seconds passed
while the work still moved."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from station_testbed.waiting import Stalled, pid_alive, process_gone, wait_progress


def test_a_slow_job_that_keeps_moving_is_waited_for_past_the_stall_window() -> None:
    start = time.monotonic()
    ticks = {"n": 0}

    def observe() -> int:  # one step of visible progress every 0.1 s
        ticks["n"] = int((time.monotonic() - start) / 0.1)
        return ticks["n"]

    got = wait_progress(lambda: ticks["n"] >= 8 and "done", observe, what="job 1",
                        stall_s=0.3, poll=0.02)  # fmt: skip
    assert got == "done"  # 0.8 s of work outlived a 0.3 s stall window: it kept moving


def test_a_stalled_job_fails_naming_the_job_and_its_last_state() -> None:
    with pytest.raises(Stalled) as e:
        wait_progress(lambda: False, lambda: ("hash", 3, "B"), what="disc job #7",
                      stall_s=0.2, poll=0.02)  # fmt: skip
    text = str(e.value)
    assert "disc job #7" in text and "no progress" in text and "('hash', 3, 'B')" in text


def test_a_failed_job_ends_the_wait_at_once_with_its_error() -> None:
    with pytest.raises(Stalled, match="write error on copy B"):
        wait_progress(lambda: False, lambda: {"state": "failed"}, what="disc job",
                      failed=lambda s: "write error on copy B" if s["state"] == "failed" else None,
                      stall_s=3600)  # fmt: skip


def test_a_dead_worker_ends_the_wait_at_once() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not pid_alive(proc.pid)
    with pytest.raises(Stalled, match=f"worker \\(pid {proc.pid}\\) exited") as e:
        wait_progress(lambda: False, lambda: "copying", what="ingest", stall_s=3600,
                      alive=process_gone(proc.pid, "worker"),
                      context=lambda: "log tail here")  # fmt: skip
    assert "log tail here" in str(e.value)


def test_a_live_process_counts_as_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert pid_alive(proc.pid) and process_gone(proc.pid, "worker")() is None
    finally:
        proc.kill()
        proc.wait()
