"""What is on a recorder volume: regular files to ingest, and what is never read.

Symlinks and device nodes are never followed or read (they are listed as skipped, so nothing
vanishes unseen). Names are kept as the recorder wrote them; names that are not UTF-8 are shown
with backslash escapes.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from station.errors import IngestError, VolumeGoneError


@dataclass(frozen=True)
class SourceEntry:
    path: Path
    rel: str  # display form, "/" separated, non-UTF-8 bytes escaped
    size: int
    mtime: float
    kind: str  # file | symlink | special


def display(name: str) -> str:
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _entry(path: Path, rel: str, st: os.stat_result) -> SourceEntry:
    if stat.S_ISLNK(st.st_mode):
        kind = "symlink"
    elif stat.S_ISREG(st.st_mode):
        kind = "file"
    else:
        kind = "special"
    return SourceEntry(path, display(rel), st.st_size, st.st_mtime, kind)


def enumerate_volume(volume: Path) -> list[SourceEntry]:
    """Every entry below ``volume``, depth first, sorted by path; directories not listed."""
    if not volume.is_dir():
        raise VolumeGoneError(
            f"not a readable folder: {volume}",
            where=str(volume),
            hint="is the recorder still docked and mounted?",
        )
    out: list[SourceEntry] = []
    stack: list[tuple[Path, str]] = [(volume, "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            with os.scandir(folder) as it:
                items = sorted(it, key=lambda e: e.name)
        except FileNotFoundError as exc:
            raise VolumeGoneError(
                f"folder vanished while listing: {folder}", where=str(folder)
            ) from exc
        except OSError as exc:
            raise IngestError(f"cannot list folder: {exc.strerror}", where=str(folder)) from exc
        subdirs = []
        for item in items:
            rel = f"{prefix}{item.name}"
            try:
                st = item.stat(follow_symlinks=False)
            except OSError:
                continue  # vanished between listing and stat; a re-dock sees it again
            if stat.S_ISDIR(st.st_mode):
                subdirs.append((Path(item.path), rel + "/"))
            else:
                out.append(_entry(Path(item.path), rel, st))
        stack.extend(reversed(subdirs))
    out.sort(key=lambda e: e.rel)
    return out


def entries_for_files(files: list[Path], base: Path) -> tuple[list[SourceEntry], list[str]]:
    """Entries for given files under ``base``; returns (entries, problems for files outside)."""
    base_abs = os.path.abspath(base)
    entries: list[SourceEntry] = []
    problems: list[str] = []
    for f in files:
        p = os.path.abspath(f if os.path.isabs(f) else os.path.join(base_abs, f))
        if os.path.commonpath([base_abs, p]) != base_abs or p == base_abs:
            problems.append(display(str(f)))
            continue
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            problems.append(display(str(f)))
            continue
        entries.append(_entry(Path(p), os.path.relpath(p, base_abs).replace(os.sep, "/"), st))
    entries.sort(key=lambda e: e.rel)
    return entries, problems
