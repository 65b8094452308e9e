"""R21 remote/continuous duty notes and R18 stop-recording notes."""

import sqlite_utils

from station.catalog.migrations import execute_script

SCHEMA = """
create table duty_notes (
  id integer primary key,
  officer_id text,                   -- per officer: footage of this officer in the span
  session_id integer references sessions(id),  -- or per dock/inbox session
  kind text not null check (kind in ('remote', 'continuous')),
  from_at text,                      -- null: open start (any footage ending before the return)
  until_at text not null,            -- the return: deadline is 24 h after it (R21)
  note text not null,
  created_at text not null,
  created_by text not null,
  check (officer_id is not null or session_id is not null)
);
create index duty_notes_officer on duty_notes(officer_id, until_at);
create table stop_notes (
  id integer primary key,
  officer_id text not null,
  device_id text,
  session_id integer references sessions(id),
  stopped_at text not null,          -- when the recorder was stopped (UTC)
  resumed_at text,                   -- when recording resumed, null if it did not that day
  situation integer not null check (situation between 1 and 4),  -- 002 附件1 第十六条
  reason text not null,              -- the work record: why, and on what basis
  recorded_at text not null,
  recorded_by text not null,
  state text not null default 'submitted' check (state in ('submitted', 'approved',
                                                           'rejected')),
  decided_at text,
  decided_by text,                   -- the head (主要领导) who reviewed it
  decision_note text
);
create index stop_notes_officer on stop_notes(officer_id, stopped_at);
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
