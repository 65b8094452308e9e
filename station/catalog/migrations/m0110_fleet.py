"""Fleet (R19): the durable queue of objects for the central store, the outbox of catalog
changes for the central PostgreSQL, and the record of central copies removed after a purge.

Triggers fill both queues in the same transaction as the change itself, so nothing committed
can be missed by a crash. They fire only once enabled — the object queue with a store configured
(``fleet_state.enabled``), the outbox with a central database (``fleet_state.central``); the
first ``station fleet sync`` enables them and enqueues everything that existed before.
Changes that can move an object's retention or hold (case links, cases, holds, marks, a purge)
flag the object's lock for a fresh decision (``lock_dirty``).
"""

import sqlite_utils

from station.catalog.migrations import execute_script

ENABLED = "exists (select 1 from fleet_state where name = 'enabled' and value = '1')"
CENTRAL = "exists (select 1 from fleet_state where name = 'central' and value = '1')"
NOW = "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

# Catalog tables mirrored to the central database, with their primary key columns.
MIRRORED: dict[str, tuple[str, ...]] = {
    "sessions": ("id",),
    "recordings": ("sha256",),
    "derivatives": ("id",),
    "cases": ("number",),
    "case_recordings": ("case_number", "sha256"),
    "holds": ("id",),
    "recording_marks": ("sha256",),
    "audit_log": ("seq",),
    "audit_checkpoints": ("id",),
    "tombstones": ("sha256",),
    "fleet_objects": ("key",),
    "fleet_central_purges": ("key",),
}

SCHEMA = f"""
create table fleet_state (
  name text primary key,
  value text
);
create table fleet_objects (
  key text primary key,              -- object key in the bucket, content-addressed
  kind text not null,                -- original | derivative | checkpoint
  sha256 text,                       -- SHA-256 of the object's bytes (checkpoints: set on upload)
  recording text,                    -- the original's SHA-256 (originals and derivatives)
  rel text,                          -- local file, relative to the station home (not checkpoints)
  checkpoint_id integer,             -- audit_checkpoints.id for checkpoints
  size integer,
  state text not null default 'queued',   -- queued | confirmed | deleted | released | dropped
  version_id text,                   -- the confirmed object version
  etag text,                         -- confirmed ETag (MD5, or MD5 of part MD5s - parts)
  upload_id text,                    -- multipart upload in flight (resumed after a failure)
  part_size integer,
  retain_until text,                 -- COMPLIANCE retention as read back from the store
  legal_hold integer not null default 0,  -- legal hold as read back from the store
  lock_dirty integer not null default 1,  -- retention/hold/purge to decide again
  lock_renew_at text,                -- rolling retention of keep-without-end rules: renew then
  attempts integer not null default 0,
  next_try_at text,                  -- back-off: not before this time
  error text,
  queued_at text not null,
  confirmed_at text,
  freed_at text,                     -- the local copy was removed (fleet.free_local_after_days)
  deleted_at text                    -- the central copy was removed after a purge
);
create index fleet_objects_queue on fleet_objects(state, next_try_at);
create index fleet_objects_recording on fleet_objects(recording);
create index fleet_objects_dirty on fleet_objects(lock_dirty) where lock_dirty = 1;
create index fleet_objects_renew on fleet_objects(lock_renew_at) where lock_renew_at is not null;
create table fleet_outbox (
  id integer primary key autoincrement,
  tbl text not null,
  pk text not null                   -- JSON array of the row's primary key values
);
create table fleet_central_purges (
  key text primary key,              -- the object removed from the central store
  recording text not null,
  kind text not null,
  version_id text,
  retain_until text,
  deleted_at text not null,
  deleted_by text not null
);
create trigger fleet_central_purges_no_update before update on fleet_central_purges
begin select raise(abort, 'fleet_central_purges is kept forever (R9): update refused'); end;
create trigger fleet_central_purges_no_delete before delete on fleet_central_purges
begin select raise(abort, 'fleet_central_purges is kept forever (R9): delete refused'); end;

create trigger fleet_enqueue_original after insert on recordings when {ENABLED}
begin
  insert or ignore into fleet_objects (key, kind, sha256, recording, rel, size, queued_at)
  values ('originals/' || substr(new.sha256, 1, 2) || '/' || new.sha256, 'original',
          new.sha256, new.sha256, new.vault_path, new.size, {NOW});
end;
create trigger fleet_enqueue_derivative_ins after insert on derivatives
when new.state = 'done' and new.sha256 is not null and {ENABLED}
begin
  insert or ignore into fleet_objects (key, kind, sha256, recording, rel, size, queued_at)
  values ('archival/' || substr(new.sha256, 1, 2) || '/' || new.sha256, 'derivative',
          new.sha256, new.original_sha256, new.vault_path, new.size, {NOW});
end;
create trigger fleet_enqueue_derivative_upd after update of state on derivatives
when new.state = 'done' and new.sha256 is not null and {ENABLED}
begin
  insert or ignore into fleet_objects (key, kind, sha256, recording, rel, size, queued_at)
  values ('archival/' || substr(new.sha256, 1, 2) || '/' || new.sha256, 'derivative',
          new.sha256, new.original_sha256, new.vault_path, new.size, {NOW});
end;
create trigger fleet_enqueue_checkpoint after insert on audit_checkpoints when {ENABLED}
begin
  insert or ignore into fleet_objects (key, kind, checkpoint_id, queued_at)
  values ('checkpoints/' || new.key_id || '/' || printf('%012d', new.size) || '-'
          || new.root_hash, 'checkpoint', new.id, {NOW});
end;

create trigger fleet_lock_link after insert on case_recordings
begin update fleet_objects set lock_dirty = 1 where recording = new.sha256; end;
create trigger fleet_lock_unlink after delete on case_recordings
begin update fleet_objects set lock_dirty = 1 where recording = old.sha256; end;
create trigger fleet_lock_case after update on cases
begin
  update fleet_objects set lock_dirty = 1 where recording in
    (select sha256 from case_recordings where case_number = new.number);
end;
create trigger fleet_lock_hold after insert on holds
begin update fleet_objects set lock_dirty = 1 where recording = new.sha256; end;
create trigger fleet_lock_hold_upd after update on holds
begin update fleet_objects set lock_dirty = 1 where recording = new.sha256; end;
create trigger fleet_lock_mark after insert on recording_marks
begin update fleet_objects set lock_dirty = 1 where recording = new.sha256; end;
create trigger fleet_lock_mark_upd after update on recording_marks
begin update fleet_objects set lock_dirty = 1 where recording = new.sha256; end;
create trigger fleet_lock_state after update of state on recordings
begin update fleet_objects set lock_dirty = 1 where recording = new.sha256; end;
"""


def _outbox_triggers() -> str:
    sql = []
    for table, pk in MIRRORED.items():
        for op, row in (("insert", "new"), ("update", "new"), ("delete", "old")):
            key = ", ".join(f"{row}.{c}" for c in pk)
            sql.append(
                f"create trigger fleet_outbox_{table}_{op} after {op} on {table} when {CENTRAL}\n"
                f"begin insert into fleet_outbox (tbl, pk) values ('{table}', json_array({key}));"
                " end;"
            )
    return "\n".join(sql) + "\n"


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
    execute_script(db, _outbox_triggers())
