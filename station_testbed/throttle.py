"""A slow recorder: reads of one block device throttled for the processes put in a cgroup.

Two kernels' ways, whichever this host offers:

- cgroup v1 ``blkio`` (``/sys/fs/cgroup/blkio``): ``blkio.throttle.read_bps_device`` = ``MAJ:MIN
  BYTES``;
- cgroup v2 ``io`` (the unified hierarchy at ``/sys/fs/cgroup``, or ``/sys/fs/cgroup/unified``
  on a hybrid host, when its ``cgroup.controllers`` lists ``io``): ``+io`` enabled in the
  parent's ``cgroup.subtree_control``, then ``io.max`` = ``MAJ:MIN rbps=BYTES``.

``throttled(name, device, rate)`` yields the group's ``cgroup.procs``; write a pid into it. On
leaving, the processes go back to the parent group and the group is removed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Backend:
    kind: str  # "v1-blkio" | "v2-io"
    parent: Path  # the group the throttled group is made in

    def setup(self, group: Path, device: str, rate: int) -> None:
        st = os.stat(device)
        dev = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
        if self.kind == "v1-blkio":
            (group / "blkio.throttle.read_bps_device").write_text(f"{dev} {rate}\n")
        else:
            (group / "io.max").write_text(f"{dev} rbps={rate}\n")


def _lists_io(path: Path) -> bool:
    try:
        return "io" in (path / "cgroup.controllers").read_text().split()
    except OSError:
        return False


def backend(root: Path = CGROUP) -> Backend | None:
    """The throttle this host offers, v1 ``blkio`` first (it holds the disks where both are
    mounted), else v2 ``io``; None when neither can throttle reads."""
    if (root / "blkio").is_dir():
        return Backend("v1-blkio", root / "blkio")
    for unified in (root, root / "unified"):
        if _lists_io(unified):
            return Backend("v2-io", unified)
    return None


@contextlib.contextmanager
def throttled(name: str, device: str, rate: int, root: Path = CGROUP) -> Iterator[Path]:
    found = backend(root)
    if found is None:
        raise RuntimeError(f"no cgroup can throttle reads under {root}")
    group = found.parent / name
    if found.kind == "v2-io":
        control = found.parent / "cgroup.subtree_control"
        if "io" not in control.read_text().split():
            control.write_text("+io\n")
    group.mkdir(exist_ok=True)
    try:
        found.setup(group, device, rate)
        yield group / "cgroup.procs"
    finally:
        with contextlib.suppress(OSError):
            for pid in (group / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    (found.parent / "cgroup.procs").write_text(pid)
        with contextlib.suppress(OSError):
            group.rmdir()
