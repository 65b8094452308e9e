"""Helpers of the custody tests (no tests here): real `station` processes on one vault, with
strace widening the windows of races (HARNESS.md) and kill -9 / SIGTERM at chosen steps."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from station_testbed.waiting import wait_progress

# Each rename into the vault and each flush slowed down, so that two runs overlap for seconds.
SLOW = ["-e", "inject=renameat2:delay_exit=100000", "-e", "inject=syncfs:delay_exit=300000"]


def need_strace() -> None:
    if shutil.which("strace") is None:
        pytest.skip("needs strace (scripts/setup.sh installs it)")


def make_clips(folder: Path, n: int, size: int = 200_000, *, first: int = 1) -> dict[Path, str]:
    """``n`` files named like a recorder's clips, random content; returns path -> sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i in range(first, first + n):
        p = folder / f"DSJ0001_100001_20260101{12 + i // 60:02d}{i % 60:02d}00_{i:04d}.DAT"
        data = os.urandom(size)
        p.write_bytes(data)
        out[p] = hashlib.sha256(data).hexdigest()
    return out


def station(
    home: Path,
    *args: str,
    strace: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    """Start ``station --home HOME ARGS…`` as a real process (optionally under strace)."""
    cmd = [sys.executable, "-m", "station", "--home", str(home), *args]
    if strace is not None:
        cmd = ["strace", "-f", "-qq", "-o", "/dev/null", *strace, *cmd]
    full_env = {**os.environ, "STATION_HOME": str(home), "STATION_USER": "tester", **(env or {})}
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        start_new_session=True,
    )


def run_station(home: Path, *args: str, **kw: Any) -> tuple[int, str, str]:
    p = station(home, *args, **kw)
    out, err = p.communicate(timeout=300)
    return p.returncode, out, err


def tree_io(pid: int) -> int:
    """Bytes read and written so far by ``pid`` and every process below it (``/proc/*/io``):
    what a copying, hashing or committing ``station`` visibly does."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, total = {pid}, 0
    for _ in range(8):  # strace → python → its helpers: a few levels
        tree |= {child for child, parent in parents.items() if parent in tree}
    for member in tree:
        try:
            io = dict(
                line.split(": ")
                for line in Path(f"/proc/{member}/io").read_text().split("\n")
                if line
            )
        except (OSError, ValueError):
            continue
        total += int(io.get("rchar", 0)) + int(io.get("wchar", 0))
    return total


def wait_for(
    what: str,
    cond: Callable[[], bool],
    timeout: float = 60.0,
    proc: subprocess.Popen[str] | None = None,
) -> None:
    """Poll ``cond`` until true (the test fails, naming ``what``, if it never becomes true).
    With ``proc`` (the process doing the work) the wait goes on while it lives and its I/O
    moves, fails at once when it exits (with its stderr), and after ``timeout`` seconds in
    which it read and wrote nothing; without, ``timeout`` bounds the whole wait."""
    if proc is not None:

        def gone() -> str | None:
            if proc.poll() is None:
                return None
            err = proc.stderr.read() if proc.stderr is not None else ""
            return f"the process exited ({proc.returncode}): {err[-2000:]}"

        wait_progress(cond, lambda: tree_io(proc.pid), what=what, alive=gone, stall_s=timeout,
                      poll=0.02)  # fmt: skip
        return
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def query(home: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the catalog from outside (a reader never blocks the writers in WAL mode)."""
    path = home / "catalog.sqlite"
    if not path.exists():
        return []
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return list(con.execute(sql, args))
    except sqlite3.OperationalError:
        return []  # not migrated yet
    finally:
        con.close()


def verify(home: Path) -> dict[str, Any]:
    _code, out, err = run_station(home, "verify", "--json")
    assert "Traceback" not in err, err
    data: dict[str, Any] = json.loads(out)
    return data


def errors_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["severity"] == "error"]


def kill9(p: subprocess.Popen[str]) -> None:
    """kill -9 the whole process group (strace and the station under it)."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.communicate(timeout=60)


def stored_files(home: Path) -> list[Path]:
    return [p for p in (home / "originals").rglob("*") if p.is_file()]
