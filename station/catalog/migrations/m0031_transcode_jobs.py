"""Transcode job queue columns on ``derivatives`` (owned by the transcode part).

A derivatives row is both the job and, once done, the link from the original to its archival
copy (R7). ``attempts``/``next_try_at`` give retries with back-off; ``claimed_by`` (host:pid) lets
a restarted station re-queue a job whose worker died ("running" with a dead pid).
"""

import sqlite_utils

from station.catalog.migrations import execute_script

SCHEMA = """
alter table derivatives add column attempts integer not null default 0;
alter table derivatives add column next_try_at text;
alter table derivatives add column started_at text;
alter table derivatives add column claimed_by text;
alter table derivatives add column method text;          -- rewrap | reencode | ffv1
alter table derivatives add column failure text;         -- damaged | tool | verify | full | stopped
create index derivatives_due on derivatives(state, next_try_at);
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
