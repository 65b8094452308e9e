"""``Decider.rows`` (the million-row path: plain recordings decided straight from their row)
gives exactly the decisions ``decide()`` gives over the full facts (R9, R10, R11): categories
known routine or not, unclassified footage, a supervisor's keep-until."""

from __future__ import annotations

import datetime as dt
import random

from station.retention.policy import CaseFacts, Decider, Policy, RecordingFacts, decide

NOW = dt.datetime(2026, 12, 1, 3, 30, tzinfo=dt.UTC)


def _text(t: dt.datetime, style: int) -> str:
    if style == 0:
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if style == 1:  # no fraction
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    return t.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat()  # an offset, not Z


def test_rows_match_decide() -> None:
    rnd = random.Random(7)
    open_case = CaseFacts("罚字〔2026〕第1号", "open")
    closed = CaseFacts("罚字〔2025〕第2号", "closed", NOW - dt.timedelta(days=2000), 5)
    lt_case = CaseFacts("罚字〔2024〕第3号", "closed", NOW - dt.timedelta(days=3000), None, 2)
    rows, facts, extra = [], [], {}
    for i in range(3000):
        sha = f"{i:064x}"
        # around the R9 edge (6 months ago), month ends and the local midnight
        base = NOW - dt.timedelta(days=rnd.choice((120, 182, 183, 184, 185, 400, 800)))
        rec = base + dt.timedelta(seconds=rnd.randrange(-86400 * 3, 86400 * 3))
        ing = rec + dt.timedelta(hours=rnd.randrange(1, 100))
        rec_text = None if i % 17 == 0 else _text(rec, i % 3)
        important = int(i % 11 == 0)
        category = rnd.choice(("patrol", "patrol", "education", None, "enforcement"))
        rows.append((sha, rec_text, _text(ing, 0), important, 1000 + i, "stored", category))
        kind = i % 13
        lt, reviewed, holds, cases = None, False, (), ()
        kept = None
        if kind == 1:
            cases = (open_case,)
        elif kind == 2:
            cases = (closed,)
        elif kind == 3:
            cases = (lt_case, closed)
        elif kind == 4:
            holds = ("诉讼",)
        elif kind == 5:
            lt, reviewed = 1, True
        elif kind == 6:
            reviewed = True
        elif kind == 7:  # R9: a supervisor rejected the purge, some keeps already past
            kept = NOW + dt.timedelta(days=rnd.choice((-30, 30, 400)))
        if kind in range(1, 8):
            extra[sha] = (lt, reviewed, holds, cases, kept)
        facts.append(
            RecordingFacts(
                sha,
                dt.datetime.fromisoformat(rec_text) if rec_text else None,
                dt.datetime.fromisoformat(_text(ing, 0)),
                bool(important),
                reviewed,
                lt,
                holds,
                cases,
                category,
                kept,
            )
        )
    policy = Policy()
    fast = list(Decider(policy, NOW).rows(rows, extra))
    slow = list(decide(facts, policy, NOW))
    assert [d for d, _, _ in fast] == slow
    assert [(size, state) for _, size, state in fast] == [(r[4], r[5]) for r in rows]
    assert {d.rule for d in slow} >= {
        "R9",
        "R10",
        "R10-open",
        "R11-case",
        "hold",
        "important",
        "R9-unclassified",
        "R9-not-routine",
        "R9-kept",
    }
    assert any(d.expired for d in slow) and not all(d.expired for d in slow)


def test_unexpired_from_is_safe() -> None:
    """Nothing started on or after ``unexpired_from()`` can be expired at ``now``."""
    for months in (6, 7, 12):
        decider = Decider(Policy(routine_months=months), NOW)
        edge = dt.datetime.fromisoformat(decider.unexpired_from() + "T00:00:00+14:00")
        assert decider.routine_until(edge) > NOW
