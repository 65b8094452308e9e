"""Running ffmpeg/ffprobe: low CPU and I/O priority, stop by terminate → wait → kill.

Output goes to files (never to an unread pipe, which would block a long run), and only the tail
of stderr is kept for the error text.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import select
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from station.log import get
from station.transcode.errors import StoppedError

log = get()

# ioprio_set(2) syscall numbers; Python has no wrapper for it.
_SYS_IOPRIO_SET = {"x86_64": 251, "aarch64": 30, "i686": 289, "i386": 289, "armv7l": 314}
_IOPRIO_WHO_PROCESS = 1
_IOPRIO_CLASS_IDLE = 3
_IOPRIO_CLASS_SHIFT = 13
STDERR_TAIL = 4000


def lower_priority(nice: int) -> None:
    """Make the calling process nice ``nice`` and I/O class idle (best effort)."""
    if nice > 0:
        try:
            os.nice(nice)
        except OSError:
            pass
    number = _SYS_IOPRIO_SET.get(platform.machine())
    if number is None:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall(number, _IOPRIO_WHO_PROCESS, 0, _IOPRIO_CLASS_IDLE << _IOPRIO_CLASS_SHIFT)
    except OSError:
        pass


def priority_preexec(nice: int) -> Callable[[], None]:
    def _preexec() -> None:
        lower_priority(nice)

    return _preexec


@dataclass
class RunResult:
    argv: list[str]
    returncode: int
    stderr: str
    stdout: bytes = b""

    @property
    def signal_name(self) -> str | None:
        if self.returncode < 0:
            try:
                return signal.Signals(-self.returncode).name
            except ValueError:
                return f"signal {-self.returncode}"
        return None

    def describe(self) -> str:
        """`exit status N` or `killed by SIGKILL`, then the stderr tail."""
        sig = self.signal_name
        head = f"killed by {sig}" if sig else f"exit status {self.returncode}"
        tail = self.stderr.strip()
        return f"{head}: {tail}" if tail else head


def stop_process(proc: subprocess.Popen[bytes], grace_s: float) -> str:
    """terminate → wait(grace) → kill → wait. Returns how it ended: exited|terminated|killed."""
    if proc.poll() is not None:
        return "exited"
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
        log.info("transcode.tool_terminated", pid=proc.pid)
        return "terminated"
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        log.warning("transcode.tool_killed", pid=proc.pid, grace_s=grace_s)
        return "killed"


def _exited(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``proc`` to end; True (and reaped) once it has.

    Woken the moment it exits (a pidfd), where ``Popen.wait(timeout)`` polls with sleeps of up
    to 50 ms — each tool run would end that much later."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd (old kernel): the polling wait
        try:
            proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    if ready:
        proc.wait()
        return True
    return proc.poll() is not None


def run_tool(
    argv: Sequence[str],
    *,
    workdir: Path,
    nice: int | None = 10,
    stop: threading.Event | None = None,
    grace_s: float = 10.0,
    capture_stdout: bool = False,
    on_start: Callable[[int], None] | None = None,
) -> RunResult:
    """Run one tool to its end (or until ``stop`` is set: then StoppedError after stopping it).

    ``nice``: the tool runs that much nicer and in I/O class idle; None: at the caller's own
    priority."""
    workdir.mkdir(parents=True, exist_ok=True)
    err_path = workdir / f"stderr-{os.getpid()}-{threading.get_ident()}.txt"
    out_path = workdir / f"stdout-{os.getpid()}-{threading.get_ident()}.txt"
    try:
        with open(err_path, "wb") as err, open(out_path, "wb") as out:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out if capture_stdout else subprocess.DEVNULL,
                stderr=err,
                preexec_fn=None if nice is None else priority_preexec(nice),
                close_fds=True,
            )
            if on_start is not None:
                on_start(proc.pid)
            while not _exited(proc, 0.5):
                if stop is not None and stop.is_set():
                    how = stop_process(proc, grace_s)
                    raise StoppedError(
                        f"stopped {Path(argv[0]).name} ({how})", where=" ".join(argv[:3])
                    ) from None
        data = err_path.read_bytes()
        stdout = out_path.read_bytes() if capture_stdout else b""
    finally:
        err_path.unlink(missing_ok=True)
        out_path.unlink(missing_ok=True)
    tail = data[-STDERR_TAIL:].decode("utf-8", errors="replace")
    return RunResult(list(argv), proc.returncode, tail, stdout)


class FedTool:
    """A tool started now that reads its input from stdin, fed later from a file by ``feed``.

    Started before its input exists (a re-wrap's read-back starts while the re-wrap runs), so
    its start-up is not waited for. ``feed`` reads the file once — from the disk, the caller
    having evicted it — and gives every byte both to the tool and to a SHA-256: the digest is
    of exactly the bytes the tool checked. ``close`` stops the tool if it still runs.
    """

    def __init__(self, argv: Sequence[str], *, workdir: Path, nice: int | None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.argv = list(argv)
        self.err_path = workdir / f"stderr-fed-{os.getpid()}-{threading.get_ident()}.txt"
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=err,
                preexec_fn=None if nice is None else priority_preexec(nice),
                close_fds=True,
            )

    def feed(
        self, path: Path, *, stop: threading.Event | None = None, grace_s: float = 10.0
    ) -> tuple[RunResult, str, int]:
        """Send ``path`` to the tool, wait for its end: (result, SHA-256 hex, size)."""
        import hashlib

        digest, size = hashlib.sha256(), 0
        assert self.proc.stdin is not None
        fileno = self.proc.stdin.fileno()
        os.set_blocking(fileno, False)  # never stuck in a write: a stop request is seen
        fd: int | None = fileno

        def stopping() -> None:
            if stop is not None and stop.is_set():
                how = stop_process(self.proc, grace_s)
                raise StoppedError(f"stopped {Path(self.argv[0]).name} ({how})")

        try:
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
                    view = memoryview(chunk)
                    while fd is not None and view:
                        stopping()
                        select.select([], [fd], [], 0.5)
                        try:
                            view = view[os.write(fd, view) :]
                        except BlockingIOError:
                            continue
                        except BrokenPipeError:
                            fd = None  # the tool stopped reading; the hash goes on
                    stopping()
        finally:
            with contextlib.suppress(BrokenPipeError, OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
        while not _exited(self.proc, 0.5):
            if stop is not None and stop.is_set():
                how = stop_process(self.proc, grace_s)
                raise StoppedError(f"stopped {Path(self.argv[0]).name} ({how})")
        data = self.err_path.read_bytes()
        tail = data[-STDERR_TAIL:].decode("utf-8", errors="replace")
        return RunResult(self.argv, self.proc.returncode, tail), digest.hexdigest(), size

    def close(self) -> None:
        """Stop the tool if it still runs (it never got its input: nothing to lose)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        self.err_path.unlink(missing_ok=True)
