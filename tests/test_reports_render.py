"""Reports as table, CSV, JSON and one self-contained HTML page, through the CLI (R17)."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner
from helpers_retention import add_recording

from station.cases import store
from station.cli import main
from station.vault import Vault


class _Scan(HTMLParser):
    """Collects tags and every attribute that could load something from outside the file."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "srcset", "data") and value:
                self.external.append(f"{tag} {name}={value}")


def run(vault: Vault, *args: str, code: int = 0) -> str:
    res = CliRunner().invoke(main, ["--home", str(vault.home), *args])
    assert res.exit_code == code, res.output
    return res.stdout if code == 0 else res.stderr


@pytest.fixture
def home(vault: Vault, db: sqlite_utils.Database) -> Vault:
    run(vault, "init")
    with db.conn:
        db["units"].insert({"unit_id": "U1", "name": "城东中队"})
        db["devices"].insert({"device_id": "D1", "model": "DSJ-X1", "enrolled": 1})
        db["sessions"].insert(
            {
                "kind": "dock",
                "device_id": "D1",
                "state": "done",
                "started_at": "2026-11-30T01:00:00.000000Z",
                "battery_pct": 55,
                "drift_s": 1.5,
            }
        )
    for day in range(1, 6):
        add_recording(
            vault,
            db,
            recorded_at=f"2026-06-0{day}T01:00:00.000000Z",
            unit="U1",
            ingested_at=f"2026-11-2{day}T01:00:00.000000Z",
            delay_s=day * 20 * 3600.0,
        )
    store.create_case(db, '案 <1> & "x"', name="<script>alert(1)</script>", actor="c")
    store.mark_long_term(db, '案 <1> & "x"', reason=1, actor="c")
    return vault


NOW = ("--now", "2026-12-01T08:00:00+08:00")


def _stable(data: dict[str, Any]) -> dict[str, Any]:
    """The report without what depends on the vault disk's free space, which other processes
    change between two runs: the forecast section and the summary lines about free space."""
    out = dict(data)
    out["sections"] = [sec for sec in data["sections"] if sec["key"] != "forecast"]
    out["summary"] = [
        line
        for line in data["summary"]
        if not any(w in line["label"] for w in ("free", "full", "disk size"))
    ]
    return out


@pytest.mark.parametrize("kind", ["retention", "compliance", "devices"])
def test_every_report_in_every_format(home: Vault, kind: str, tmp_path: Path) -> None:
    table = run(home, "report", kind, *NOW)
    assert " / " in table  # bilingual headings
    data = json.loads(run(home, "report", kind, *NOW, "--json"))
    assert data["kind"] == kind and data["sections"]
    again = json.loads(run(home, "report", kind, *NOW, "--format", "json"))
    assert _stable(again) == _stable(data)
    key = data["sections"][0]["key"]
    text = run(home, "report", kind, *NOW, "--format", "csv", "--section", key)
    assert text.startswith("\ufeff")  # UTF-8 with BOM: Chinese Excel reads it right
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0] == [c["heading"] for c in data["sections"][0]["columns"]]
    assert len(rows) == 1 + len(data["sections"][0]["rows"])
    out = tmp_path / f"{kind}.html"
    run(home, "report", kind, *NOW, "--format", "html", "-o", str(out))
    page = out.read_text(encoding="utf-8")
    scan = _Scan()
    scan.feed(page)
    assert scan.external == []  # self-contained: nothing loaded from elsewhere
    assert "script" not in scan.tags and "link" not in scan.tags and "img" not in scan.tags
    assert "url(" not in page and "@import" not in page
    assert "svg" in scan.tags  # charts inline
    assert '<meta charset="utf-8">' in page


def test_html_escapes_catalog_text(home: Vault) -> None:
    page = run(home, "report", "retention", *NOW, "--format", "html")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "案 &lt;1&gt; &amp; &quot;x&quot;" in page


def test_compliance_content_via_cli(home: Vault) -> None:
    data = json.loads(run(home, "report", "compliance", *NOW, "--json", "--section", "units"))
    (unit,) = data["sections"][0]["rows"]
    # delays of 20, 40, 60, 80, 100 hours: four over R1's 24 hours.
    assert (unit["unit"], unit["total"], unit["late_h"]) == ("U1", 5, 4)


def test_bad_section_and_unwritable_output(home: Vault, tmp_path: Path) -> None:
    err = run(home, "report", "devices", "--section", "nope", code=1)
    assert "no section 'nope'" in err and "devices" in err
    err = run(home, "report", "devices", "-o", str(tmp_path / "missing" / "x.html"), code=1)
    assert "cannot write the report" in err
    err = run(home, "report", "compliance", "--from", "last week", code=1)
    assert "not an ISO" in err and "--from" in err
