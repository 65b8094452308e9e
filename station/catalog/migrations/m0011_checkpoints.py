"""Signed audit checkpoints (R7): tree size, root hash, time, the signed note. Append-only."""

import sqlite_utils

from station.catalog.migrations import execute_script

SCHEMA = """
create table audit_checkpoints (
  id integer primary key,
  size integer not null,             -- number of audit entries covered
  root_hash text not null,           -- RFC 6962 root of the first `size` entries, hex
  made_at text not null,
  key_id text not null,              -- 4-byte key hash of the signing key, hex
  note text not null                 -- the C2SP signed note, exactly as signed
);
create index audit_checkpoints_size on audit_checkpoints(size);
create trigger audit_checkpoints_no_update before update on audit_checkpoints
begin select raise(abort, 'audit_checkpoints is append-only (R7): update refused'); end;
create trigger audit_checkpoints_no_delete before delete on audit_checkpoints
begin select raise(abort, 'audit_checkpoints is append-only (R7): delete refused'); end;
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
