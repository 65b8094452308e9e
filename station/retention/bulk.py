"""Retention decisions over a whole catalog, the plain recordings decided in SQL (R9, R10, R11).

Most recordings have no case link, hold, mark or supervisor's keep ("plain"). A plain stored
recording of a routine category (R9) whose start time is written the station's way
(``YYYY-MM-DDTHH:MM:SS.ffffffZ``) is kept until its start plus the R9 shift of its UTC hour,
which is constant within that hour (``Decider._hour_shift``). When that shift is a whole number
of hours, the end's text is the shifted hour's text followed by the start's minutes, seconds and
fraction: string work SQLite does per row, with one row per UTC hour computed in Python
(``temp.ret_hours``). Texts in that form order like the times they name, so "expired" (the end
at or before ``now``) is a comparison of texts.

Everything else — links, holds, marks, keeps, other time formats, hours whose shift is not whole
hours — goes through ``Decider`` row by row, with its facts loaded only for the recordings that
need them. ``tests/test_retention_fastpath.py`` holds both paths to ``decide()``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator

import sqlite_utils

from station.retention.policy import ROUTINE_CATEGORIES, Decider

# Plain text constants: every routine category is a bare word (R9).
ROUTINE_SQL = "(" + ", ".join(f"'{c}'" for c in sorted(ROUTINE_CATEGORIES)) + ")"
HOUR_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]"
TAIL_GLOB = ":[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z"
_ISO = HOUR_GLOB + TAIL_GLOB

# A stored recording decided in SQL: plain (no link, hold, mark or keep), not marked important,
# a routine category, its start in the station's form in an hour with a whole-hour shift.
# Needs ``r`` (recordings) and ``h`` (temp.ret_hours, left-joined on the start's hour).
FAST = (
    "(r.state = 'stored' and r.sha256 not in temp.ret_extra and r.important = 0"
    f" and typeof(r.size) = 'integer' and r.category in {ROUTINE_SQL}"
    f" and substr(r.recorded_at, 14) glob '{TAIL_GLOB}' and h.until is not null)"
)
KEEP = "(h.until || substr(r.recorded_at, 14))"
# A plain stored recording that no rule lets expire: the important marker, never reviewed
# without a mark, or footage not known to be routine (unclassified, or involving a party, R9).
PLAIN_KEPT = (
    "(r.state = 'stored' and r.sha256 not in temp.ret_extra and ("
    "(typeof(r.important) = 'integer' and r.important <> 0)"
    f" or (r.important = 0 and (r.category is null or r.category not in {ROUTINE_SQL}))))"
)


def canonical(text: str) -> bool:
    """The station's own form of a UTC time (``timeutil.to_iso``)."""
    return len(text) == 27 and text[10] == "T" and text.endswith("Z") and text[19] == "."


def _hours(db: sqlite_utils.Database) -> Iterator[str]:
    """Every UTC hour (``YYYY-MM-DDTHH``) a recording started in, read off the start-time index
    one hour at a time (a seek per hour, not a scan of a million entries)."""
    row = db.execute(
        "select min(recorded_at) from recordings where recorded_at >= '0000'"
    ).fetchone()
    at = row[0] if row else None
    while at is not None:
        hour = at[:13]
        yield hour
        # the least text above every text that starts with ``hour``: its last character + 1
        if hour[-1] == chr(0x10FFFF):
            return
        after = hour[:-1] + chr(ord(hour[-1]) + 1)
        at = db.execute(
            "select min(recorded_at) from recordings where recorded_at >= ?", [after]
        ).fetchone()[0]


def hour_until(decider: Decider, hour: str) -> str | None:
    """The shifted hour's text for a UTC hour whose R9 shift is constant and whole hours, else
    None (then its recordings are decided in Python)."""
    try:
        start = dt.datetime.fromisoformat(hour + ":00:00+00:00")
    except ValueError:
        return None
    if start.isoformat()[:13] != hour:
        return None
    shift = decider._hour_shift(start)
    if shift is None or shift % dt.timedelta(hours=1):
        return None
    try:
        return (start + shift).isoformat()[:13]
    except OverflowError:
        return None


@contextlib.contextmanager
def tables(db: sqlite_utils.Database, decider: Decider, *, kept: bool = False) -> Iterator[None]:
    """The temporary tables the SQL path reads, for as long as the block runs:

    - ``ret_hours(hour, until)``: per UTC hour of a start time, the shifted hour, or null;
    - ``ret_extra(sha256)``: recordings with a link, active hold, mark or supervisor's keep;
    - with ``kept``, ``ret_kept(sha256)``: recordings some rule surely keeps at ``now`` (an
      active hold, a long-term mark, a link to an open or long-term case or to a case kept
      at least four more days by its R10 years — a margin for zones and month ends);
    - ``ret_need(sha256)``: the recordings whose links, holds and marks Python loads at the
      start: ``ret_extra`` less ``ret_kept`` (stored ones in ``ret_kept`` are left out; a
      pending one's are loaded when it comes: ``need_one``)."""
    conn = db.conn
    was_open = conn.in_transaction
    names = ("ret_hours", "ret_extra", "ret_kept", "ret_need")
    for name in names:
        conn.execute(f"drop table if exists temp.{name}")
    conn.execute("create temp table ret_hours (hour text primary key, until text) without rowid")
    conn.execute("create temp table ret_extra (sha256 text primary key) without rowid")
    conn.execute("create temp table ret_kept (sha256 text primary key) without rowid")
    conn.execute("create temp table ret_need (sha256 text primary key) without rowid")
    try:
        pairs = [(h, hour_until(decider, h)) for h in _hours(db)]
        conn.executemany("insert or ignore into temp.ret_hours values (?, ?)", pairs)
        sources = [
            "select sha256 from case_recordings",
            "select sha256 from holds where released_at is null",
            "select sha256 from recording_marks",
        ]
        if "purge_proposals" in db.table_names():
            sources.append(
                "select sha256 from purge_proposals"
                " where state = 'rejected' and kept_until is not null"
            )
        conn.execute("insert or ignore into temp.ret_extra " + " union ".join(sources))
        if kept:
            now = decider.now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            conn.execute(
                "insert or ignore into temp.ret_kept"
                " select sha256 from holds where released_at is null"
                " union select sha256 from recording_marks where long_term_reason is not null"
                " union select l.sha256 from case_recordings l join cases c"
                " on c.number = l.case_number where c.status != 'closed'"
                " or coalesce(c.closed_at, '') = '' or c.long_term_reason is not null"
                f" or (c.closed_at glob '{_ISO}' and c.closed_at >= strftime("
                "'%Y-%m-%dT%H:%M:%SZ', ?, '-' || coalesce(nullif(c.retention_years, 0), ?)"
                " || ' years', '+4 days'))",
                [now, decider.policy.case_years],
            )
        conn.execute(
            "insert or ignore into temp.ret_need"
            " select sha256 from temp.ret_extra except select sha256 from temp.ret_kept"
        )
        if not was_open and conn.in_transaction:
            conn.commit()  # only temporary tables were written
        yield
    finally:
        if conn.in_transaction and not was_open:
            conn.rollback()
        for name in names:
            conn.execute(f"drop table if exists temp.{name}")


NEED = ("select sha256 from temp.ret_need", [])


def need_one(sha: str) -> tuple[str, list[object]]:
    return ("select ?", [sha])


def reason_json(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)
