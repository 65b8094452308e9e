"""Spot checks and the inspection ledger (R16). Draws and results are append-only."""

import sqlite_utils

from station.catalog.migrations import execute_script

SCHEMA = """
create table spotcheck_draws (
  id integer primary key,
  drawn_by text not null,
  drawn_at text not null,
  seed text not null,                -- with the population, reproduces the draw
  n integer not null,
  population integer not null,       -- how many recordings could be drawn
  population_sha256 text not null,   -- SHA-256 of the sorted population, one hash a line
  filters text not null default '{}'
);
create table spotcheck_items (
  id integer primary key,
  draw_id integer not null references spotcheck_draws(id),
  position integer not null,
  sha256 text not null references recordings(sha256),
  unique (draw_id, sha256)
);
create table spotcheck_results (
  id integer primary key,
  item_id integer not null references spotcheck_items(id),
  result text not null check (result in ('ok', 'problem', 'unplayable')),
  note text,
  checked_by text not null,
  checked_at text not null
);
create index spotcheck_results_item on spotcheck_results(item_id);
create trigger spotcheck_draws_no_update before update on spotcheck_draws
begin select raise(abort, 'the spot-check ledger is append-only (R16)'); end;
create trigger spotcheck_draws_no_delete before delete on spotcheck_draws
begin select raise(abort, 'the spot-check ledger is append-only (R16)'); end;
create trigger spotcheck_items_no_update before update on spotcheck_items
begin select raise(abort, 'the spot-check ledger is append-only (R16)'); end;
create trigger spotcheck_items_no_delete before delete on spotcheck_items
begin select raise(abort, 'the spot-check ledger is append-only (R16)'); end;
create trigger spotcheck_results_no_update before update on spotcheck_results
begin select raise(abort, 'the spot-check ledger is append-only (R16)'); end;
create trigger spotcheck_results_no_delete before delete on spotcheck_results
begin select raise(abort, 'the spot-check ledger is append-only (R16)'); end;
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
