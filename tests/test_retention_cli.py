"""``station retention …`` from the command line, and the systemd timer/service that runs it."""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner
from helpers_retention import add_recording

from station.cli import main
from station.vault import Vault

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "systemd"


def run(vault: Vault, *args: str, code: int = 0) -> str:
    res = CliRunner().invoke(main, ["--home", str(vault.home), "--user", "sup1", *args])
    assert res.exit_code == code, res.output
    return res.stdout


def ago(days: int) -> str:
    t = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_dry_run_then_run_then_restore(vault: Vault, db: sqlite_utils.Database) -> None:
    run(vault, "init")
    old = add_recording(vault, db, recorded_at=ago(400))
    new = add_recording(vault, db, recorded_at=ago(10))
    text = run(vault, "retention", "run", "--dry-run")
    assert "DRY RUN" in text and old[:16] in text and new[:16] not in text
    assert "R9" in text
    plan = json.loads(run(vault, "retention", "run", "--dry-run", "--json"))
    assert [i["sha256"] for i in plan["pend"]] == [old] and plan["dry_run"] is True
    assert db.execute("select state from recordings where sha256 = ?", [old]).fetchone()[0] == (
        "stored"
    )
    done = json.loads(run(vault, "retention", "run", "--json"))
    assert done["proposed"] == [old] and done["pended"] == [] and done["run_id"] == 1  # R9
    assert old[:16] in run(vault, "retention", "proposals")
    ok = json.loads(run(vault, "retention", "approve", "--all", "--reason", "无保存意义", "--json"))
    assert ok["approved"] == [old]
    # --now before that run: refused (exit 13), a clear message naming --now.
    res = CliRunner().invoke(
        main, ["--home", str(vault.home), "retention", "run", "--now", "2020-01-01"]
    )
    assert res.exit_code == 13 and "--now" in res.stderr and "before" in res.stderr
    # --now ahead of the clock: only a dry run may look ahead.
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).date().isoformat()
    assert json.loads(run(vault, "retention", "run", "--dry-run", "--now", future, "--json"))[
        "purge"
    ]
    res = CliRunner().invoke(main, ["--home", str(vault.home), "retention", "run", "--now", future])
    assert res.exit_code == 13 and "R9" in res.stderr
    restored = json.loads(run(vault, "retention", "restore", old, "--note", "误判", "--json"))
    assert restored["restored"] == [old]
    assert json.loads(run(vault, "retention", "tombstones", "--json")) == []


def test_problems_give_a_failing_exit_code(vault: Vault, db: sqlite_utils.Database) -> None:
    run(vault, "init")
    old = add_recording(vault, db, recorded_at=ago(400))
    (vault.home / db["recordings"].get(old)["vault_path"]).unlink()
    run(vault, "retention", "run")  # proposes only: no file is touched (R9)
    res = CliRunner().invoke(
        main, ["--home", str(vault.home), "retention", "approve", old, "--reason", "无保存意义"]
    )
    assert res.exit_code == 9
    assert "missing" in res.stderr and old[:16] in res.stderr


def _units_with_real_binary(tmp_path: Path) -> Path:
    """The shipped units, with ExecStart's /usr/bin/station pointing at a real
    executable that starts this checkout's station (systemd-analyze needs it to exist)."""
    stub = tmp_path / "station"
    stub.write_text(
        f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(ROOT))} exec {shlex.quote(sys.executable)}"
        ' -m station "$@"\n',
        encoding="utf-8",
    )
    stub.chmod(0o755)
    out = tmp_path / "units"
    out.mkdir()
    for unit in UNITS.glob("station-retention.*"):
        text = unit.read_text(encoding="utf-8").replace("/usr/bin/station", str(stub))
        (out / unit.name).write_text(text, encoding="utf-8")
    return out


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_units_verify_cleanly(tmp_path: Path) -> None:
    units = _units_with_real_binary(tmp_path)
    res = subprocess.run(
        ["systemd-analyze", "verify", "station-retention.service", "station-retention.timer"],
        cwd=units,
        capture_output=True,
        text=True,
        check=False,
    )
    # Bad values and unknown keys are only warnings with exit 0: any stderr line fails.
    assert res.returncode == 0 and res.stderr == "", res.stderr
    sec = subprocess.run(
        [
            "systemd-analyze",
            "security",
            "--offline=yes",
            "--threshold=30",
            str(units / "station-retention.service"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert sec.returncode == 0, sec.stdout + sec.stderr


def test_service_command_line_runs(tmp_path: Path) -> None:
    """The service's ExecStart arguments, run for real against a fresh home."""
    units = _units_with_real_binary(tmp_path)
    exec_start = next(
        line.split("=", 1)[1]
        for line in (units / "station-retention.service").read_text().splitlines()
        if line.startswith("ExecStart=")
    )
    argv = shlex.split(exec_start)
    home = tmp_path / "home"
    argv[argv.index("/var/lib/station")] = str(home)
    env = {**os.environ, "STATION_LOG_JSON": "1"}
    subprocess.run([argv[0], "--home", str(home), "init"], check=True, env=env, capture_output=True)
    res = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    assert res.returncode == 0, res.stderr
    assert "retention.run_finished" in res.stderr
    db = sqlite_utils.Database(home / "catalog.sqlite")
    assert db.execute("select actor, state from retention_runs").fetchall() == [
        ("station", "done")  # the service identity (--service), not a claimed name
    ]
    db.close()


def test_streamed_dry_run_json_is_the_plan(vault: Vault, db: sqlite_utils.Database) -> None:
    """`retention run --dry-run --json` streams its items; the document is exactly the plan's
    ``to_json()`` (several expired recordings and a kept one)."""
    from station.retention.executor import make_plan

    run(vault, "init")
    expired = [add_recording(vault, db, recorded_at=ago(400 + i)) for i in range(5)]
    add_recording(vault, db, recorded_at=ago(10))
    when = dt.datetime.now(dt.UTC).replace(microsecond=0)
    now = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    streamed = json.loads(run(vault, "retention", "run", "--dry-run", "--now", now, "--json"))
    plan = make_plan(db, vault.settings(), when).to_json()
    plan["warnings"] = streamed["warnings"]
    assert streamed == plan
    assert sorted(i["sha256"] for i in streamed["pend"]) == sorted(expired)
    assert list(streamed) == list(plan)  # same keys, same order
