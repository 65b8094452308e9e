"""Retention: per-recording marks, legal holds, the purge pipeline and tombstones (R9, R10, R11).

Tombstones are kept forever: triggers refuse UPDATE and DELETE, like the audit log (R7, R9).
"""

import sqlite_utils

from station.catalog.migrations import execute_script

SCHEMA = """
create table recording_marks (
  sha256 text primary key references recordings(sha256),
  long_term_reason integer check (long_term_reason between 1 and 5),   -- R11 on a recording
  long_term_note text,
  long_term_at text,
  long_term_by text,
  reviewed_at text,                  -- the recorder's important (IMP) marker reviewed by a clerk
  reviewed_by text
);
create table holds (
  id integer primary key,
  sha256 text not null references recordings(sha256),
  reason text not null,
  placed_at text not null,
  placed_by text not null,
  released_at text,
  released_by text,
  release_note text
);
create index holds_active on holds(sha256) where released_at is null;
create table retention_runs (
  id integer primary key,
  as_of text not null,               -- the run's "now" (decisions are made as of this time)
  started_at text not null,
  finished_at text,
  actor text not null,
  state text not null,               -- running | done | failed | interrupted
  pending integer not null default 0,
  purged integer not null default 0,
  restored integer not null default 0,
  problems integer not null default 0,
  message text
);
create table retention_items (
  sha256 text primary key references recordings(sha256),
  state text not null,               -- pending | purged | restored
  rule text not null,
  reason text not null,
  keep_until text,
  pending_at text,                   -- as_of of the run that moved it
  purge_after text,                  -- pending_at + retention.grace_days
  run_id integer references retention_runs(id),
  files text not null,               -- JSON list of {kind, id, rel, sha256, size}
  problem text,                      -- last problem met (missing, changed), null when none
  problem_at text,
  updated_at text not null
);
create index retention_items_state on retention_items(state, purge_after);
create table tombstones (
  sha256 text primary key,
  size integer not null,
  ext text,
  tags text not null,                -- JSON: unit, department, device, officer, cases, category…
  rule text not null,
  reason text not null,
  keep_until text,
  recorded_at text,
  ingested_at text,
  pending_at text,
  purged_at text not null,
  purged_by text not null,
  run_id integer,
  derivatives text not null          -- JSON list of {id, profile, sha256, size}
);
create trigger tombstones_no_update before update on tombstones
begin select raise(abort, 'tombstones are kept forever (R9): update refused'); end;
create trigger tombstones_no_delete before delete on tombstones
begin select raise(abort, 'tombstones are kept forever (R9): delete refused'); end;
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
