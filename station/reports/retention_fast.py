"""The retention report's sums at a million recordings: plain recordings tallied by SQLite in
groups, the rest decided one by one (R9, R10, R11, holds, marks).

A plain stored recording (no case link, hold, mark or supervisor's keep) is decided by its
important marker and category alone — the marker or a category not known to be routine keeps it
without an end (R9) — or, routine, by R9: kept until its start plus the shift of its UTC hour.
For a start in the station's form in an hour whose shift is whole hours
(``station.retention.bulk.hour_until``), the end is the shifted hour's text followed by the
start's minutes, seconds and fraction (its "tail"). What the report needs of such an end — is
it past ``now``, within the window, how many whole days from ``now`` — is the same for every
end in one hour whose tail lies on the same side of ``now``'s tail: the difference from ``now``
is a whole number of hours plus the difference of the tails (less than an hour either way), so
it can cross a whole number of days (0 included) only when the hour's time of day is ``now``'s,
and then only where the tail passes ``now``'s. So SQLite counts and sums the plain recordings
per (marker, category, end hour, tail against ``now``'s), and each group is decided once here
from one of its members. The recordings expiring within the window are listed row by row (the
report names them), by the same text comparison ``bulk`` uses. Every other recording — links,
holds, marks, keeps, pending ones, other time forms, hours with no whole-hour shift, values of
other types — goes through ``Decider`` as in ``iter_decisions``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import sqlite_utils

from station.retention import bulk
from station.retention.facts import RecordingRow, load_extras
from station.retention.policy import RULE_ROUTINE, Decision
from station.retention.runtypes import fast_iso

if TYPE_CHECKING:
    from station.reports.retention_report import _Totals
    from station.retention.policy import Decider

# A stored recording tallied in a group: not linked, held, marked or kept (``temp.rep_extra``),
# an integer size, an integer marker, a text category or none, and — when routine — a start in
# the station's form in an hour with a whole-hour R9 shift (``h.until``).
# Both are 0 or 1, never null: rows are split by ``{_GROUPED}`` and ``not {_GROUPED}``.
_ROUTINE = f"coalesce(r.important = 0 and r.category in {bulk.ROUTINE_SQL}, 0)"
_GROUPED = (
    "coalesce(r.state = 'stored' and typeof(r.size) = 'integer'"
    " and typeof(r.important) = 'integer'"
    " and (r.category is null or typeof(r.category) = 'text')"
    " and r.sha256 not in temp.rep_extra"
    f" and (not {_ROUTINE} or h.until is not null), 0)"
)
_COLUMNS = "r.sha256, r.recorded_at, r.ingested_at, r.important, r.size, r.state, r.category"


def tally(
    db: sqlite_utils.Database,
    decider: Decider,
    totals: _Totals,
    pending_after: dict[str, str],
) -> None:
    """Add every stored or pending recording's decision to ``totals``, as
    ``totals.add(d, row, pending_after)`` over ``iter_decisions(db, decider)`` would."""
    now = decider.now.astimezone(dt.UTC)
    now_text = fast_iso(now)
    tail = now_text[13:]
    horizon_text = fast_iso(totals.horizon)
    extra = load_extras(db)
    conn = db.conn
    was_open = conn.in_transaction
    conn.execute("drop table if exists temp.rep_extra")
    conn.execute("create temp table rep_extra (sha256 text primary key) without rowid")
    try:
        conn.executemany("insert into temp.rep_extra values (?)", ((s,) for s in extra))
        if not was_open and conn.in_transaction:
            conn.commit()  # only the temporary table was written
        with bulk.hours_table(db, decider):
            _groups(db, decider, totals, now, tail)
            _expiring(db, decider, totals, now_text, horizon_text)
            new = tuple.__new__
            rows = db.execute(
                f"select {_COLUMNS} from recordings r {bulk.HOUR_JOIN}"
                f" where r.state in ('stored', 'pending_purge') and not {_GROUPED}"
            )
            for d, size, state in decider.rows(rows, extra):
                totals.add(d, new(RecordingRow, (d.sha256, size, state)), pending_after)
    finally:
        if conn.in_transaction and not was_open:
            conn.rollback()
        conn.execute("drop table if exists temp.rep_extra")


def _groups(
    db: sqlite_utils.Database, decider: Decider, totals: _Totals, now: dt.datetime, tail: str
) -> None:
    """The plain recordings per (marker, category, R9 end hour, tail against ``now``'s), each
    group decided once; the expiring ones are left to ``_expiring`` to list."""
    routine_reason = decider.routine_reason
    count, size, freed = totals.count, totals.size, totals.freed_by_day
    for important, category, until, _side, first_tail, n, total in db.execute(
        f"select r.important, r.category, case when {_ROUTINE} then h.until end,"
        f" case when {_ROUTINE} then (substr(r.recorded_at, 14) > :tail)"
        " - (substr(r.recorded_at, 14) < :tail) end,"
        f" case when {_ROUTINE} then min(substr(r.recorded_at, 14)) end,"
        f" count(*), sum(r.size) from recordings r {bulk.HOUR_JOIN} where {_GROUPED}"
        " group by 1, 2, 3, 4",
        {"tail": tail},
    ):
        if until is None:  # no end: the marker, or not known to be routine (R9)
            d = decider.plain("", None, now, important, category)
            assert d.keep_until is None
            count[d.rule] += n
            size[d.rule] += total
            continue
        # R9: one member's end stands for the group's (see the module's docstring)
        keep = dt.datetime.fromisoformat(until + first_tail)
        d = Decision("", keep, RULE_ROUTINE, routine_reason, now >= keep)
        count[RULE_ROUTINE] += n
        size[RULE_ROUTINE] += total
        if d.expired:
            totals.overdue += n
            totals.overdue_bytes += total
            freed[totals.grace] += total
            continue
        off = (keep - now).days + totals.grace
        if off <= totals.forecast:
            freed[off] += total
        if keep <= totals.horizon:
            totals.exp_count += n
            totals.exp_bytes += total


def _expiring(
    db: sqlite_utils.Database,
    decider: Decider,
    totals: _Totals,
    now_text: str,
    horizon_text: str,
) -> None:
    """The grouped routine recordings whose R9 end lies after ``now`` and within the window
    (texts of one form order like the times they name), one entry each."""
    later, args = bulk.after(now_text)
    beyond, beyond_args = bulk.after(horizon_text)
    reason = decider.routine_reason
    append = totals.expiring.append
    for keep, sha, size in db.execute(
        f"select {bulk.KEEP}, r.sha256, r.size from recordings r {bulk.HOUR_JOIN}"
        f" where {_GROUPED} and {_ROUTINE} and {later} and not {beyond}",
        [*args, *beyond_args],
    ):
        append((keep, sha, size, RULE_ROUTINE, reason))
