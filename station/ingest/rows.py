"""The catalog row of a newly stored recording (R1, R3, R5, R6): identity, who and what made it,
and its times — the device's wall clock, corrected by the dock session's measured drift."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from station.config import Settings
from station.ingest.media import ext_of, media_kind
from station.ingest.model import IngestContext
from station.ingest.mp4head import EXTENSIONS, movie_header
from station.ingest.names import parse_name
from station.ingest.sources import SourceEntry
from station.ingest.timing import end_and_delay, probe_updates
from station.log import get
from station.timeutil import from_timestamp, local_naive_to_utc, to_iso
from station.vault import Vault

log = get()


class RowBuilder:
    def __init__(
        self,
        vault: Vault,
        settings: Settings,
        ctx: IngestContext,
        session_id: int,
    ) -> None:
        self.vault = vault
        self.settings = settings
        self.ctx = ctx
        self.session_id = session_id
        self.tz = ZoneInfo(settings.station.timezone)

    def times(
        self, entry: SourceEntry, start_naive: dt.datetime | None, ingested_at: str
    ) -> tuple[str | None, str | None, str | None, str, float | None]:
        """Start, end and delay (R1): the start from the file name when it has one, corrected by
        the session's drift; the mtime only when the name has no time. The end is the start
        until the movie header or the probe gives the duration (``station.ingest.timing``)."""
        drift = self.ctx.drift_s or 0.0
        mtime_utc = from_timestamp(entry.mtime)
        if start_naive is not None:
            source = "filename"
            start = local_naive_to_utc(start_naive, self.settings.station.timezone)
            start_corr = start - dt.timedelta(seconds=drift)
        else:
            start_naive = mtime_utc.astimezone(self.tz).replace(tzinfo=None)
            source = "mtime"
            start_corr = mtime_utc - dt.timedelta(seconds=drift)
        end, delay = end_and_delay(start_corr, None, dt.datetime.fromisoformat(ingested_at))
        return (start_naive.isoformat(), to_iso(start_corr), end, source, delay)

    def recording(
        self,
        db: sqlite_utils.Database,
        entry: SourceEntry,
        sha256: str,
        size: int,
        damaged: str | None,
        now: str,
    ) -> dict[str, Any]:
        """The ``recordings`` row of new content, read against ``db`` (the connection whose
        transaction will insert it)."""
        info = parse_name(entry.rel, self.settings.ingest.filename_patterns)
        device = self.ctx.device_id or info.device
        officer = self.ctx.officer_id or info.officer
        if self.ctx.device_id and info.device and info.device != self.ctx.device_id:
            log.warning(
                "ingest.name_device_mismatch",
                path=entry.rel,
                name_device=info.device,
                device=self.ctx.device_id,
            )
        unit = self.ctx.unit_id or self.unit_of(db, device, officer)
        dev_time, start, end, source, delay = self.times(entry, info.start, now)
        ext = ext_of(entry.rel)
        producer = self.officer_name(db, officer)
        row: dict[str, Any] = {
            "sha256": sha256,
            "size": size,
            "ext": ext,
            "media_kind": media_kind(ext),
            "vault_path": str(self.vault.original_path(sha256, ext).relative_to(self.vault.home)),
            "state": "stored",
            "device_id": device,
            "officer_id": officer,
            "unit_id": unit,
            "method": self.ctx.method or f"{self.ctx.kind} ingest",
            "recorded_at_device": dev_time,
            "recorded_at": start,
            "drift_s": self.ctx.drift_s,
            "time_source": source,
            "duration_s": None,
            "end_at": end,
            "original_name": entry.rel.rsplit("/", 1)[-1],
            "original_path": entry.rel,
            "important": int(info.important),
            "sequence": info.seq,
            "first_session_id": self.session_id,
            "ingested_at": now,
            "ingest_delay_s": delay,
            "damaged": int(damaged is not None),
            "damage_reason": damaged,
            "producer": producer or officer,
        }
        if ext in EXTENSIONS:
            # R1: the end from the movie header now, not only when the transcode probe runs
            head = movie_header(self.vault.home / str(row["vault_path"]))
            if head is not None:
                row.update(probe_updates(row, head.duration_s, head.creation_time))
        return row

    def unit_of(
        self, db: sqlite_utils.Database, device: str | None, officer: str | None
    ) -> str | None:
        for sql, key in (
            ("select unit_id from devices where device_id = ?", device),
            ("select unit_id from officers where officer_id = ?", officer),
        ):
            if key:
                row = db.execute(sql, [key]).fetchone()
                if row and row[0]:
                    return str(row[0])
        return None

    def officer_name(self, db: sqlite_utils.Database, officer: str | None) -> str | None:
        if not officer:
            return None
        row = db.execute("select name from officers where officer_id = ?", [officer]).fetchone()
        return f"{row[0]} ({officer})" if row and row[0] else None


AUDITED = (  # the row's fields carried by its ingest audit entry (R7: rows edited later show)
    "size",
    "ext",
    "vault_path",
    "device_id",
    "officer_id",
    "unit_id",
    "recorded_at_device",
    "recorded_at",
    "drift_s",
    "original_path",
    "important",
    "first_session_id",
    "ingested_at",
    "damaged",
)
