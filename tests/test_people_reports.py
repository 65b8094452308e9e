"""Reports a supervisor opens in Chinese Excel, prints and signs: CSV with a BOM (one table per
file), XLSX read back by openpyxl, PDF read back by pdftotext, HTML with print rules; times in
北京时间 and short recording ids in every people's format, ISO 8601 kept in JSON."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner
from helpers_retention import add_recording

from station.cases import store
from station.cli import main
from station.vault import Vault

NOW = ("--now", "2026-12-01T08:00:00+08:00")


def run(vault: Vault, *args: str, code: int = 0) -> str:
    res = CliRunner().invoke(main, ["--home", str(vault.home), *args])
    assert res.exit_code == code, (res.stdout, res.stderr)
    return res.stdout if code == 0 else res.stderr


@pytest.fixture
def home(vault: Vault, db: sqlite_utils.Database) -> Vault:
    run(vault, "init")
    for day in range(1, 4):
        add_recording(
            vault,
            db,
            recorded_at=f"2026-06-0{day}T01:00:00.000000Z",
            ingested_at=f"2026-11-2{day}T01:00:00.000000Z",
            delay_s=day * 30 * 3600.0,
        )
    store.create_case(db, "城管罚字〔2026〕第12号", name="占道经营" * 5, actor="c")
    store.mark_long_term(db, "城管罚字〔2026〕第12号", reason=1, actor="c")
    return vault


def test_csv_has_a_bom_and_one_table_per_file(home: Vault, tmp_path: Path) -> None:
    # several sections on stdout: refused with the section keys named
    err = run(home, "report", "compliance", *NOW, "--format", "csv", code=1)
    assert "one table per file" in err and "--section" in err
    out = tmp_path / "late.csv"
    run(home, "report", "compliance", *NOW, "--format", "csv", "-o", str(out))
    keys = [s["key"] for s in json.loads(run(home, "report", "compliance", *NOW, "--json"))[
        "sections"
    ]]  # fmt: skip
    for key in keys:
        raw = (tmp_path / f"late-{key}.csv").read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM
        rows = list(csv.reader(io.StringIO(raw[3:].decode("utf-8"))))
        assert " / " in rows[0][0] and not any(r and r[0].startswith("#") for r in rows)


def test_people_formats_show_beijing_time_and_short_ids(home: Vault) -> None:
    data = json.loads(run(home, "report", "compliance", *NOW, "--json"))
    late = next(s for s in data["sections"] if s["rows"] and "sha256" in s["rows"][0])
    sha = late["rows"][0]["sha256"]
    assert len(sha) == 64  # JSON: full hash, ISO times
    assert any(str(v).endswith("Z") for v in late["rows"][0].values())
    text = run(home, "report", "compliance", *NOW, "--format", "csv", "--section", late["key"])
    assert sha[:16] in text and sha not in text
    assert ".000000Z" not in text and "T01:00" not in text
    table = run(home, "report", "compliance", *NOW)
    assert "北京时间" in table and "2026-12-01 08:00:00" in table and sha not in table


def test_xlsx_one_sheet_per_section(home: Vault, tmp_path: Path) -> None:
    import openpyxl

    out = tmp_path / "r.xlsx"
    run(home, "report", "retention", *NOW, "--format", "xlsx", "-o", str(out))
    wb = openpyxl.load_workbook(out)
    data = json.loads(run(home, "report", "retention", *NOW, "--json"))
    assert len(wb.sheetnames) == 1 + len(data["sections"])
    summary = wb[wb.sheetnames[0]]
    assert summary["A1"].value == data["title"]
    for name, section in zip(wb.sheetnames[1:], data["sections"], strict=True):
        sheet = wb[name]
        assert [c.value for c in sheet[1]] == [c["heading"] for c in section["columns"]]
        assert sheet.max_row == 1 + len(section["rows"])
    # binary formats need a file
    assert "-o" in run(home, "report", "retention", *NOW, "--format", "xlsx", code=1)


def test_pdf_and_html_print_with_headers_and_signature(home: Vault, tmp_path: Path) -> None:
    pdf = tmp_path / "r.pdf"
    run(home, "report", "retention", *NOW, "--format", "pdf", "-o", str(pdf))
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "保存期" in text and "审核人签字" in text and "第 1 页" in text
    assert "北京时间" in text and "城管罚字〔2026〕第12号" in text
    html_path = tmp_path / "r.html"
    run(home, "report", "retention", *NOW, "--format", "html", "-o", str(html_path))
    page = html_path.read_text("utf-8")
    assert "@page" in page and "table-header-group" in page and "<thead>" in page
    assert "审核人签字" in page


def test_disc_and_spotcheck_reports_have_formats(home: Vault, tmp_path: Path) -> None:
    table = run(home, "report", "discs")
    assert "城管罚字〔2026〕第12号" in table
    out = tmp_path / "discs.csv"
    run(home, "report", "discs", "--format", "csv", "-o", str(out))
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw[3:].decode("utf-8"))))
    assert rows[0][0] == "案件编号 / case" and rows[1][0] == "城管罚字〔2026〕第12号"
    assert isinstance(json.loads(run(home, "report", "discs", "--json")), list)
    xlsx = tmp_path / "discs.xlsx"
    run(home, "report", "discs", "--format", "xlsx", "-o", str(xlsx))
    import openpyxl

    assert openpyxl.load_workbook(xlsx).sheetnames[1] == "光盘"


def test_device_report_counts_recordings_and_bytes(home: Vault) -> None:
    data = json.loads(run(home, "report", "devices", *NOW, "--json"))
    rows = {r["device"]: r for r in data["sections"][0]["rows"]}
    # the fixture's three recordings came from DSJ0001, 256 bytes each, ingested in the window
    assert rows["DSJ0001"]["recordings"] == 3
    assert rows["DSJ0001"]["gigabytes"] == round(3 * 256 / 1e9, 2)
    table = run(home, "report", "devices", *NOW)
    assert "录像数" in table and "recordings" in table
