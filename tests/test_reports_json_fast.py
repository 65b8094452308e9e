"""The reports' JSON at a million recordings: ``render_json`` writes, byte for byte, what
``json.dumps(report.to_json(), ensure_ascii=False, indent=2, default=str)`` writes (without
its copies and its pure-Python encoder), and the compliance report's late list — gathered from
an unsorted scan — is the first ``limit`` late recordings in ingest order, equal ingest times
in catalog order (R1, R2)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from pathlib import Path

import pytest
import sqlite_utils

from station.catalog import open_catalog
from station.config import parse_settings
from station.reports import compliance_report
from station.reports.compliance_report import build_compliance
from station.reports.model import Chart, Report, Section
from station.reports.render import dumps_indented, render_json


@dataclasses.dataclass
class _Point:
    x: int
    label: str


def _reference(report: Report, only: str | None = None) -> str:
    data = report.to_json()
    if only:
        data["sections"] = [s for s in data["sections"] if s["key"] == only]
    return json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n"


ODD_VALUES = [
    None,
    True,
    False,
    0,
    -7,
    10**30,
    0.0,
    -0.0,
    1.5,
    1e300,
    1e-300,
    math.inf,
    -math.inf,
    math.nan,
    "",
    '执法人员 / officer "quoted" \\ back\nnew\tline \x00\x1f \u2028 \ud800 😀',
    [],
    {},
    (),
    (1, "a", None),
    [[], [{}], [[1, [2, []]]]],
    {"a": {"b": {"c": []}}},
    {1: "int key", 2.5: "float key", None: "none key", "s": "str"},
    {True: "true key", False: "false key"},
    dt.date(2026, 12, 1),
    dt.datetime(2026, 12, 1, 3, 30, tzinfo=dt.UTC),
    _Point(3, "案由"),
    [_Point(1, "a"), {"p": _Point(2, "b")}],
]


def test_dumps_indented_is_json_dumps() -> None:
    """Without dataclasses (those ``to_json`` has made dicts: see the next test)."""
    plain = [v for v in ODD_VALUES if "_Point" not in repr(v)]
    for value in [*plain, plain, {"all": plain, "nested": {"x": plain}}]:
        expected = json.dumps(value, ensure_ascii=False, indent=2, default=str)
        assert dumps_indented(value) == expected, value


def test_render_json_is_to_json_dumped() -> None:
    """Every part of a report — summary, sections with rows of odd values, notes, totals,
    charts and per-row sparks — and one section alone."""
    chart = Chart("bar", "图 / chart", ["a", "b"], [1.0, math.nan], "GB")
    report = Report(
        "test",
        "报表 / report",
        "2026-12-01T03:30:00.000000Z",
        {"days": 30, "limit": 200, "nested": {"x": [1, 2]}, "when": dt.date(2026, 1, 1)},
        [("标签 / label", v) for v in ODD_VALUES],
        [
            Section(
                "rows",
                "行 / rows",
                [("a", "甲 / a"), ("b", "乙 / b")],
                [{"a": v, "b": i} for i, v in enumerate(ODD_VALUES)],
                note="说明 / note",
                charts=[chart, Chart("line", "空 / empty", [], [])],
                total_rows=9999,
                sparks={"a": chart},
            ),
            Section("empty", "空 / empty", [], []),
        ],
    )
    assert render_json(report) == _reference(report)
    assert render_json(report, "empty") == _reference(report, "empty")


def _catalog(path: Path) -> sqlite_utils.Database:
    """Late and timely recordings, many with one equal ingest time, inserted out of ingest
    order (the scan meets them in rowid order)."""
    db = open_catalog(path)
    base = dt.datetime(2026, 11, 2, 1, tzinfo=dt.UTC)
    tie = "2026-11-20T02:00:00.000000Z"
    with db.conn:
        for i in range(300):
            end = base + dt.timedelta(hours=(i * 37) % 200)
            delay = (i % 7) * 86400.0 + 60.0  # 0–6 days: late by R1 from one day on
            ingested = (
                tie
                if i % 5 == 0
                else (end + dt.timedelta(seconds=delay)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            )
            end_text = end.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            db.execute(
                "insert into recordings (sha256, size, ext, media_kind, vault_path, recorded_at,"
                " end_at, original_name, original_path, officer_id, unit_id, ingested_at,"
                " ingest_delay_s) values (?, 1, 'MP4', 'video', 'v', ?, ?, 'n', 'p', ?, ?, ?, ?)",
                [
                    f"{(i * 7919) % 1000:064x}",
                    end_text,
                    end_text,
                    f"O{i % 4}",
                    "U1",
                    ingested,
                    delay,
                ],
            )
    return db


@pytest.mark.parametrize(("rule", "slack"), [("hours", 0), ("working-days", 10_000), ("either", 3)])
def test_late_list_in_ingest_order(
    tmp_path: Path, rule: str, slack: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``slack`` 0 and 3: the gathered late rows are cut to the limit over and over."""
    monkeypatch.setattr(compliance_report, "PRUNE_SLACK", slack)
    db = _catalog(tmp_path / "c.sqlite")
    settings = parse_settings({"reports": {"late_rule": rule}})
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    since = now - dt.timedelta(days=60)
    full = build_compliance(db, settings, now=now, since=since, limit=10_000).section("late")
    assert full.total_rows == len(full.rows) > 20
    # the order ``order by ingested_at`` gives, ties in catalog (rowid) order
    order = [
        sha
        for (sha,) in db.execute(
            "select sha256 from recordings where ingested_at >= ? and ingested_at < ?"
            " order by ingested_at",
            [since.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "2026-12-01T00:00:00.000000Z"],
        )
    ]
    late = {r["sha256"] for r in full.rows}
    assert [r["sha256"] for r in full.rows] == [s for s in order if s in late]
    tied = [r for r in full.rows if r["ingested_at"] == "2026-11-20T02:00:00.000000Z"]
    assert len(tied) > 3
    for limit in (0, 1, 7, len(full.rows) - 1):
        part = build_compliance(db, settings, now=now, since=since, limit=limit).section("late")
        assert part.rows == full.rows[:limit]
        assert part.total_rows == full.total_rows
