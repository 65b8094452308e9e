"""The CLI forms other tools script against, through click's runner on a real home."""

from __future__ import annotations

import json

import sqlite_utils
from click.testing import CliRunner
from helpers_retention import add_recording

from station.cli import main
from station.vault import Vault


def run(vault: Vault, *args: str, code: int = 0) -> str:
    res = CliRunner().invoke(main, ["--home", str(vault.home), "--user", "clerk1", *args])
    assert res.exit_code == code, res.output
    # JSON and tables go to stdout; errors and log events to stderr.
    return res.stdout if code == 0 else res.stderr


def test_case_cli_round_trip(vault: Vault, db: sqlite_utils.Database) -> None:
    run(vault, "init")
    sha = add_recording(vault, db, recorded_at="2026-03-01T08:00:00.000000Z")
    number = "城管罚字 〔2026〕 第 9 号"
    out = json.loads(
        run(
            vault,
            "cases",
            "create",
            number,
            "--name",
            "占道经营",
            "--party",
            "李四",
            "--cause",
            "占道",
            "--opened",
            "2026-03-01",
            "--json",
        )
    )
    assert out["number"] == number and out["created_by"] == "clerk1"
    assert out["opened_at"] == "2026-02-28T16:00:00.000000Z"  # station-local midnight
    assert json.loads(run(vault, "cases", "link", number, sha, "--json"))["linked"] == [sha]
    # Bad input: linking to a case that does not exist → exit 5, names the case.
    out = run(vault, "cases", "link", "无此案", sha, code=5)
    assert "no such case" in out and "无此案" in out
    # A long-term mark without a reason code → refused, names R11.
    assert "R11" in run(vault, "cases", "mark-long-term", number, code=1)
    run(vault, "cases", "mark-long-term", number, "--reason", "2", "--note", "复议")
    run(vault, "cases", "close", number, "--date", "2026-06-30")
    # Closing twice → refused with its own exit code.
    assert "closed already" in run(vault, "cases", "close", number, code=12)
    shown = json.loads(run(vault, "cases", "show", number, "--json"))
    assert shown["status"] == "closed" and shown["long_term_reason"] == 2
    assert [r["sha256"] for r in shown["recordings"]] == [sha]
    listed = json.loads(run(vault, "cases", "list", "--long-term", "--json"))
    assert [c["number"] for c in listed] == [number]
    assert number in run(vault, "cases", "list")
    run(vault, "cases", "archived", number, "--location", "档案室 3 号柜")
    bad_date = run(vault, "cases", "reopen", number, "--reason", "x", "--json")
    assert json.loads(bad_date)["status"] == "open"
    assert "not an ISO" in run(vault, "cases", "close", number, "--date", "yesterday", code=1)


def test_recordings_cli(vault: Vault, db: sqlite_utils.Database) -> None:
    run(vault, "init")
    sha = add_recording(vault, db, recorded_at="2026-03-01T08:00:00.000000Z", officer="O7")
    run(vault, "recordings", "tag", sha, "--category", "patrol", "--proves", "巡查 / patrol")
    assert json.loads(run(vault, "recordings", "hold", sha, "--reason", "诉讼", "--json"))["holds"]
    found = json.loads(run(vault, "recordings", "search", "--officer", "O7", "--held", "--json"))
    assert [r["sha256"] for r in found] == [sha] and found[0]["category"] == "patrol"
    run(vault, "recordings", "release", sha)
    assert "no active hold" in run(vault, "recordings", "release", sha, code=12)
    run(vault, "recordings", "review", sha, "--json")
    run(vault, "recordings", "mark-long-term", sha, "--reason", "5", "--json")
    assert sha[:16] in run(vault, "recordings", "search", "--long-term", "--from", "2026-01-01")
    assert json.loads(run(vault, "recordings", "search", "--officer", "O8", "--json")) == []
