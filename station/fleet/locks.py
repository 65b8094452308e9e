"""What lock each central object should carry, from the station's own retention decision.

Pure: ``lock_for(decision, holds, now)`` takes the decision of ``station.retention.policy``
and returns the COMPLIANCE retain-until date and the legal hold the object must have.

* A dated rule (R9 routine footage, R10 a closed case): retain until that date.
* A rule without an end (R11 long-term, an open case, a hold, an unreviewed IMP marker): the
  store cannot hold "no end" and a COMPLIANCE date can never be shortened, so the object is
  kept ``ROLLING`` ahead of now and renewed while the rule holds (at ``renew_at``, half way).
* Never less than ``MIN_LOCK`` ahead of now: an object written for footage already due for
  purge is still locked for the time the purge needs.
* The legal hold is on while the station holds the recording.

Retention on the store is only ever extended: the caller compares with what the store has.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from station.retention.policy import Decision

ROLLING = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=180)
MIN_LOCK = dt.timedelta(days=1)


class Lock(NamedTuple):
    retain_until: dt.datetime
    legal_hold: bool
    renew_at: dt.datetime | None  # rolling retention: extend again at this time
    rule: str


def _whole_second_up(t: dt.datetime) -> dt.datetime:
    if t.microsecond:
        t = t.replace(microsecond=0) + dt.timedelta(seconds=1)
    return t


def lock_for(
    decision: Decision | None, held: bool, now: dt.datetime, min_lock: dt.timedelta = MIN_LOCK
) -> Lock:
    """The lock for an object whose recording got ``decision`` (None: a checkpoint, kept
    like a rule without end); never less than ``min_lock`` ahead of ``now``."""
    if decision is None or decision.keep_until is None:
        until = now + ROLLING
        renew: dt.datetime | None = until - RENEW_BEFORE
        rule = decision.rule if decision is not None else "checkpoint"
    else:
        until, renew, rule = decision.keep_until, None, decision.rule
    until = _whole_second_up(max(until, now + min_lock))
    return Lock(until, held, renew, rule)
