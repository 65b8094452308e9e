"""Archive numbers (档号) and the 保管期限 they were given (owned by the archive part, 0140–0149).

One row per archived thing, keyed by what is archived (``kind`` + ``subject``): a case
(``case``/number), a recording inside a case (``case-item``/"<case number>/<sha256>"), a
recording archived on its own (``recording``/sha256); an enforcement activity can use its own
kind later. A number is unique and never reused (DA/T 13-2022 §4.1, §4.3): triggers refuse to
delete a row or to change its number, so a number once given stays taken even if its case is
gone.
"""

import sqlite_utils

from station.catalog.migrations import execute_script

SCHEMA = """
create table archive_numbers (
  id integer primary key,
  archive_number text not null unique,     -- 档号
  kind text not null,                      -- case | case-item | recording | (activity …)
  subject text not null,                   -- case number, "<case>/<sha256>", sha256 …
  parent text,                             -- 档号 of the case a case-item belongs to
  series text not null,                    -- the number with its item left out: the 件号 run
  item integer not null check (item >= 1), -- 件号 within the series
  fonds text not null,                     -- 全宗号
  year integer not null,                   -- 年度
  retention_code text not null,            -- 保管期限代码 (Y, D30, D10, C, D, D5 …)
  retention_words text not null,           -- 保管期限 (永久, 定期30年 …)
  retention_years integer,                 -- the station's period; null: without end
  retention_rule text not null,            -- the station's rule (R11-case, R10 …)
  pattern text not null,                   -- the pattern the number was made with
  assigned_at text not null,
  assigned_by text not null,
  unique (kind, subject),
  unique (series, item)
);
create index archive_numbers_parent on archive_numbers(parent);
create trigger archive_numbers_no_delete before delete on archive_numbers
begin
  select raise(abort, 'archive numbers are never removed / 档号不得删除');
end;
create trigger archive_numbers_no_renumber before update of archive_number, kind, subject,
  series, item on archive_numbers
begin
  select raise(abort, 'an archive number never changes / 档号一经确定不得更改');
end;
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
