"""A query's ``where`` clause built from optional filters, with its parameters in order."""

from __future__ import annotations

from typing import Any


class Where:
    """Conditions joined by ``and``; each condition's ``?`` placeholders take the values given
    with it, in the order the conditions were added."""

    def __init__(self) -> None:
        self.conditions: list[str] = []
        self.args: list[Any] = []

    def add(self, condition: str, *values: Any) -> None:
        """Add ``condition``; ``values`` fill its placeholders (their number must match)."""
        if condition.count("?") != len(values):
            raise ValueError(f"{condition!r} has {condition.count('?')} placeholders")
        self.conditions.append(condition)
        self.args.extend(values)

    def given(self, value: Any, condition: str) -> None:
        """Add ``condition`` with ``value`` in each placeholder, unless no value was given."""
        if value is not None and value != "":
            self.add(condition, *[value] * condition.count("?"))

    def switch(self, value: bool | None, condition: str) -> None:
        """Add ``condition`` when ``value`` is True, its negation when False, nothing if None."""
        if value is not None:
            self.add(condition if value else f"not {condition}")

    @property
    def sql(self) -> str:
        """`` where a and b`` (with its leading space), or nothing without conditions."""
        return " where " + " and ".join(self.conditions) if self.conditions else ""
