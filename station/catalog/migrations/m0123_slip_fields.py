"""R13: the content of sound recordings (录音内容) for the storage-location slip."""

import sqlite_utils

from station.catalog.migrations import execute_script

SCHEMA = """
alter table recordings add column sound_content text;   -- what is said/heard, for the slip (R13)
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
