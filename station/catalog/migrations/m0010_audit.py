"""Audit log: append-only, hash-chained; triggers refuse UPDATE and DELETE (R7)."""

import sqlite_utils

from station.catalog.migrations import execute_script

SCHEMA = """
create table audit_log (
  seq integer primary key,
  at text not null,
  actor text not null,
  event text not null,
  subject text,
  data text not null,
  prev_hash text not null,
  entry_hash text not null
);
create index audit_subject on audit_log(subject);
create trigger audit_log_no_update before update on audit_log
begin select raise(abort, 'audit_log is append-only (R7): update refused'); end;
create trigger audit_log_no_delete before delete on audit_log
begin select raise(abort, 'audit_log is append-only (R7): delete refused'); end;
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
