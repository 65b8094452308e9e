"""Archival derivatives (R7: a derivative is a new file linked to its original, with its own
hash). Owned by the transcode part; later migrations 0031–0039 extend it."""

import sqlite_utils

from station.catalog.migrations import execute_script

SCHEMA = """
create table derivatives (
  id integer primary key,
  original_sha256 text not null references recordings(sha256),
  profile text not null,             -- mp4-h264 | ffv1-mkv
  sha256 text,                       -- the derivative's own SHA-256
  size integer,
  ext text,
  vault_path text,                   -- relative to the station home
  state text not null,               -- queued | running | done | failed | purged
  partial integer not null default 0,      -- salvage of a damaged original
  ffmpeg_version text,
  command text,                      -- the exact command line, JSON list
  verification text,                 -- JSON: method and result
  error text,
  created_at text not null,
  finished_at text,
  unique (original_sha256, profile)
);
create index derivatives_state on derivatives(state);
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
