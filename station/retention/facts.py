"""Read what ``decide()`` needs from the catalog, streaming (1,000,000 recordings must not sit
in memory at once). Cases, links, holds and marks are small enough to load whole."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import sqlite_utils

from station.retention.policy import CaseFacts, Decider, Decision, Extra, RecordingFacts

_parse = dt.datetime.fromisoformat  # Python 3.11 reads the trailing Z


def parse(text: str | None) -> dt.datetime | None:
    return _parse(text) if text else None


class RecordingRow(NamedTuple):
    """What the executor and the reports need beside the facts."""

    sha256: str
    size: int
    state: str


Need = tuple[str, list[object]] | None  # a select of sha256s and its arguments; None: all


def _only(column: str, need: Need, *, joiner: str = " where ") -> str:
    """A filter on ``column`` to the recordings ``need`` selects."""
    return f"{joiner}{column} in ({need[0]})" if need else ""


def _args(need: Need) -> list[object]:
    return list(need[1]) if need else []


def load_cases(db: sqlite_utils.Database, need: Need = None) -> dict[str, CaseFacts]:
    only = (
        f" where number in (select case_number from case_recordings where sha256 in ({need[0]}))"
        if need
        else ""
    )
    return {
        number: CaseFacts(number, status, parse(closed_at), years, reason)
        for number, status, closed_at, years, reason in db.execute(
            "select number, status, closed_at, retention_years, long_term_reason from cases" + only,
            _args(need),
        )
    }


def load_links(db: sqlite_utils.Database, need: Need = None) -> dict[str, list[str]]:
    """sha -> the numbers of its cases, in the order of the case numbers."""
    links: dict[str, list[str]] = defaultdict(list)
    for case_number, sha in db.execute(
        "select case_number, sha256 from case_recordings"
        + _only("sha256", need)
        + " order by case_number, sha256",
        _args(need),
    ):
        links[sha].append(case_number)
    return links


def load_holds(db: sqlite_utils.Database, need: Need = None) -> dict[str, list[str]]:
    holds: dict[str, list[str]] = defaultdict(list)
    for sha, reason in db.execute(
        "select sha256, reason from holds where released_at is null"
        + _only("sha256", need, joiner=" and ")
        + " order by id",
        _args(need),
    ):
        holds[sha].append(reason)
    return holds


def load_marks(db: sqlite_utils.Database, need: Need = None) -> dict[str, tuple[int | None, bool]]:
    return {
        sha: (reason, reviewed is not None)
        for sha, reason, reviewed in db.execute(
            "select sha256, long_term_reason, reviewed_at from recording_marks"
            + _only("sha256", need),
            _args(need),
        )
    }


def load_kept(db: sqlite_utils.Database, need: Need = None) -> dict[str, dt.datetime]:
    """R9: the latest keep-until a supervisor gave when rejecting a purge, per recording."""
    if "purge_proposals" not in db.table_names():
        return {}
    return {
        sha: _parse(until)
        for sha, until in db.execute(
            "select sha256, max(kept_until) from purge_proposals"
            " where state = 'rejected' and kept_until is not null"
            + _only("sha256", need, joiner=" and ")
            + " group by sha256",
            _args(need),
        )
    }


def load_extras(db: sqlite_utils.Database, need: Need = None) -> dict[str, Extra]:
    """sha -> (long-term reason, reviewed, hold reasons, cases, kept until) for the recordings
    that have a link, hold, mark or supervisor's keep; most recordings have none. ``need``: a
    select of sha256s (and its arguments); only those recordings are loaded."""
    cases = load_cases(db, need)
    links = load_links(db, need)
    holds = load_holds(db, need)
    marks = load_marks(db, need)
    kept = load_kept(db, need)
    extra: dict[str, Extra] = {}
    for sha in set(links) | set(holds) | set(marks) | set(kept):
        lt, reviewed = marks.get(sha, (None, False))
        extra[sha] = (
            lt,
            reviewed,
            tuple(holds.get(sha, ())),
            tuple([cases[n] for n in links.get(sha, ())]),
            kept.get(sha),
        )
    return extra


_extras = load_extras


def iter_decisions(
    db: sqlite_utils.Database,
    decider: Decider,
    states: Sequence[str] = ("stored", "pending_purge"),
    *,
    stored_since: str | None = None,
) -> Iterator[tuple[Decision, RecordingRow]]:
    """``decider`` over every recording in ``states``: what ``iter_facts`` + ``decide`` give, a
    few times faster. A recording with no link, hold or mark (most of them) is decided straight
    from its row (``Decider.plain``), without building its facts.

    ``stored_since`` (an ISO date): leave out stored recordings started on or after it. Only for
    callers that act on expired recordings alone, with a date no rule can expire by ``now``
    (every rule keeps a recording at least as long as R9 does)."""
    extra = _extras(db)
    sql = (
        "select sha256, recorded_at, ingested_at, important, size, state, category"
        " from recordings where state in (" + ",".join("?" * len(states)) + ")"
    )
    args: list[str] = list(states)
    if stored_since is not None:
        sql += " and not (state = 'stored' and coalesce(recorded_at, ingested_at) >= ?)"
        args.append(stored_since)
    new = tuple.__new__
    for d, size, state in decider.rows(db.execute(sql, args), extra):
        yield d, new(RecordingRow, (d.sha256, size, state))


def iter_facts(
    db: sqlite_utils.Database,
    states: Sequence[str] = ("stored", "pending_purge"),
    *,
    shas: Sequence[str] | None = None,
) -> Iterator[tuple[RecordingFacts, RecordingRow]]:
    """Every recording in ``states`` with its links, holds and marks."""
    # One lookup per recording: most have no link, hold or mark at all.
    extra = _extras(db)
    sql = (
        "select sha256, recorded_at, ingested_at, important, size, state, category"
        " from recordings where state in (" + ",".join("?" * len(states)) + ")"
    )
    args: list[str] = list(states)
    if shas is not None:
        sql += " and sha256 in (select value from json_each(?))"
        args.append(json.dumps(list(shas)))
    new, parse_, get = tuple.__new__, _parse, extra.get  # the hot loop's C-level helpers
    plain = (None, False, (), (), None)
    for sha, rec_at, ing_at, important, size, state, category in db.execute(sql, args):
        lt, reviewed, held, linked, kept = get(sha, plain)
        facts = new(
            RecordingFacts,
            (
                sha,
                parse_(rec_at) if rec_at else None,
                parse_(ing_at),
                bool(important),
                reviewed,
                lt,
                held,
                linked,
                category,
                kept,
            ),
        )
        yield facts, new(RecordingRow, (sha, size, state))
