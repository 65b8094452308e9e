"""Done when a supervisor can run the three reports and the dry run from the README: every such
command line in the README's cases/retention section runs, as written, on a real home."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner
from helpers_retention import add_recording

from station.cli import main
from station.vault import Vault

README = Path(__file__).resolve().parent.parent / "README.md"
HEADING = "## Cases, retention and supervisors' reports"


def readme_commands() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(HEADING) :]
    nxt = section.find("\n## ", 1)
    section = section if nxt < 0 else section[:nxt]
    out = []
    for line in section.splitlines():
        cmd = line.strip().split("  #")[0].strip()
        if cmd.startswith(("station report ", "station retention run --dry-run")):
            out.append(shlex.split(cmd)[1:])
    return out


def test_readme_reports_and_dry_run_run(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_recording(vault, db, recorded_at="2026-01-10T02:00:00.000000Z")
    commands = readme_commands()
    kinds = {c[1] for c in commands if c[0] == "report"}
    assert kinds == {"retention", "compliance", "devices"}
    assert any(c[:3] == ["retention", "run", "--dry-run"] for c in commands)
    monkeypatch.chdir(tmp_path)  # reports written with -o land here
    for args in commands:
        res = CliRunner().invoke(main, ["--home", str(vault.home), *args])
        assert res.exit_code == 0, (args, res.output)
    assert (tmp_path / "retention.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    # one table per CSV file: the compliance report's sections each get their own file
    assert (tmp_path / "late-late.csv").read_text(encoding="utf-8").startswith("\ufeff")
    assert db["retention_runs"].count == 0  # dry runs only
