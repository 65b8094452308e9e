"""Fleet: a derivative re-made as a new version (new tags, new SHA-256 and file, same row) is
queued for the central store too; the earlier version's object stays, locked like the rest."""

import sqlite_utils

from station.catalog.migrations import execute_script
from station.catalog.migrations.m0110_fleet import ENABLED, NOW

SCHEMA = f"""
create trigger fleet_enqueue_derivative_version after update of sha256, vault_path on derivatives
when new.state = 'done' and new.sha256 is not null and {ENABLED}
begin
  insert or ignore into fleet_objects (key, kind, sha256, recording, rel, size, queued_at)
  values ('archival/' || substr(new.sha256, 1, 2) || '/' || new.sha256, 'derivative',
          new.sha256, new.original_sha256, new.vault_path, new.size, {NOW});
end;
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
