"""Is any process on this machine holding a file open for writing? (issue 8, item 2)

Reads ``/proc/<pid>/fd`` and ``/proc/<pid>/fdinfo``: a real check for local writers, used as a
last guard before a drop is ingested (covers files found by the start-up scan, which have no
close-write history). It cannot see writers on other machines (network shares): there the
settle time is the only guard. Processes we may not inspect (not root) are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

_WRITE_MODES = (os.O_WRONLY, os.O_RDWR)


def writers(paths: Iterable[str], proc: str = "/proc") -> dict[str, list[int]]:
    """Map each of ``paths`` open for writing to the pids holding it open so."""
    wanted = {os.path.realpath(p) for p in paths}
    found: dict[str, list[int]] = {}
    if not wanted:
        return found
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return found
    for pid in pids:
        fd_dir = f"{proc}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if target not in wanted:
                continue
            try:
                with open(f"{proc}/{pid}/fdinfo/{fd}", encoding="ascii") as fh:
                    flags = next(
                        (int(line.split()[1], 8) for line in fh if line.startswith("flags:")), 0
                    )
            except (OSError, ValueError):
                continue
            if flags & os.O_ACCMODE in _WRITE_MODES:
                found.setdefault(target, []).append(int(pid))
    return found
