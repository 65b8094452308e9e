"""Cases and their recordings (R6, R10, R11, R13). Owned by the cases/retention part; later
migrations 0041–0049 extend it. The disc part reads ``cases`` and ``case_recordings``."""

import sqlite_utils

from station.catalog.migrations import execute_script

SCHEMA = """
create table cases (
  number text primary key,           -- case number; spaces and Chinese allowed
  name text not null,
  cause text,                        -- 案由 (R6)
  party text,                        -- 当事人 (R6)
  unit_id text,
  department text,
  status text not null default 'open' check (status in ('open', 'closed')),
  opened_at text not null,
  closed_at text,                    -- null while open; a reopened case loses it until closed again
  retention_years integer check (retention_years is null or retention_years >= 1),
                                     -- null: the setting retention.case_years (R10)
  long_term_reason integer check (long_term_reason between 1 and 5),   -- R11 reason code
  long_term_note text,
  long_term_at text,
  archive_location text,             -- R13 storage-location slip (where the AV record is filed)
  archived_at text,
  created_by text not null
);
create index cases_status on cases(status, closed_at);
create table case_recordings (
  case_number text not null references cases(number),
  sha256 text not null references recordings(sha256),
  linked_at text not null,
  linked_by text not null,
  primary key (case_number, sha256)
);
create index case_recordings_sha on case_recordings(sha256);
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
