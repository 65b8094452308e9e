"""Listing inbox folders and drops without ever following a symlink.

A drop is one entry directly inside an inbox folder: a folder (with everything below it) or a
single file. Symbolic links and special files (FIFOs, devices, sockets) are never opened or
followed: they are listed as *refused* so the caller can leave an error file beside them.
The station's own files (error files, sidecars) and in-flight temporary names are not evidence.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from station.inbox.sidecar import SIDECAR_SUFFIXES, is_sidecar_name, sidecar_paths

ERROR_SUFFIX = ".station-error.txt"
DROP_ERROR_NAME = "station-error.txt"
# Names copy tools give a file while it is still being written (renamed when complete).
TEMP_SUFFIXES = (".part", ".partial", ".crdownload", ".tmp", ".filepart", ".!qb")

EntryKind = Literal["file", "symlink", "special", "dir"]


@dataclass(frozen=True)
class Entry:
    rel: str  # path inside the drop ("/"-separated); a file drop's own name
    path: Path
    kind: EntryKind
    size: int = 0
    mtime_ns: int = 0


@dataclass
class DropListing:
    folder: Path
    name: str
    kind: EntryKind  # "dir" for a folder drop, "file" for a single file, else refused
    files: list[Entry] = field(default_factory=list)  # regular files: evidence
    refused: list[Entry] = field(default_factory=list)  # symlinks and special files
    sidecar: Path | None = None
    exists: bool = True

    @property
    def path(self) -> Path:
        return self.folder / self.name

    @property
    def base(self) -> Path:
        """The folder the engine names files relative to."""
        return self.path if self.kind == "dir" else self.folder


def is_station_file(name: str) -> bool:
    """Files the station itself writes or reads beside evidence: never ingested."""
    return name.endswith(ERROR_SUFFIX) or name == DROP_ERROR_NAME or is_sidecar_name(name)


def is_ignored_name(name: str) -> bool:
    """Hidden and in-flight temporary names: left where they are, not evidence yet."""
    return name.startswith(".") or name.lower().endswith(TEMP_SUFFIXES)


def drop_name_for(folder: Path, path: Path) -> str | None:
    """The drop a path inside ``folder`` belongs to (its first component), or None.

    A single-file drop's sidecar ``X.MP4.station.json`` belongs to drop ``X.MP4``.
    """
    try:
        rel = path.relative_to(folder)
    except ValueError:
        return None
    if not rel.parts:
        return None
    first = rel.parts[0]
    if len(rel.parts) == 1:
        for suffix in SIDECAR_SUFFIXES:
            if first.endswith(suffix) and len(first) > len(suffix):
                return first[: -len(suffix)]
        if first.endswith(ERROR_SUFFIX):
            return None
    return first


def _kind(mode: int) -> EntryKind:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    return "special"


def list_drop_names(folder: Path) -> list[str]:
    """Names of the drops in ``folder`` (sorted). Raises OSError if the folder is unreadable."""
    names = []
    with os.scandir(folder) as it:
        for de in it:
            if is_ignored_name(de.name) or is_station_file(de.name):
                continue
            names.append(de.name)
    return sorted(names)


def scan_drop(folder: Path, name: str) -> DropListing:
    """List one drop. Nothing is followed: ``lstat`` and ``scandir`` only."""
    path = folder / name
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return DropListing(folder, name, "file", exists=False)
    kind = _kind(st.st_mode)
    listing = DropListing(folder, name, kind)
    if kind == "file":
        listing.files.append(Entry(name, path, "file", st.st_size, st.st_mtime_ns))
    elif kind == "dir":
        _walk(path, "", listing)
    else:
        listing.refused.append(Entry(name, path, kind, st.st_size, st.st_mtime_ns))
    for candidate in sidecar_paths(path, is_dir=kind == "dir"):
        try:
            if stat.S_ISREG(os.lstat(candidate).st_mode):
                listing.sidecar = candidate
                break
        except FileNotFoundError:
            continue
    return listing


def _walk(directory: Path, prefix: str, listing: DropListing) -> None:
    try:
        entries = sorted(os.scandir(directory), key=lambda d: d.name)
    except FileNotFoundError:
        return
    for de in entries:
        rel = f"{prefix}{de.name}"
        if is_ignored_name(de.name):
            continue
        if not prefix and is_station_file(de.name):
            continue
        if prefix and de.name.endswith(ERROR_SUFFIX):
            continue
        try:
            st = de.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        kind = _kind(st.st_mode)
        entry = Entry(rel, Path(de.path), kind, st.st_size, st.st_mtime_ns)
        if kind == "dir":
            _walk(Path(de.path), rel + "/", listing)
        elif kind == "file":
            listing.files.append(entry)
        else:
            listing.refused.append(entry)
