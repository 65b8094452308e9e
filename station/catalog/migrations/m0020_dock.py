"""Dock: device secrets for the recorder challenge–response, alerts, mass-storage ids (R3, R4)."""

import sqlite_utils

from station.catalog.migrations import execute_script

SCHEMA = """
create table device_secrets (
  device_id text primary key references devices(device_id),
  secret_hex text not null,          -- HMAC key shared with the recorder; never sent on the wire
  created_at text not null,
  created_by text not null
);
create table alerts (
  id integer primary key,
  at text not null,
  code text not null,                -- unknown_device | auth_failed | duplicate_id | ...
  device_id text,
  slot text,
  session_id integer references sessions(id),
  message text not null,
  data text not null default '{}',
  acknowledged_at text,
  acknowledged_by text
);
create index alerts_open on alerts(acknowledged_at, at);
alter table devices add column usb_serial text;   -- for mass-storage-only recorders
alter table sessions add column safe_to_undock integer not null default 0;
alter table sessions add column cleared integer not null default 0;
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
