"""R11: enforcement activities (执法活动, footage grouped without a party) beside cases, and
several reason codes per long-term mark (JSON lists; the first stays in long_term_reason)."""

import sqlite_utils

from station.catalog.migrations import execute_script

SCHEMA = """
alter table cases add column kind text not null default 'case'
  check (kind in ('case', 'activity'));
alter table cases add column long_term_reasons text;          -- JSON list of 第十四条 items
alter table recording_marks add column long_term_reasons text;
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
