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
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import sqlite_utils

from station.retention.policy import ROUTINE_CATEGORIES, Decider

# Plain text constants: every routine category is a bare word (R9).
ROUTINE_SQL = "(" + ", ".join(f"'{c}'" for c in sorted(ROUTINE_CATEGORIES)) + ")"
HOUR_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]"
TAIL_GLOB = ":[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z"
_ISO = HOUR_GLOB + TAIL_GLOB

# The join that gives a recording ``r`` its hour ``h`` when its start is in the station's form.
HOUR_JOIN = (
    "left join temp.ret_hours h on h.hour = substr(r.recorded_at, 1, 13)"
    f" and substr(r.recorded_at, 14) glob '{TAIL_GLOB}'"
)
# A stored recording whose R9 end SQL can write: its start in the station's form, in an hour
# with a whole-hour shift. R9 is the floor of every dated rule, so such a recording whose R9 end
# lies after ``now`` is not expired, whatever its links, holds or marks.
TIMED = "(r.state = 'stored' and h.until is not null)"
KEEP = "(h.until || substr(r.recorded_at, 14))"


# ``cli.PlanWriter.item``'s text of a pending item decided by R9 in SQL, field for field: hashes
# and ISO times need no escaping, the reason is bound as its JSON text (``reason_json``).
PEND_JSON = (
    """'{"sha256": "' || r.sha256 || '", "size": ' || r.size || ', "rule": "R9",'"""
    """ || ' "reason": ' || ? || ', "keep_until": "' || """
    + KEEP
    + """ || '", "action": "pend", "purge_after": null}'"""
)


def after(now_text: str) -> tuple[str, list[object]]:
    """``KEEP > now_text`` without building ``KEEP`` (texts of one form compare piecewise)."""
    return (
        "(h.until > ? or (h.until = ? and substr(r.recorded_at, 14) > ?))",
        [now_text[:13], now_text[:13], now_text[13:]],
    )


# A ``TIMED`` recording decided by R9 alone if it is also plain (no link, hold, mark or keep:
# checked in Python, ``Marked.extra``), not marked important, of a routine category, with an
# integer size.
ROUTINE = (
    f"({TIMED} and r.important = 0 and typeof(r.size) = 'integer' and r.category in {ROUTINE_SQL})"
)
# A stored recording that, if plain, no rule lets expire: the important marker (never reviewed
# without a mark), or footage not known to be routine (unclassified, or involving a party, R9).
NEVER_IF_PLAIN = (
    "(r.state = 'stored' and ((typeof(r.important) = 'integer' and r.important <> 0)"
    f" or (r.important = 0 and (r.category is null or r.category not in {ROUTINE_SQL}))))"
)


# Up to this many hours (four years) between the first start and the last one needed are all
# computed (a few µs each) rather than looked up in the start-time index one by one: from a cold
# page cache, 17,000 seeks there cost seconds.
SPAN_HOURS = 4 * 366 * 24


def _hours(db: sqlite_utils.Database, before: str | None = None) -> Iterator[str]:
    """The UTC hours (``YYYY-MM-DDTHH``) recordings started in, up to ``before`` (an ISO time;
    none: all): every hour between the first and the last if there are at most ``SPAN_HOURS``,
    else only those found in the start-time index (a seek per hour). Texts not in ISO form get
    no hour; their recordings are decided in Python."""
    bound = f"recorded_at >= '0000' and recorded_at < '{before or '~'}'"
    first, last = db.execute(
        f"select min(recorded_at), max(recorded_at) from recordings where {bound}"
    ).fetchone()
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    try:
        start = dt.datetime.fromisoformat(first[:13] + ":00:00+00:00")
        end = dt.datetime.fromisoformat(last[:13] + ":00:00+00:00")
    except (TypeError, ValueError):
        pass
    if start is not None and end is not None and end - start <= dt.timedelta(hours=SPAN_HOURS):
        hour = dt.timedelta(hours=1)
        while start <= end:
            yield start.isoformat()[:13]
            start += hour
        return
    at = first
    while at is not None and at < (before or "~"):
        hour_text = at[:13]
        yield hour_text
        if hour_text[-1] == chr(0x10FFFF):
            return
        # the least text above every text that starts with ``hour_text``: last character + 1
        after = hour_text[:-1] + chr(ord(hour_text[-1]) + 1)
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


class Marked(NamedTuple):
    extra: set[str]  # recordings with a link, an active hold, a mark or a supervisor's keep
    kept: set[str]  # those some rule surely keeps at ``now`` (``marked(kept=True)``)


def marked(db: sqlite_utils.Database, decider: Decider, *, kept: bool = False) -> Marked:
    """The recordings that are not plain, and with ``kept`` those a rule surely keeps at
    ``now``: an active hold, a long-term mark (R11), a link to an open or long-term case
    (R10, R11) or to a case its R10 years keep at least four more days (a margin for zones,
    month ends and leap days, judged in SQL on the case's closing time)."""
    extra: set[str] = set()
    keep: set[str] = set()
    keeping: set[str] = set()
    if kept:
        now = decider.now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        keeping = {
            number
            for (number,) in db.execute(
                "select number from cases where status != 'closed'"
                " or coalesce(closed_at, '') = '' or long_term_reason is not null"
                f" or (closed_at glob '{_ISO}' and closed_at >= strftime('%Y-%m-%dT%H:%M:%SZ',"
                " ?, '-' || coalesce(nullif(retention_years, 0), ?) || ' years', '+4 days'))",
                [now, decider.policy.case_years],
            )
        }
    add, hold = extra.add, keep.add
    for number, sha in db.execute("select case_number, sha256 from case_recordings"):
        add(sha)
        if number in keeping:
            hold(sha)
    for (sha,) in db.execute("select sha256 from holds where released_at is null"):
        add(sha)
        if kept:
            hold(sha)
    for sha, reason in db.execute("select sha256, long_term_reason from recording_marks"):
        add(sha)
        if kept and reason is not None:
            hold(sha)
    if "purge_proposals" in db.table_names():
        extra.update(
            sha
            for (sha,) in db.execute(
                "select sha256 from purge_proposals"
                " where state = 'rejected' and kept_until is not null"
            )
        )
    return Marked(extra, keep)


@contextlib.contextmanager
def hours_table(
    db: sqlite_utils.Database, decider: Decider, before: str | None = None
) -> Iterator[None]:
    """``temp.ret_hours(hour, until)`` for as long as the block runs: per UTC hour a recording
    started in (before ``before``, an ISO time), the shifted hour (``hour_until``) or null."""
    conn = db.conn
    was_open = conn.in_transaction
    conn.execute("drop table if exists temp.ret_hours")
    conn.execute("create temp table ret_hours (hour text primary key, until text) without rowid")
    try:
        pairs = [(h, hour_until(decider, h)) for h in _hours(db, before)]
        conn.executemany("insert or ignore into temp.ret_hours values (?, ?)", pairs)
        if not was_open and conn.in_transaction:
            conn.commit()  # only the temporary table was written
        yield
    finally:
        if conn.in_transaction and not was_open:
            conn.rollback()
        conn.execute("drop table if exists temp.ret_hours")


def need(shas: Iterable[str]) -> tuple[str, list[object]]:
    """``facts.load_extras``'s selection of these recordings."""
    return ("select value from json_each(?)", [json.dumps(sorted(shas))])


def reason_json(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)
