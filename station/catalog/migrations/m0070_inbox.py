"""The watched inbox: drops seen in inbox folders and what became of each file.

A drop is a folder or a single file put into an inbox folder. ``state``:
settling (files still arriving) | needs_details (no sidecar, waits for ``station inbox assign``)
| held (sidecar invalid, error file beside it) | ingesting | done | partial (some files failed,
each has an error file beside it) | gone (vanished before it was ingested) | refused (a symlink or
special file as the drop itself).
"""

import sqlite_utils

from station.catalog.migrations import execute_script

SCHEMA = """
create table inbox_drops (
  id integer primary key,
  folder text not null,              -- the inbox folder (absolute path)
  name text not null,                -- the drop's name inside it
  kind text not null,                -- folder | file
  state text not null,
  officer_id text,
  device_id text,
  unit_id text,
  case_number text,
  method text,                       -- production method (R5), e.g. camera model
  details_source text,               -- sidecar | assigned
  assigned_by text,
  assigned_at text,
  error text,
  first_seen_at text not null,
  updated_at text not null,
  done_at text,
  session_id integer references sessions(id),
  files_new integer not null default 0,
  files_held integer not null default 0,
  files_failed integer not null default 0,
  files_removed integer not null default 0
);
create index inbox_drops_place on inbox_drops(folder, name, state);
create index inbox_drops_state on inbox_drops(state);
create table inbox_files (
  drop_id integer not null references inbox_drops(id),
  rel text not null,                 -- path inside the drop (the file's own name for file drops)
  size integer,
  mtime_ns integer,
  outcome text not null,             -- new | held | failed | skipped | refused
  sha256 text,
  error text,
  removed integer not null default 0,
  session_id integer,
  at text not null,
  primary key (drop_id, rel)
);
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
