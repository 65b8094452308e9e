"""Benchmark harness: real loop devices, cgroup v1 blkio throttles, cache eviction, child
processes timed with their own peak RSS. Benchmarks compare against a baseline measured in the
same run and report ratios (the machines are shared and noisy)."""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

BLKIO = Path("/sys/fs/cgroup/blkio")


def need_root() -> None:
    if os.geteuid() != 0:
        sys.exit("this benchmark needs root (loop devices, mounts, cgroups)")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, to print beside a figure (a shared machine)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def drop_caches() -> None:
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        pass


@contextlib.contextmanager
def loop_fs(image: Path, size_bytes: int, mnt: Path, fstype: str = "ext4") -> Iterator[str]:
    """A fresh file system on a loop device, mounted at ``mnt``; yields the loop device."""
    with open(image, "wb") as f:
        f.truncate(size_bytes)
    subprocess.run([f"mkfs.{fstype}", "-q", "-F", "-m", "0", str(image)], check=True)
    loop = subprocess.run(
        ["losetup", "-f", "--show", str(image)], check=True, capture_output=True, text=True
    ).stdout.strip()
    mnt.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", loop, str(mnt)], check=True)
        try:
            yield loop
        finally:
            subprocess.run(["umount", str(mnt)], check=False)
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)
        image.unlink(missing_ok=True)


@contextlib.contextmanager
def throttle(name: str, device: str, read_bps: int) -> Iterator[Path]:
    """A blkio cgroup limiting reads from ``device`` to ``read_bps``; yields its procs file."""
    st = os.stat(device)
    group = BLKIO / name
    group.mkdir(exist_ok=True)
    try:
        (group / "blkio.throttle.read_bps_device").write_text(
            f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)} {read_bps}\n"
        )
        yield group / "cgroup.procs"
    finally:
        with contextlib.suppress(OSError):
            group.rmdir()


@dataclass
class Run:
    seconds: float
    max_rss_mb: float
    returncode: int
    output: str


def run_child(cmd: list[str], procs: Path | None = None, env: dict[str, str] | None = None) -> Run:
    """Run ``cmd`` (inside the cgroup whose procs file is given), timing it and its peak RSS."""
    if procs is not None:
        cmd = ["sh", "-c", f'echo $$ > {procs} && exec "$@"', "sh", *cmd]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}): {out[-2000:]}")
    return Run(seconds, usage.ru_maxrss / 1024, proc.returncode, out)


def self_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Paired:
    """Alternated runs of several sides: ``seconds[side]`` and ``rss[side]`` per round."""

    seconds: dict[str, list[float]]
    rss_mb: dict[str, list[float]]

    def median(self, side: str) -> float:
        return statistics.median(self.seconds[side])

    def spread(self, side: str) -> tuple[float, float]:
        return min(self.seconds[side]), max(self.seconds[side])

    def ratio(self, side: str, base: str) -> float:
        """Median of the per-round ratios ``side / base`` (rounds are paired in time)."""
        return statistics.median(
            s / b for s, b in zip(self.seconds[side], self.seconds[base], strict=True)
        )

    def line(self, side: str, base: str | None = None) -> str:
        lo, hi = self.spread(side)
        text = (
            f"{side:<34} median {self.median(side):8.3f} s  [{lo:.3f} … {hi:.3f}]"
            f"  peak RSS {max(self.rss_mb[side]):7.1f} MB"
        )
        if base and base != side:
            text += f"  × {base}: {self.ratio(side, base):.2f}"
        return text


def alternate(
    sides: dict[str, list[str]],
    rounds: int = 5,
    *,
    cold: bool = True,
    env: dict[str, str] | None = None,
    before: Callable[[str], None] | None = None,
    procs: Path | None = None,
) -> Paired:
    """Run each side's command once per round, sides alternated (their order flips every round),
    the page cache dropped before every timed run when ``cold``; each run is a child process
    timed with its own peak RSS (inside the cgroup of ``procs`` when given: a throttled link).
    ``before(side)`` runs untimed ahead of each run (clean-up)."""
    out = Paired({s: [] for s in sides}, {s: [] for s in sides})
    names = list(sides)
    for r in range(rounds):
        for side in names if r % 2 == 0 else names[::-1]:
            if before is not None:
                before(side)
            if cold:
                drop_caches()
            run = run_child(sides[side], procs, env=env)
            out.seconds[side].append(run.seconds)
            out.rss_mb[side].append(run.max_rss_mb)
    return out
