"""Checkpoints keep the tree's compact range and the last entry's hash, so the next checkpoint
hashes only the entries appended since (R7). Not signed: a wrong value can only make the next
checkpoint disagree with the log, which the full verify reports."""

import sqlite_utils

from station.catalog.migrations import execute_script

SCHEMA = """
alter table audit_checkpoints add column frontier text;        -- JSON [[height, hex], ...]
alter table audit_checkpoints add column last_entry_hash text;  -- entry_hash of entry `size`
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
