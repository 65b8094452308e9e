"""Tallies the retention report reads instead of deciding a million rows one by one (R9, R10,
R17), kept exact by triggers in the same transaction as every change to a recording or a case
link, whatever writes it (the station, a repair script, the ``sqlite3`` shell).

- ``retention_tally``: recordings with no case link, per (state, important marker, category,
  start hour, time form): count and bytes.
- ``retention_linked``: linked recordings, per (their cases, state, important marker): count,
  bytes, and an upper bound of their start times (never lowered when one leaves: a bound).
- the index ``recordings_ingest_hour`` (ingest hour, ingest time, size) covers the forecast's
  sum of what was ingested in the last 30 days, and the untimed recordings of an hour.

Keys, each computed by the SQL below both in the triggers and wherever a row is looked up
again (``station.retention.tally``):

- the start time ``T`` is ``recorded_at``, or ``ingested_at`` when that is null or empty (as the
  decision takes it); ``form`` 0/1 (recorded/ingested) when ``T`` has the canonical UTC form
  ``YYYY-MM-DDTHH:MM:SS[.fff|.ffffff]Z`` and the key is its hour ``YYYY-MM-DDTHH``; 2/3 for any
  other text, and the key is the whole text;
- the category as ``'=' || category``, or ``''`` for none (unclassified is not an empty name);
- the cases as their numbers in order, joined by char(31);
- the bound ``'~'`` (above every digit) once a member's ``T`` or ``ingested_at`` is not canonical.

A tally row whose count reaches zero is removed. ``station verify`` recounts both against
the tables (``catalog.tally_drift``); the report checks the members it reads one by one against
them and falls back to deciding every row when they disagree.
"""

import sqlite_utils

from station.catalog.migrations import execute_script

_D = "[0-9]"
_HMS = f"{_D}{_D}{_D}{_D}-[0-1]{_D}-[0-3]{_D}T[0-2]{_D}:[0-5]{_D}:[0-5]{_D}"
GLOBS = (f"{_HMS}.{_D * 6}Z", f"{_HMS}Z", f"{_HMS}.{_D * 3}Z")  # the station's own form first


def canon(x: str) -> str:
    """SQL: ``x`` is a canonical UTC time text."""
    return "(" + " or ".join(f"{x} glob '{g}'" for g in GLOBS) + ")"


def untimed(r: str) -> str:
    """SQL: the decision counts from ingest (no recording time)."""
    return f"({r}.recorded_at is null or {r}.recorded_at = '')"


def start(r: str) -> str:
    return f"(case when {untimed(r)} then {r}.ingested_at else {r}.recorded_at end)"


def form(r: str) -> str:
    t = start(r)
    return f"(case when {untimed(r)} then 1 else 0 end + case when {canon(t)} then 0 else 2 end)"


def hour(r: str) -> str:
    t = start(r)
    return f"(case when {canon(t)} then substr({t}, 1, 13) else {t} end)"


def cat(r: str) -> str:
    return f"coalesce('=' || {r}.category, '')"


def bound(r: str) -> str:
    t = start(r)
    return f"(case when {canon(t)} and {canon(r + '.ingested_at')} then {t} else '~' end)"


def links(sha: str, *, without: str | None = None, plus: str | None = None) -> str:
    """SQL: the cases key of recording ``sha`` (null: none): its case numbers in order, joined
    by char(31); ``without`` leaves out the link to that case (after it was inserted), ``plus``
    adds one (after it was deleted)."""
    src = f"select case_number as cn from case_recordings where sha256 = {sha}"
    if without is not None:
        src += f" and case_number is not {without}"
    if plus is not None:
        src += f" union all select {plus}"
    return f"(select group_concat(cn, char(31)) from ({src} order by 1))"


Src = tuple[str, str]  # (extra "from" tables, condition) giving the recording row alias


def _from(src: Src, *tables: str) -> str:
    names = [t for t in (*tables, src[0]) if t]
    return (" from " + ", ".join(names) if names else "") + f" where {src[1]}"


def _unlinked(sha: str, lk: str) -> str:
    """SQL: the recording has no case under cases key ``lk`` (its own links: a cheap probe)."""
    plain = lk == links(sha)
    return (
        f"not exists (select 1 from case_recordings where sha256 = {sha})"
        if plain
        else (f"{lk} is null")
    )


def _plain(r: str, src: Src, lk: str, sign: str) -> str:
    sql = (
        "insert into retention_tally (state, important, cat, hour, form, n, bytes)"
        f" select {r}.state, {r}.important, {cat(r)}, {hour(r)}, {form(r)},"
        f" {sign}1, {sign}{r}.size{_from(src)} and {_unlinked(r + '.sha256', lk)}"
        " on conflict do update set n = n + excluded.n, bytes = bytes + excluded.bytes;\n"
    )
    if sign:  # a row left: drop its tally row once empty
        sql += (
            "delete from retention_tally where n = 0 and bytes = 0 and (state, important, cat,"
            f" hour, form) in (select {r}.state, {r}.important, {cat(r)}, {hour(r)}, {form(r)}"
            f"{_from(src)});\n"
        )
    return sql


def _linked(r: str, src: Src, lk: str, sign: str) -> str:
    if lk == links(f"{r}.sha256"):  # its own links: probe first, concatenate only if any
        probe = f"exists (select 1 from case_recordings where sha256 = {r}.sha256)"
        pick, frm, cond = lk, _from(src), probe
    else:
        pick, frm, cond = "k.lk", _from(src, f"(select {lk} as lk) k"), "k.lk is not null"
    sql = (
        "insert into retention_linked (links, state, important, n, bytes, maxt)"
        f" select {pick}, {r}.state, {r}.important, {sign}1, {sign}{r}.size,"
        f" {bound(r) if not sign else chr(39) + '~' + chr(39)}"
        f"{frm} and {cond}"
        " on conflict do update set n = n + excluded.n, bytes = bytes + excluded.bytes,"
        f" maxt = {'max(maxt, excluded.maxt)' if not sign else 'maxt'};\n"
    )
    if sign:
        sql += (
            "delete from retention_linked where n = 0 and bytes = 0 and (links, state,"
            f" important) in (select k.lk, {r}.state, {r}.important"
            f"{_from(src, f'(select {lk} as lk) k')});\n"
        )
    return sql


def member(r: str, src: Src, lk: str, sign: str) -> str:
    """SQL statements adding (``sign`` '') or removing (``sign`` '-') the recording ``r`` (a row
    alias that ``src`` gives, or a trigger's new/old) under cases key ``lk``."""
    return _plain(r, src, lk, sign) + _linked(r, src, lk, sign)


_ROW: Src = ("", "true")


def _of(sha: str, also: str = "") -> Src:
    return ("recordings r", f"r.sha256 = {sha}{also}")


TRACKED = "sha256, size, state, recorded_at, ingested_at, important, category"
CHANGED = " or ".join(
    f"old.{c} is not new.{c}"
    for c in ("sha256", "size", "state", "recorded_at", "ingested_at", "important", "category")
)
TRIGGERS = (
    "ret_tally_rec_ins",
    "ret_tally_rec_del",
    "ret_tally_rec_upd",
    "ret_tally_link_ins",
    "ret_tally_link_del",
    "ret_tally_link_pre",
    "ret_tally_link_upd",
)


def schema() -> str:
    return f"""
create table retention_tally (
  state text not null,
  important integer not null,
  cat text not null,
  hour text not null,
  form integer not null,
  n integer not null,
  bytes integer not null,
  primary key (state, important, cat, hour, form)
) without rowid;
create table retention_linked (
  links text not null,
  state text not null,
  important integer not null,
  n integer not null,
  bytes integer not null,
  maxt text not null,
  primary key (links, state, important)
) without rowid;
create index recordings_ingest_hour on recordings(substr(ingested_at, 1, 13), ingested_at, size);
create trigger ret_tally_rec_ins after insert on recordings begin
{member("new", _ROW, links("new.sha256"), "")}end;
create trigger ret_tally_rec_del after delete on recordings begin
{member("old", _ROW, links("old.sha256"), "-")}end;
create trigger ret_tally_rec_upd after update of {TRACKED} on recordings when {CHANGED} begin
{member("old", _ROW, links("old.sha256"), "-")}\
{member("new", _ROW, links("new.sha256"), "")}end;
create trigger ret_tally_link_ins after insert on case_recordings begin
{member("r", _of("new.sha256"), links("new.sha256", without="new.case_number"), "-")}\
{member("r", _of("new.sha256"), links("new.sha256"), "")}end;
create trigger ret_tally_link_del after delete on case_recordings begin
{member("r", _of("old.sha256"), links("old.sha256", plus="old.case_number"), "-")}\
{member("r", _of("old.sha256"), links("old.sha256"), "")}end;
create trigger ret_tally_link_pre before update of case_number, sha256 on case_recordings begin
{member("r", _of("old.sha256"), links("old.sha256"), "-")}\
{member("r", _of("new.sha256", " and new.sha256 is not old.sha256"), links("new.sha256"), "-")}\
end;
create trigger ret_tally_link_upd after update of case_number, sha256 on case_recordings begin
{member("r", _of("old.sha256"), links("old.sha256"), "")}\
{member("r", _of("new.sha256", " and new.sha256 is not old.sha256"), links("new.sha256"), "")}\
end;
"""


def recount_sql() -> tuple[str, str]:
    """SQL selects giving each tally from the tables themselves (the migration's fill, and
    ``verify``'s recount)."""
    plain = (
        f"select r.state, r.important, {cat('r')}, {hour('r')}, {form('r')}, count(*),"
        " sum(r.size) from recordings r"
        " where not exists (select 1 from case_recordings l where l.sha256 = r.sha256)"
        " group by 1, 2, 3, 4, 5"
    )
    linked = (
        "select lk, state, important, count(*), sum(size), max(b) from"
        f" (select {links('r.sha256')} as lk, r.state, r.important, r.size, {bound('r')} as b"
        " from (select distinct sha256 from case_recordings) g"
        " cross join recordings r on r.sha256 = g.sha256) group by 1, 2, 3"
    )
    return plain, linked


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, schema())
    plain, linked = recount_sql()
    db.execute("insert into retention_tally " + plain)
    db.execute("insert into retention_linked " + linked)
