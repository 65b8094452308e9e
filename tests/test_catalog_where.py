"""The where-clause builder every filtered listing uses (R6 search, R14 register, R19 stops)."""

from __future__ import annotations

import sqlite3

import pytest

from station.catalog.where import Where


def test_only_given_filters_count_and_values_follow_their_placeholders() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("create table t (a, b, c)")
    db.executemany("insert into t values (?, ?, ?)", [(1, "x", None), (2, "y", 5), (2, "xy", 6)])
    w = Where()
    w.given(None, "a = ?")
    w.given("", "b = ?")
    assert w.sql == "" and w.args == []
    w.given(2, "a = ?")
    w.given("x", "(instr(b, ?) > 0 or b = ?)")
    w.switch(False, "c is null")
    w.switch(None, "c > 100")
    assert w.args == [2, "x", "x"]
    assert db.execute("select c from t" + w.sql, w.args).fetchall() == [(6,)]


def test_a_condition_and_its_values_must_agree() -> None:
    with pytest.raises(ValueError, match="2 placeholders"):
        Where().add("a = ? or b = ?", 1)
