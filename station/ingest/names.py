"""Metadata from recorder file and folder names (patterns: ``ingest.filename_patterns``).

Patterns are regular expressions with named groups: ``device``, ``officer``, ``start``
(YYYYMMDDhhmmss, the device's wall clock), ``seq`` and ``imp`` (the recorder's important marker).
They are matched against the path relative to the volume root with ``/`` separators; the first
pattern that matches wins.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class NameInfo:
    device: str | None = None
    officer: str | None = None
    start: dt.datetime | None = None  # naive, the device's wall clock
    seq: int | None = None
    important: bool = False
    pattern: int | None = None  # index of the pattern that matched


@lru_cache(maxsize=32)
def _compile(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


def parse_name(rel_path: str, patterns: list[str] | tuple[str, ...]) -> NameInfo:
    for i, rx in enumerate(_compile(tuple(patterns))):
        m = rx.search(rel_path)
        if not m:
            continue
        groups = m.groupdict()
        start = None
        if groups.get("start"):
            try:
                start = dt.datetime.strptime(groups["start"], "%Y%m%d%H%M%S")
            except ValueError:
                start = None  # e.g. month 13: not a time, fall back to mtime
        seq = None
        if groups.get("seq"):
            seq = int(groups["seq"])
        return NameInfo(
            device=groups.get("device") or None,
            officer=groups.get("officer") or None,
            start=start,
            seq=seq,
            important=bool(groups.get("imp")),
            pattern=i,
        )
    return NameInfo()
