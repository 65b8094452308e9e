"""Core catalog: units, officers, devices, sessions, recordings, sightings (R5, R6, R1, R3)."""

import sqlite_utils

from station.catalog.migrations import execute_script

SCHEMA = """
create table units (
  unit_id text primary key,          -- 12-digit unit number on the recorder (R6)
  name text not null,
  department text
);
create table officers (
  officer_id text primary key,       -- officer (police/enforcement) number, 6 digits on recorders
  name text,
  unit_id text references units(unit_id)
);
create table devices (
  device_id text primary key,        -- recorder serial (7 chars on ZFY recorders)
  model text,
  driver text,
  officer_id text references officers(officer_id),
  unit_id text references units(unit_id),
  enrolled integer not null default 0,
  enrolled_at text,
  enrolled_by text,
  first_seen_at text,
  last_seen_at text,
  note text
);
create table sessions (
  id integer primary key,
  kind text not null,                -- dock | cli | inbox
  slot text,                         -- USB path of the dock slot, or the folder ingested
  device_id text,
  officer_id text,
  unit_id text,
  driver text,
  started_at text not null,
  ended_at text,
  state text not null,               -- running | done | failed | interrupted | refused
  battery_pct integer,               -- R3, null when the recorder cannot tell
  storage_total integer,
  storage_free integer,
  device_clock text,                 -- the device's raw clock as read (naive local time)
  station_clock text,                -- station UTC at the round-trip midpoint
  drift_s real,                      -- device minus station, seconds (R3)
  flags text not null default '[]',  -- JSON list of {code, message}
  message text,
  files_total integer not null default 0,
  files_done integer not null default 0,
  bytes_total integer not null default 0,
  bytes_done integer not null default 0,
  files_new integer not null default 0,
  files_held integer not null default 0,
  files_failed integer not null default 0
);
create table recordings (
  sha256 text primary key,           -- identity: SHA-256 of the original bytes (R7)
  size integer not null,
  ext text not null,
  media_kind text not null,          -- video | audio | image | other
  vault_path text not null,          -- relative to the station home
  state text not null default 'stored',   -- stored | pending_purge | purged
  device_id text,
  officer_id text,
  unit_id text,
  method text,                       -- production method (R5): recorder model / driver
  recorded_at_device text,           -- start time as the device clock said it (naive local)
  recorded_at text,                  -- start time in UTC, corrected by the session drift
  drift_s real,                      -- drift of the dock session that brought it in (R3)
  time_source text,                  -- filename | mtime | sidecar | unknown
  duration_s real,
  end_at text,                       -- recorded_at + duration when known, else the file mtime
  original_name text not null,
  original_path text not null,
  important integer not null default 0,    -- the recorder's important (IMP) marker
  sequence integer,
  first_session_id integer references sessions(id),
  ingested_at text not null,
  ingest_delay_s real,               -- R1: ingest time minus end of recording
  damaged integer not null default 0,
  damage_reason text,
  category text,
  proves text,                       -- what the recording proves (证明对象, R5)
  producer text                      -- producer (R5): officer name/number
);
create index recordings_officer on recordings(officer_id, recorded_at);
create index recordings_device on recordings(device_id, recorded_at);
create index recordings_unit on recordings(unit_id, recorded_at);
create index recordings_time on recordings(recorded_at);
create table sightings (
  id integer primary key,
  session_id integer not null references sessions(id),
  sha256 text,                       -- null when the file failed
  source_path text not null,
  source_size integer,
  source_mtime text,
  outcome text not null,             -- new | held | failed | skipped
  error text,
  at text not null
);
create index sightings_session on sightings(session_id);
create index sightings_sha on sightings(sha256);
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
