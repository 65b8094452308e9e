"""Is any process on this machine holding a file open for writing?

Reads ``/proc/<pid>/fd`` and ``/proc/<pid>/fdinfo``: a real check for local writers, used as a
last guard before a drop is ingested (covers files found by the start-up scan, which have no
close-write history). It cannot see writers on other machines (network shares): there the
settle time is the only guard. Processes we may not inspect (not root) are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

_WRITE_MODES = (os.O_WRONLY, os.O_RDWR)


def writers(
    paths: Iterable[str] = (), *, under: str | None = None, proc: str = "/proc"
) -> dict[str, list[int]]:
    """Map each of ``paths`` (or any file below the folder ``under``) that is open for writing
    to the pids holding it open so."""
    wanted = {os.path.realpath(p) for p in paths}
    prefix = os.path.realpath(under) + "/" if under is not None else None
    found: dict[str, list[int]] = {}
    if not wanted and prefix is None:
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
            if target not in wanted and not (prefix and target.startswith(prefix)):
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
