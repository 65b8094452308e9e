"""When a recording ended and how late it was handed in (R1, R2, R21) — pure functions.

Invariants:

* the start comes from the recorder's file name (its wall clock, corrected by the dock
  session's drift), else from the container's creation time, else — last resort — the file's
  mtime; a file's mtime alone never makes footage look fresh when its name says otherwise
  (copies, card readers and the inbox all give fresh mtimes);
* end = start + the duration: for MP4/MOV from the movie header at ingest
  (``station.ingest.mp4head``), else from the transcode probe; until one of them gave it, the
  end is the start (the delay is then overstated by at most the clip's length, never
  understated);
* the delay is ``ingested_at − end`` and is stored with the end, by ``end_and_delay`` only, at
  ingest and again when the probe runs, so the hours rule (R1) and the working-days rule (R2)
  both read one end time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from station.timeutil import to_iso

# Time sources whose start the container's creation time may replace.
WEAK_SOURCES = frozenset({"mtime", "unknown", None})


def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def end_and_delay(
    start: dt.datetime, duration_s: float | None, ingested_at: dt.datetime
) -> tuple[str, float]:
    """The end (ISO) and the ingest delay in seconds (R1)."""
    end = start + dt.timedelta(seconds=duration_s or 0.0)
    return to_iso(end), round((ingested_at - end).total_seconds(), 3)


def probe_updates(
    row: Mapping[str, Any], duration_s: float | None, creation_time: dt.datetime | None
) -> dict[str, Any]:
    """The recording's time fields after a probe: start from the container when the name had
    none, end from start + duration, delay from ingest − end. Only changed fields are returned."""
    updates: dict[str, Any] = {}
    start_text = row.get("recorded_at")
    source = row.get("time_source")
    if creation_time is not None and source in WEAK_SOURCES:
        drift = float(row.get("drift_s") or 0.0)
        start = creation_time.astimezone(dt.UTC) - dt.timedelta(seconds=drift)
        updates["recorded_at"] = to_iso(start)
        updates["time_source"] = "container"
    elif start_text:
        start = _parse(str(start_text))
    else:
        return {}
    if duration_s:
        updates["duration_s"] = round(duration_s, 3)
    ingested = row.get("ingested_at")
    if ingested:
        end, delay = end_and_delay(start, duration_s, _parse(str(ingested)))
        updates["end_at"] = end
        updates["ingest_delay_s"] = delay
    return {k: v for k, v in updates.items() if row.get(k) != v}
