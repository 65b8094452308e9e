"""Which case numbers a derivative's container tags carry, and its earlier versions (owned by
the archive part, 0140–0149).

A case linked after a derivative was made gets into the derivative's tags by a new derivative
version (station.transcode.retag): same streams re-wrapped with the new tags, its own SHA-256
and file; the row then points at the new version, ``version`` counts up and the superseded
version stays listed in ``derivative_versions`` (hash, size, path, tags) for the discs and
exports that carry it. The original is never touched (R7).
"""

import sqlite_utils

from station.catalog.migrations import execute_script

SCHEMA = """
alter table derivatives add column tagged_cases text;      -- ";"-joined case numbers in its tags
alter table derivatives add column version integer not null default 1;
alter table derivatives add column retag_failed_at text;   -- last failed try; retried later
create table derivative_versions (
  id integer primary key,
  derivative_id integer not null references derivatives(id),
  original_sha256 text not null,
  profile text not null,
  version integer not null,
  sha256 text not null,
  size integer not null,
  vault_path text not null,
  tagged_cases text,
  superseded_at text not null,
  superseded_by text not null,
  unique (derivative_id, version)
);
create index derivative_versions_sha on derivative_versions(sha256);
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
