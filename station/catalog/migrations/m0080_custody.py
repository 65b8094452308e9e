"""Custody: the live owner of each session, and the clearing step of each session
(DESIGN.md invariants 2 and 8).

``sessions.owner`` names the staging owner (``staging/<owner>/``, flock-ed while the run lives);
start-up recovery closes a running session only when its owner is dead. ``sessions.clearing`` is
null (nothing to clear), ``intent`` (the intent to delete files on the recorder or in the inbox is
audited, the results not yet), ``done``, or ``interrupted`` (its owner died between the two).
"""

import sqlite_utils

from station.catalog.migrations import execute_script

SCHEMA = """
alter table sessions add column owner text;
alter table sessions add column clearing text;
create index sessions_running on sessions(state) where state = 'running';
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
