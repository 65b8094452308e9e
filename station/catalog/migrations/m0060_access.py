"""Users and roles, access requests and approvals, views and exports (R8, R14, R15)."""

import sqlite_utils

from station.catalog.migrations import execute_script

SCHEMA = """
create table users (
  name text primary key,
  display_name text,
  role text not null check (role in ('officer', 'clerk', 'supervisor', 'admin')),
  password_hash text not null,       -- scrypt$N$r$p$salt$hash (base64)
  created_at text not null,
  created_by text not null,
  password_changed_at text,
  disabled integer not null default 0
);
create table access_requests (
  id integer primary key,
  purpose text not null check (purpose in ('view', 'export')),
  requested_by text not null references users(name),
  reason text not null check (length(trim(reason)) > 0),   -- R14: why
  recipient text,                    -- R15: who the copy is for (court, reconsideration body)
  created_at text not null,
  state text not null default 'pending',  -- pending | approved | rejected
  decided_by text references users(name),
  decided_at text,
  valid_until text,
  decision_note text
);
create table access_request_items (
  request_id integer not null references access_requests(id),
  sha256 text not null references recordings(sha256),
  primary key (request_id, sha256)
);
create table access_views (
  id integer primary key,
  request_id integer not null references access_requests(id),
  sha256 text not null,
  viewed_by text not null,
  viewed_at text not null
);
create table access_exports (
  id integer primary key,
  request_id integer not null references access_requests(id),
  exported_by text not null,
  exported_at text not null,
  destination text not null,
  files integer not null,
  bytes integer not null,
  manifest_sha256 text not null      -- SHA-256 of the package's manifest.json
);
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
