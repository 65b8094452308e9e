"""R4: devices are inspected from time to time — ``inspected`` joins the dated device events
(the table is rebuilt: SQLite cannot change a CHECK constraint in place; rows and ids kept)."""

import sqlite_utils

from station.catalog.migrations import execute_script

SCHEMA = """
create table device_events_new (
  id integer primary key,
  device_id text not null references devices(device_id),
  event text not null
    check (event in ('damaged', 'inspected', 'in_repair', 'in_service', 'retired')),
  at text not null,                  -- when it happened (damage noticed, inspected, handed in)
  note text,                         -- for an inspection: its result and what was checked
  recorded_at text not null,
  recorded_by text not null
);
insert into device_events_new (id, device_id, event, at, note, recorded_at, recorded_by)
  select id, device_id, event, at, note, recorded_at, recorded_by from device_events;
drop table device_events;
alter table device_events_new rename to device_events;
create index device_events_device on device_events(device_id, at);
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
