"""Working-day arithmetic for the R2 deadline (stored within N working days), pure.

A day is a working day when it is a make-up working day (调休), or a Monday–Friday that is not
a public holiday. The lists come from ``reports.holidays`` / ``reports.makeup_workdays``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Calendar:
    holidays: frozenset[dt.date] = field(default_factory=frozenset)
    makeup: frozenset[dt.date] = field(default_factory=frozenset)

    @classmethod
    def from_strings(cls, holidays: Iterable[str], makeup: Iterable[str]) -> Calendar:
        return cls(
            frozenset(dt.date.fromisoformat(d) for d in holidays),
            frozenset(dt.date.fromisoformat(d) for d in makeup),
        )

    def is_working(self, d: dt.date) -> bool:
        if d in self.makeup:
            return True
        if d in self.holidays:
            return False
        return d.weekday() < 5

    def deadline(self, end: dt.date, n: int) -> dt.date:
        """The last local day by which footage ending on ``end`` must be stored: the ``n``-th
        working day after ``end`` (n = 0: the same day)."""
        d = end
        count = 0
        while count < n:
            d += dt.timedelta(days=1)
            if self.is_working(d):
                count += 1
        return d
