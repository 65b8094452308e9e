"""Read what ``decide()`` needs from the catalog, streaming (1,000,000 recordings must not sit
in memory at once). Cases, links, holds and marks are small enough to load whole."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import sqlite_utils

from station.retention.policy import CaseFacts, RecordingFacts

_parse = dt.datetime.fromisoformat  # Python 3.11 reads the trailing Z


def parse(text: str | None) -> dt.datetime | None:
    return _parse(text) if text else None


@dataclass(frozen=True, slots=True)
class RecordingRow:
    """What the executor and the reports need beside the facts."""

    sha256: str
    size: int
    state: str
    vault_path: str
    ext: str


def load_cases(db: sqlite_utils.Database) -> dict[str, CaseFacts]:
    return {
        number: CaseFacts(number, status, parse(closed_at), years, reason)
        for number, status, closed_at, years, reason in db.execute(
            "select number, status, closed_at, retention_years, long_term_reason from cases"
        )
    }


def load_links(db: sqlite_utils.Database) -> dict[str, list[str]]:
    links: dict[str, list[str]] = defaultdict(list)
    for case_number, sha in db.execute("select case_number, sha256 from case_recordings"):
        links[sha].append(case_number)
    return links


def load_holds(db: sqlite_utils.Database) -> dict[str, list[str]]:
    holds: dict[str, list[str]] = defaultdict(list)
    for sha, reason in db.execute(
        "select sha256, reason from holds where released_at is null order by id"
    ):
        holds[sha].append(reason)
    return holds


def load_marks(db: sqlite_utils.Database) -> dict[str, tuple[int | None, bool]]:
    return {
        sha: (reason, reviewed is not None)
        for sha, reason, reviewed in db.execute(
            "select sha256, long_term_reason, reviewed_at from recording_marks"
        )
    }


def iter_facts(
    db: sqlite_utils.Database,
    states: Sequence[str] = ("stored", "pending_purge"),
    *,
    shas: Sequence[str] | None = None,
) -> Iterator[tuple[RecordingFacts, RecordingRow]]:
    """Every recording in ``states`` with its links, holds and marks."""
    cases = load_cases(db)
    links = load_links(db)
    holds = load_holds(db)
    marks = load_marks(db)
    marks_default: tuple[int | None, bool] = (None, False)
    sql = (
        "select sha256, recorded_at, ingested_at, important, size, state, vault_path, ext"
        " from recordings where state in (" + ",".join("?" * len(states)) + ")"
    )
    args: list[str] = list(states)
    if shas is not None:
        sql += " and sha256 in (select value from json_each(?))"
        args.append(json.dumps(list(shas)))
    for sha, rec_at, ing_at, important, size, state, vault_path, ext in db.execute(sql, args):
        lt, reviewed = marks.get(sha, marks_default)
        linked = links.get(sha)
        facts = RecordingFacts(
            sha,
            _parse(rec_at) if rec_at else None,
            _parse(ing_at),
            bool(important),
            reviewed,
            lt,
            tuple(holds[sha]) if sha in holds else (),
            tuple(cases[n] for n in linked) if linked else (),
        )
        yield facts, RecordingRow(sha, size, state, vault_path, ext)
