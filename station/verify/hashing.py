"""Re-hashing files on all cores: a pool of threads, each reading 1 MiB blocks into one buffer.

``hashlib`` releases the GIL while it hashes a large buffer and the kernel read releases it too,
so threads use every core without processes. At low priority (the daemon's periodic verify) each
worker thread lowers its own scheduling priority (Linux per-thread nice) so ingest goes first.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

BLOCK = 1 << 20


@dataclass(frozen=True)
class HashJob:
    path: Path
    key: str  # what the caller calls it (sha256 of the catalog row, derivative id, …)


@dataclass(frozen=True)
class HashResult:
    job: HashJob
    sha256: str | None
    size: int
    error: str | None  # None, or "missing" / the OS error text


def hash_file(path: Path, stop: threading.Event | None = None) -> tuple[str, int]:
    h = hashlib.sha256()
    buf = bytearray(BLOCK)
    view = memoryview(buf)
    size = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
            size += n
            if stop is not None and stop.is_set():
                raise InterruptedError("stopped")
    return h.hexdigest(), size


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except OSError:
        pass


def _one(job: HashJob, stop: threading.Event | None) -> HashResult:
    try:
        digest, size = hash_file(job.path, stop)
    except FileNotFoundError:
        return HashResult(job, None, 0, "missing")
    except InterruptedError:
        return HashResult(job, None, 0, "stopped")
    except OSError as exc:
        return HashResult(job, None, 0, exc.strerror or str(exc))
    return HashResult(job, digest, size, None)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def hash_many(
    jobs: Sequence[HashJob],
    *,
    workers: int | None = None,
    low_priority: bool = False,
    stop: threading.Event | None = None,
    on_result: Callable[[HashResult], None] | None = None,
) -> Iterator[HashResult]:
    """Hash every job, yielding results as they finish; at most ``2 × workers`` in flight."""
    n = workers or default_workers()
    pending: set[Future[HashResult]] = set()
    it = iter(jobs)
    with ThreadPoolExecutor(
        max_workers=n,
        thread_name_prefix="verify-hash",
        initializer=_lower_priority if low_priority else None,
    ) as pool:
        exhausted = False
        while True:
            while not exhausted and len(pending) < 2 * n:
                if stop is not None and stop.is_set():
                    exhausted = True
                    break
                job = next(it, None)
                if job is None:
                    exhausted = True
                    break
                pending.add(pool.submit(_one, job, stop))
            if not pending:
                return
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                res = fut.result()
                if res.error == "stopped":
                    continue
                if on_result is not None:
                    on_result(res)
                yield res
