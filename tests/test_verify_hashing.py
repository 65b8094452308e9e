"""The re-hashing pool of ``station verify``: right digests on all cores, errors per file, stop,
and low priority for the daemon's periodic run."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from station.verify.hashing import BLOCK, HashJob, hash_many, lower_priority


def test_digests_sizes_and_errors(tmp_path: Path) -> None:
    sizes = [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 17]
    jobs, want = [], {}
    for i, n in enumerate(sizes):
        p = tmp_path / f"f{i}"
        data = os.urandom(n)
        p.write_bytes(data)
        jobs.append(HashJob(p, f"f{i}"))
        want[f"f{i}"] = (hashlib.sha256(data).hexdigest(), n)
    jobs.append(HashJob(tmp_path / "gone", "gone"))
    (tmp_path / "adir").mkdir()
    jobs.append(HashJob(tmp_path / "adir", "adir"))
    seen = []
    got = {r.job.key: r for r in hash_many(jobs, workers=2, on_result=seen.append)}
    assert len(seen) == len(jobs) == len(got)
    for key, (digest, n) in want.items():
        assert (got[key].sha256, got[key].size, got[key].error) == (digest, n, None)
    assert got["gone"].error == "missing" and got["gone"].sha256 is None
    assert got["adir"].error is not None and got["adir"].sha256 is None


def test_stop_ends_early(tmp_path: Path) -> None:
    jobs = []
    for i in range(40):
        p = tmp_path / f"f{i}"
        p.write_bytes(b"x" * 1000)
        jobs.append(HashJob(p, str(i)))
    stop = threading.Event()
    done = []
    for r in hash_many(jobs, workers=2, stop=stop):
        done.append(r)
        stop.set()
    assert 1 <= len(done) < 40


def test_low_priority_lowers_only_the_worker_thread() -> None:
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[int] = []

    def worker() -> None:
        lower_priority()
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [19]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
