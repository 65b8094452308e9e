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

from station.retention.policy import ROUTINE_CATEGORIES, RULE_ROUTINE, Decider

# Plain text constants: every routine category is a bare word (R9).
ROUTINE_SQL = "(" + ", ".join(f"'{c}'" for c in sorted(ROUTINE_CATEGORIES)) + ")"
HOUR_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]"
TAIL_GLOB = ":[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z"
_ISO = HOUR_GLOB + TAIL_GLOB

# The join that gives a recording ``r`` the row ``h`` of its start's UTC hour; ``h.until`` is
# null where the hour's R9 shift is not whole hours. The start's tail must be in the station's
# form too (``FORM``) for SQL to write its R9 end (``KEEP``): checked only where that end is used.
HOUR_JOIN = "left join temp.ret_hours h on h.hour = substr(r.recorded_at, 1, 13)"
FORM = f"substr(r.recorded_at, 14) glob '{TAIL_GLOB}'"
KEEP = "(h.until || substr(r.recorded_at, 14))"

# ``cli.PlanWriter.item``'s text of a pending item decided by R9 in SQL, field for field, in
# three parts: SQLite makes the middle per row (``PEND_PIECE``, with ``hours_table``'s ``head``
# column made with ``PEND_MID``), in ASCII only, the reason's place held by ``PLACE``;
# ``pend_block`` adds the constant head and tail of every item and the reason, once per batch
# of items. Hashes (R7: 64 hex digits) and ISO times need no escaping.
PLACE = "\x01"  # in no hex digest, size or ISO time; escaped in a JSON text
PEND_HEAD = '{"sha256": "'
PEND_TAIL = '", "action": "pend", "purge_after": null}'
PEND_MID = f', "rule": {json.dumps(RULE_ROUTINE)}, "reason": {PLACE}, "keep_until": "'
PEND_PIECE = """(r.sha256 || '", "size": ' || r.size || h.head || substr(r.recorded_at, 14))"""


def pend_block(pieces: list[str], reason: str) -> str:
    """The items of ``pieces`` (``PEND_PIECE`` texts, at least one) joined by ``",\\n"``, each
    as ``PlanWriter.item`` writes it; ``reason``: the reason's JSON text (``reason_json``)."""
    body = (PEND_TAIL + ",\n" + PEND_HEAD).join(pieces)
    return "".join((PEND_HEAD, body, PEND_TAIL)).replace(PLACE, reason)


def not_later(now_text: str) -> tuple[str, list[object]]:
    """A filter leaving out stored recordings whose R9 end SQL can write and which lies after
    ``now_text``: R9 is the floor of every dated rule, so none of them is expired, whatever its
    links, holds or marks. ``KEEP > now_text`` is compared piecewise without building ``KEEP``
    (texts of one form); the tail's form is checked last, for those rows only."""
    return (
        "not (r.state = 'stored' and h.until is not null"
        " and (h.until > ? or (h.until = ? and substr(r.recorded_at, 14) > ?))"
        f" and {FORM})",
        [now_text[:13], now_text[:13], now_text[13:]],
    )


def kind(fast: str) -> str:
    """Per stored or pending recording, what Python needs to decide it if it is plain (no link,
    hold, mark or keep: checked in Python, ``Marked.extra``): ``fast`` (an expression over ``r``
    and ``h``) for a stored recording decided by R9 alone — not marked important, of a routine
    category, with an integer size, its R9 end written by SQL (then, past the ``not_later``
    filter, expired); 0 for a stored one no rule lets expire — the important marker (never
    reviewed without a mark), or footage not known to be routine (unclassified, or involving a
    party, R9); null for any other stored one; 1 for a pending one. Each term is read once."""
    return (
        "case when r.state <> 'stored' then 1"
        f" when r.important = 0 then (case when r.category in {ROUTINE_SQL} then"
        f" (case when h.until is not null and typeof(r.size) = 'integer' and {FORM}"
        f" then {fast} end) else 0 end)"
        " when typeof(r.important) = 'integer' and r.important <> 0 then 0 end"
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
    # one aggregate per query: SQLite then seeks the start-time index's ends; min and max
    # together read the whole range (tens of MB, scattered, from a cold page cache)
    first = db.execute(f"select min(recorded_at) from recordings where {bound}").fetchone()[0]
    last = db.execute(f"select max(recorded_at) from recordings where {bound}").fetchone()[0]
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
    # the table in its order, not the smaller covering index: the index's pages lie scattered
    # and from a cold page cache cost a seek each (seconds at 200,000 links)
    links = "select case_number, sha256 from case_recordings not indexed"
    for number, sha in db.execute(links):
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
    db: sqlite_utils.Database, decider: Decider, before: str | None = None, head: str = ""
) -> Iterator[None]:
    """``temp.ret_hours(hour, until, head)`` for as long as the block runs: per UTC hour a
    recording started in (before ``before``, an ISO time), the shifted hour (``hour_until``) or
    null, and ``head`` followed by that hour (null with it)."""
    conn = db.conn
    was_open = conn.in_transaction
    conn.execute("drop table if exists temp.ret_hours")
    conn.execute(
        "create temp table ret_hours (hour text primary key, until text, head text) without rowid"
    )
    try:
        rows = [
            (h, until, None if until is None else head + until)
            for h in _hours(db, before)
            for until in (hour_until(decider, h),)
        ]
        conn.executemany("insert or ignore into temp.ret_hours values (?, ?, ?)", rows)
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
