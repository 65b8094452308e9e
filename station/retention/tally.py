"""What ``station report retention`` adds up, from the tallies (migration 0150) instead of a
decision per recording (R9, R10, R17).

``Totals`` is the report's sum over recordings: per rule a count and bytes, what expired,
what the executor frees on which day, what expires within the window. The reference fills it
row by row (``Totals.add`` over ``iter_decisions``). ``fill_from_tallies`` gives the same
``Totals`` from the tallies:

1. every tally group whose members share one decision — same rule, and for a dated rule all
   expired, or all past the window on one forecast day, or past the forecast — is added whole
   (``Totals.add_group``);
2. every other member is read and decided as the reference does (``Decider.rows`` with its
   links, holds and marks): the recordings with a hold, a mark, a supervisor's keep or a
   pending purge, the start hours no whole-group answer
   fits (an hour with a local midnight or clock change, expiring within the window, on a
   forecast-day edge, straddling ``now``) and the cases whose end does not clearly pass R9;
3. each member read one by one is taken out of its tally group first; a group left below zero,
   or a group that had to be read and still holds members, means the tallies disagree with the
   tables: ``TallyDrift``, and the report decides every row instead (``station verify``
   reports the drift too).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlite_utils

from station.catalog.migrations.m0150_retention_tally import (
    TRIGGERS,
    cat,
    form,
    hour,
    links,
    recount_sql,
)
from station.catalog.txn import catalog_path
from station.retention.facts import load_cases, load_extras
from station.retention.policy import (
    ROUTINE_CATEGORIES,
    RULE_CASE,
    RULE_IMPORTANT,
    RULE_LONG_TERM_CASE,
    RULE_NOT_ROUTINE,
    RULE_OPEN_CASE,
    RULE_ROUTINE,
    RULE_UNCLASSIFIED,
    Decider,
    Decision,
)
from station.retention.runtypes import fast_iso

PENDING = "pending"
STATES = ("stored", "pending_purge")
TABLES = ("retention_tally", "retention_linked")
INDEX = "recordings_ingest_hour"
_HOUR = dt.timedelta(hours=1) - dt.timedelta(microseconds=1)
_parse = dt.datetime.fromisoformat
_NONE = object()
_PREFETCH_THREADS = 8


@contextlib.contextmanager
def snapshot(db: sqlite_utils.Database) -> Iterator[None]:
    """Every read inside sees one state of the catalog: one read transaction (WAL keeps it
    while writers commit), unless the caller is already in a transaction."""
    conn = db.conn
    if conn.in_transaction:
        yield
        return
    conn.execute("begin")
    try:
        yield
    finally:
        if conn.in_transaction:
            conn.execute("rollback")  # nothing was written


def _prefetch(db: sqlite_utils.Database, queries: list[tuple[str, list[Any]]]) -> None:
    """Run ``queries`` on a few connections of their own at once and drop the answers: the
    pages they read are then in the page cache when this connection reads them (scattered rows
    of a large catalog are read many at a time instead of one after the other). Only advice:
    any failure is ignored."""
    try:
        path = catalog_path(db)
    except sqlite3.Error:
        return
    if not path or not queries:
        return

    def run(part: list[tuple[str, list[Any]]]) -> None:
        try:
            conn = sqlite3.connect(path, timeout=1.0, check_same_thread=False)
        except sqlite3.Error:
            return
        try:
            for sql, args in part:
                conn.execute(sql, args).fetchall()
        except sqlite3.Error:
            pass
        finally:
            conn.close()

    n = min(_PREFETCH_THREADS, len(queries))
    with ThreadPoolExecutor(n) as pool:
        list(pool.map(run, [queries[i::n] for i in range(n)]))


class TallyDrift(Exception):
    """The tallies do not match the rows they count."""


class Totals:
    """The retention report's sums over recordings (see the module docstring)."""

    def __init__(
        self,
        now: dt.datetime,
        horizon: dt.datetime,
        grace: int,
        forecast_days: int,
        pending_after: dict[str, Any],
    ) -> None:
        self.now, self.horizon, self.grace, self.forecast_days = now, horizon, grace, forecast_days
        self.pending_after = pending_after
        self.count: Counter[str] = Counter()
        self.size: Counter[str] = Counter()
        self.freed_by_day: Counter[int] = Counter()  # day offset → bytes the executor frees
        self.expiring: list[tuple[str, str, int, str, str]] = []
        self.weeks: Counter[int] = Counter()  # week of the window → recordings expiring then
        # case -> (its recordings not purged, their bytes): from the tallies, else None
        self.per_case: dict[str, tuple[int, int]] | None = None
        self.exp_count = self.exp_bytes = self.overdue = self.overdue_bytes = 0

    def add(self, d: Decision, size: int, state: str) -> None:
        """One recording and its decision."""
        now = self.now
        if state == "pending_purge":
            self.count[PENDING] += 1
            self.size[PENDING] += size
            after = self.pending_after.get(d.sha256)
            if after:
                off = (dt.datetime.fromisoformat(after) - now).days
                self.freed_by_day[max(0, off)] += size
            return
        self.count[d.rule] += 1
        self.size[d.rule] += size
        if d.keep_until is None:
            return
        if d.expired:
            self.overdue += 1
            self.overdue_bytes += size
            self.freed_by_day[self.grace] += size
            return
        off = (d.keep_until - now).days + self.grace
        if off <= self.forecast_days:
            self.freed_by_day[off] += size
        if d.keep_until <= self.horizon:
            self.exp_count += 1
            self.exp_bytes += size
            self.expiring.append((fast_iso(d.keep_until), d.sha256, size, d.rule, d.reason))
            self.weeks[(d.keep_until - now).days // 7] += 1

    def add_group(self, rule: str, n: int, nbytes: int, outcome: Any) -> None:
        """``n`` recordings of ``nbytes`` sharing one outcome: None (no end, or pending without
        a purge date), "expired", "far" (past the window and the forecast), a forecast day
        (past the window), or ("soon", days from now, …) within the window."""
        self.count[rule] += n
        self.size[rule] += nbytes
        if outcome == "expired":
            self.overdue += n
            self.overdue_bytes += nbytes
            self.freed_by_day[self.grace] += nbytes
        elif isinstance(outcome, int):
            if outcome <= self.forecast_days:
                self.freed_by_day[outcome] += nbytes
        elif isinstance(outcome, tuple):
            days = outcome[1]
            if days + self.grace <= self.forecast_days:
                self.freed_by_day[days + self.grace] += nbytes
            self.exp_count += n
            self.exp_bytes += nbytes
            self.weeks[days // 7] += n


def usable(db: sqlite_utils.Database) -> bool:
    """The tallies, every trigger keeping them and the ingest-hour index exist."""
    want = {*TABLES, *TRIGGERS, INDEX}
    names = {
        name
        for (name,) in db.execute(
            "select name from sqlite_master where type in ('table', 'trigger', 'index')"
            " and name in (" + ",".join("?" * len(want)) + ")",
            sorted(want),
        )
    }
    return names == want


def ingested_between(db: sqlite_utils.Database, since: str, until: str) -> int:
    """``sum(size) where since <= ingested_at < until`` over every recording, read from the
    index ``recordings_ingest_hour`` alone: a text at or after ``since`` and before ``until``
    starts with an hour key between theirs, so the key's range selects nothing less."""
    return int(
        db.execute(
            "select coalesce(sum(size), 0) from recordings indexed by recordings_ingest_hour"
            " where substr(ingested_at, 1, 13) between substr(:a, 1, 13) and substr(:b, 1, 13)"
            " and ingested_at >= :a and ingested_at < :b",
            {"a": since, "b": until},
        ).fetchone()[0]
    )


_COLS = "r.sha256, r.recorded_at, r.ingested_at, r.important, r.size, r.state, r.category"
_KEYS = f"{cat('r')}, {hour('r')}, {form('r')}, {links('r.sha256')}"
_READ = f"select {_COLS}, {_KEYS} from "
_UNTIMED = "(r.recorded_at is null or r.recorded_at = '')"
_BY_FORM = {
    0: "recordings r where r.recorded_at >= ? and r.recorded_at < ? || ';'",
    1: f"recordings r where {_UNTIMED} and substr(r.ingested_at, 1, 13) = ?",
    2: "recordings r where r.recorded_at = ?",
    3: f"recordings r where {_UNTIMED} and substr(r.ingested_at, 1, 13) = substr(?, 1, 13)"
    " and r.ingested_at = ?",
}


Plan = tuple[str, Any] | None  # (rule, outcome) shared by a group's members; None: read them


def fill_from_tallies(
    db: sqlite_utils.Database, decider: Decider, totals: Totals, limit: int
) -> int:
    """Fill ``totals`` as ``Totals.add`` over every stored or pending recording would, with at
    least the first ``limit`` (all when negative) of the expiring list in ``totals.expiring``;
    return how many recordings were decided one by one. Raises ``TallyDrift`` (``totals``
    then holds partial sums: start again with a new one)."""
    now, horizon, grace, fdays = decider.now, totals.horizon, totals.grace, totals.forecast_days
    months, years = decider.policy.routine_months, decider.policy.case_years
    # R9 ends between 28 days a month (less a month-end clamp of 3 days) and 31 days a month
    # after the start; a clock change moves either by at most a day more.
    bound = r9_most = dt.timedelta(days=31 * months + 3)
    r9_least = dt.timedelta(days=28 * months - 5)

    def far(least: dt.datetime) -> bool:
        """Every end at or after ``least`` lies past the window and the forecast."""
        return least > horizon and (least - now).days + grace > fdays

    def dated(lo: dt.datetime, hi: dt.datetime) -> Any:
        """The outcome every end in [lo, hi] shares, or False: none shared."""
        if now >= hi:
            return "expired"
        if now < lo:
            days = (lo - now).days
            if days == (hi - now).days:
                if hi <= horizon:
                    return ("soon", days, lo, hi)
                if lo > horizon:
                    return days + grace
            if lo > horizon and (lo - now).days + grace > fdays:
                return "far"
        return False

    plain: dict[tuple[Any, ...], list[Any]] = {}  # key -> [n, bytes, plan]
    routine_outcome: dict[tuple[int, str], Any] = {}  # (form, hour) -> R9's shared outcome
    for st, imp, c, h, f, n, b in db.execute(
        "select state, important, cat, hour, form, n, bytes from retention_tally"
        " where state in ('stored', 'pending_purge')"
    ):
        if type(b) is not int:  # summed as floats, in row order, by the reference
            raise TallyDrift(f"tally ({st}, {h}): bytes {b!r} not a whole number")
        plan: Plan
        routine = c[1:] in ROUTINE_CATEGORIES if c else False
        if st == "pending_purge":
            if routine and not imp:
                _start(h, f)  # the reference parses it too: a malformed time fails alike
            plan = (PENDING, None)
        elif imp:
            plan = (RULE_IMPORTANT, None)
        elif not c:
            plan = (RULE_UNCLASSIFIED, None)
        elif not routine:
            plan = (RULE_NOT_ROUTINE, None)
        else:
            outcome = routine_outcome.get((f, h), _NONE)
            if outcome is _NONE:
                t = _start(h, f)
                outcome = False
                if f >= 2:  # one time: one end
                    until = decider.routine_until(t)
                    outcome = dated(until, until)
                elif t + _HOUR + r9_most <= now:  # R9 ended for the whole hour
                    outcome = "expired"
                elif far(t + r9_least):  # and ends past the window and the forecast
                    outcome = "far"
                elif (shift := decider.hour_shift(t)) is not None:  # ends t + shift .. + 1 h
                    outcome = dated(t + shift, t + shift + _HOUR)
                routine_outcome[(f, h)] = outcome
            plan = None if outcome is False else (RULE_ROUTINE, outcome)
        plain[(st, imp, c, h, f)] = [n, b, plan]

    cases = load_cases(db)
    if any("\x1f" in number for number in cases):
        raise TallyDrift("a case number holds the cases key's separator")
    linked: dict[tuple[Any, ...], list[Any]] = {}
    per_case: dict[str, list[int]] = {}  # case -> [recordings not purged, bytes]
    for lk, st, imp, n, b, maxt in db.execute(
        "select links, state, important, n, bytes, maxt from retention_linked"
    ):
        if type(b) is not int:
            raise TallyDrift(f"tally ({lk}, {st}): bytes {b!r} not a whole number")
        nums = lk.split("\x1f")
        if st != "purged":
            for number in nums:
                got = per_case.setdefault(number, [0, 0])
                got[0] += n
                got[1] += b
        if st not in STATES:
            continue
        plan = None
        if any(x not in cases for x in nums):
            raise TallyDrift(f"cases key {lk!r} names no case")
        if maxt != "~":
            cs = [cases[x] for x in nums]
            if st == "pending_purge":
                plan = (PENDING, None)
            elif any(x.long_term_reason is not None for x in cs):
                plan = (RULE_LONG_TERM_CASE, None)
            elif any(x.status != "closed" or x.closed_at is None for x in cs):
                plan = (RULE_OPEN_CASE, None)
            elif imp:
                plan = (RULE_IMPORTANT, None)
            else:
                # R9 ends at most 31 days a month (plus a clock change) after the latest start
                r9_end = _parse(maxt) + bound
                least: dt.datetime | None = None  # R10 ends no earlier (aware times only)
                for x in cs:
                    if x.closed_at is None or x.closed_at.tzinfo is None:
                        least = None
                        break
                    lower = x.closed_at + _years(x.retention_years or years)
                    least = lower if least is None or lower > least else least
                if least is not None and least > r9_end and far(least):
                    plan = (RULE_CASE, "far")
                else:
                    until = max(decider.case_until(x) for x in cs)
                    if until > r9_end:
                        outcome = dated(until, until)
                        plan = None if outcome is False else (RULE_CASE, outcome)
        linked[(lk, st, imp)] = [n, b, plan]

    rows: dict[str, tuple[Any, ...]] = {}  # every recording read, by hash

    def read(hours: set[tuple[int, str]], shas: set[str], numbers: set[str]) -> None:
        """Read these hours (form, key), recordings and cases' recordings, and take each
        recording read for the first time out of its tally group."""
        got: list[tuple[Any, ...]] = []
        for number in sorted(numbers):
            shas |= {
                s
                for (s,) in db.execute(
                    "select sha256 from case_recordings where case_number = ?", [number]
                )
            }
        shas -= rows.keys()
        by_hash = _READ + "json_each(?) j cross join recordings r on r.sha256 = j.value"
        queries = [(_READ + _BY_FORM[f], [h, h] if f in (0, 3) else [h]) for f, h in sorted(hours)]
        some = sorted(shas)
        _prefetch(
            db,
            [(by_hash, [json.dumps(some[i : i + 64])]) for i in range(0, len(some), 64)] + queries,
        )
        if shas:
            got += db.execute(by_hash, [json.dumps(some)]).fetchall()
        for sql, args in queries:
            got += db.execute(sql, args).fetchall()
        for row in got:
            sha, _rec, _ing, imp, size, st, _cat, c, h, f, lk = row
            if sha in rows:
                continue
            rows[sha] = row
            if st not in STATES:
                continue
            if type(size) is not int:
                raise TallyDrift(f"recording {sha}: size {size!r} not a whole number")
            group = plain.get((st, imp, c, h, f)) if lk is None else linked.get((lk, st, imp))
            if group is None:
                raise TallyDrift(f"recording {sha} is in no tally")
            group[0] -= 1
            group[1] -= size

    # 1. Members no group answer fits, and the recordings with more than their row and cases.
    need: set[str] = set(totals.pending_after)
    for sql in (
        "select sha256 from holds where released_at is null",
        "select sha256 from recording_marks",
    ):
        need.update(s for (s,) in db.execute(sql))
    if "purge_proposals" in db.table_names():
        need.update(
            s
            for (s,) in db.execute(
                "select sha256 from purge_proposals where state = 'rejected'"
                " and kept_until is not null"
            )
        )
    read(
        {(k[4], k[3]) for k, g in plain.items() if g[2] is None},
        need,
        {k[0].split("\x1f")[0] for k, g in linked.items() if g[2] is None},
    )

    # 2. The expiring list: whole groups in order of their earliest end until they hold
    # ``limit`` members; every group starting by the latest end among those is read.
    soon = sorted(
        (g[2][1][2], g[2][1][3], i, key, g)
        for i, (key, g) in enumerate([*plain.items(), *linked.items()])
        if g[2] is not None and isinstance(g[2][1], tuple) and g[0] > 0
    )
    have, last = 0, None
    for _lo, hi, _i, _key, g in soon:
        if limit >= 0 and have >= limit:
            break
        have += g[0]
        last = hi if last is None or hi > last else last
    hours: set[tuple[int, str]] = set()
    numbers: set[str] = set()
    for lo, _hi, _i, key, g in soon:
        if last is None or lo > last:
            break
        g[2] = None
        if len(key) == 5:
            hours.add((key[4], key[3]))
        else:
            numbers.add(key[0].split("\x1f")[0])
    read(hours, set(), numbers)

    # 3. Whole groups; then each recording read, decided as the reference decides it.
    for groups in (plain, linked):
        for key, (n, b, plan) in groups.items():
            if n == 0 and b == 0:
                continue
            if n <= 0 or plan is None:
                raise TallyDrift(f"tally {key!r}: {n} recordings, {b} bytes left")
            totals.add_group(plan[0], n, b, plan[1])
    totals.per_case = {k: (v[0], v[1]) for k, v in per_case.items()}
    mine = [r for r in rows.values() if r[5] in STATES]
    if mine:
        extra = load_extras(
            db, ("select value from json_each(?)", [json.dumps(sorted(r[0] for r in mine))])
        )
        for d, size, state in decider.rows((r[:7] for r in mine), extra):
            totals.add(d, size, state)
    return len(mine)


def _years(n: int) -> dt.timedelta:
    """At most how much sooner than ``n`` calendar years R10 can end: 365 days a year, less a
    29 February clamp and a clock change."""
    return dt.timedelta(days=365 * n - 3)


def _start(h: str, f: int) -> dt.datetime:
    """The start of an hour key (forms 0, 1) or the time a whole text gives (forms 2, 3)."""
    return _parse(h) if f >= 2 else _parse(h + ":00:00+00:00")


def recount(db: sqlite_utils.Database) -> list[str]:
    """How each tally differs from a fresh count of the tables (empty: none). The start-time
    bound of ``retention_linked`` may lie above the recount's (it is never lowered), never
    below."""
    plain_sql, linked_sql = recount_sql()
    out: list[str] = []
    pairs = (
        ("retention_tally", plain_sql, "state, important, cat, hour, form, n, bytes", 5),
        ("retention_linked", linked_sql, "links, state, important, n, bytes, maxt", 3),
    )
    for table, sql, cols, nkey in pairs:
        have = {r[:nkey]: r[nkey:] for r in db.execute(f"select {cols} from {table}")}
        want = {r[:nkey]: r[nkey:] for r in db.execute(sql)}
        for key in sorted(set(have) | set(want), key=repr):
            h, w = have.get(key), want.get(key)
            if h is None or w is None or h[:2] != w[:2]:
                out.append(f"{table} {key!r}: {h!r} counted, {w!r} in the tables")
            elif table == "retention_linked" and h[2] < w[2]:
                out.append(f"{table} {key!r}: start bound {h[2]!r} below {w[2]!r}")
    return out
