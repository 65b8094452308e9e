"""R4: devices in service, in repair (送修) or retired, with dated events; R20: gaps on the
recorder (sequence numbers, time line) found per dock session."""

import sqlite_utils

from station.catalog.migrations import execute_script

SCHEMA = """
alter table devices add column service_state text not null default 'in_service'
  check (service_state in ('in_service', 'in_repair', 'retired'));
alter table devices add column service_since text;
create table device_events (
  id integer primary key,
  device_id text not null references devices(device_id),
  event text not null check (event in ('damaged', 'in_repair', 'in_service', 'retired')),
  at text not null,                  -- when it happened (damage noticed, handed in, back)
  note text,
  recorded_at text not null,
  recorded_by text not null
);
create index device_events_device on device_events(device_id, at);
create table sequence_gaps (
  id integer primary key,
  session_id integer references sessions(id),
  device_id text not null,
  kind text not null check (kind in ('sequence', 'timeline')),
  after_seq integer,                 -- last number seen before the gap
  before_seq integer,                -- first number seen after it
  missing integer,                   -- how many numbers are missing
  detail text not null,
  found_at text not null
);
create index sequence_gaps_device on sequence_gaps(device_id, found_at);
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
