"""R6/R14: departments (科室) of footage, officers and accounts (cases have one already)."""

import sqlite_utils

from station.catalog.migrations import execute_script

SCHEMA = """
alter table recordings add column department text;   -- set by a clerk; else derived (R6)
alter table officers add column department text;
alter table users add column department text;         -- null: the whole unit (all departments)
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
