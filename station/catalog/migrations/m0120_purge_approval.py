"""R9: purge proposals a supervisor approves or rejects; tombstones name the approver."""

import sqlite_utils

from station.catalog.migrations import execute_script

SCHEMA = """
create table purge_proposals (
  id integer primary key,
  sha256 text not null references recordings(sha256),
  run_id integer,                    -- the retention run that proposed it
  rule text not null,
  reason text not null,
  keep_until text,
  size integer,
  proposed_at text not null,
  state text not null check (state in ('proposed', 'approved', 'pended', 'rejected',
                                       'withdrawn')),
  decided_at text,
  decided_by text,                   -- the supervisor who approved or rejected
  decision_reason text,
  kept_until text,                   -- rejected: kept until this time, then proposed again
  pended_at text                     -- approved and moved to pending purge
);
create index purge_proposals_sha on purge_proposals(sha256, id);
create index purge_proposals_state on purge_proposals(state);
alter table tombstones add column approved_by text;
alter table tombstones add column approved_at text;
alter table tombstones add column approval_reason text;
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
