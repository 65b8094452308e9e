"""What people read at a terminal: Beijing time, short recording ids every command accepts,
each error once and no log lines, tables within 120 columns. Real catalog, real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import sqlite_utils
from click.testing import CliRunner
from helpers_retention import add_recording

from station.cli import main
from station.cli_util import TABLE_WIDTH, _width, format_table
from station.errors import AmbiguousRecording
from station.vault import Vault

PW = "correct horse 1"


def run(vault: Vault, *args: str, code: int = 0, user: str = "clerk1") -> str:
    res = CliRunner().invoke(
        main,
        ["--home", str(vault.home), "--user", user, *args],
        env={"STATION_PASSWORD": PW, "STATION_NEW_PASSWORD": PW},
    )
    assert res.exit_code == code, (res.stdout, res.stderr)
    return res.stdout if code == 0 else res.stderr


def test_times_are_beijing_time_and_typed_dates_are_local(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    run(vault, "init")
    # 2026-03-01T08:00:00Z is 16:00 Beijing time
    sha = add_recording(vault, db, recorded_at="2026-03-01T08:00:00.000000Z", officer="O7")
    run(vault, "cases", "create", "2026-0007", "--name", "占道", "--opened", "2026-11-20")
    shown = run(vault, "cases", "show", "2026-0007")
    assert "立案 / opened: 2026-11-20" in shown and "2026-11-19" not in shown
    # JSON keeps ISO 8601 for machines
    assert json.loads(run(vault, "cases", "show", "2026-0007", "--json"))["opened_at"].startswith(
        "2026-11-19T16:00:00"
    )
    listed = run(vault, "recordings", "list")
    assert "2026-03-01 16:00:00" in listed and "北京时间" in listed
    assert "08:00:00" not in listed and "Z" not in listed.split(sha[:16])[1].split("\n")[0]
    found = run(vault, "recordings", "search", "--officer", "O7")
    assert "2026-03-01 16:00:00" in found and ".000000Z" not in found
    detail = run(vault, "recordings", "show", sha[:8])
    assert "2026-03-01 16:00:00" in detail and "T08:00:00" not in detail
    # closing with a local date shows that date back
    assert "2026-12-30" in run(vault, "cases", "close", "2026-0007", "--date", "2026-12-30")
    assert "2026-12-30" in run(vault, "cases", "list")


def test_every_command_takes_the_short_id(vault: Vault, db: sqlite_utils.Database) -> None:
    run(vault, "init")
    sha = add_recording(vault, db, recorded_at="2026-03-01T08:00:00.000000Z")
    short = sha[:16]
    assert short in run(vault, "recordings", "list")
    run(vault, "cases", "create", "2026-0001", "--name", "案")
    out = json.loads(run(vault, "cases", "link", "2026-0001", short, "--json"))
    assert out["linked"] == [sha]
    for cmd in (
        ["recordings", "tag", sha[:8], "--category", "patrol"],
        ["recordings", "hold", sha[:10], "--reason", "诉讼"],
        ["recordings", "release", short],
        ["recordings", "show", sha[:12].upper()],
        ["cases", "unlink", "2026-0001", sha[:9]],
    ):
        run(vault, *cmd)
    # too short, not hex, unknown: a clear error naming the id
    assert "at least 8 hex digits" in run(vault, "cases", "link", "2026-0001", sha[:7], code=5)
    assert "not a recording id" in run(vault, "recordings", "tag", "xyz12345zz", code=5)
    assert "no recording with id 00000000" in run(
        vault, "cases", "link", "2026-0001", "00000000", code=5
    )


def test_ambiguous_prefix_lists_the_candidates(vault: Vault, db: sqlite_utils.Database) -> None:
    run(vault, "init")
    # find two contents whose hashes share their first 8 hex digits is costly; share 0 digits
    # instead and use a catalog row written with a chosen hash
    a = add_recording(vault, db, recorded_at="2026-03-01T08:00:00.000000Z")
    b_sha = a[:10] + ("0" if a[10] != "0" else "1") + a[11:]
    row = dict(next(db.query("select * from recordings where sha256 = ?", [a])))
    row["sha256"] = b_sha
    db.table("recordings").insert(row)
    err = run(vault, "recordings", "show", a[:10], code=AmbiguousRecording.exit_code)
    assert "ambiguous" in err and a[:16] in err and b_sha[:16] in err
    assert err.count("错误 / error") == 1
    run(vault, "recordings", "show", a[:12])


def test_link_by_officer_and_span_and_request_a_whole_case(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    run(vault, "init")
    inside = [
        add_recording(vault, db, recorded_at=f"2026-03-01T0{h}:00:00.000000Z", officer="O7")
        for h in (1, 2)
    ]
    add_recording(vault, db, recorded_at="2026-03-01T05:00:00.000000Z", officer="O7")
    add_recording(vault, db, recorded_at="2026-03-01T02:30:00.000000Z", officer="O8")
    run(vault, "cases", "create", "2026-0002", "--name", "案")
    # span in Beijing time: 09:00–11:00 local = 01:00–03:00 UTC
    out = json.loads(
        run(
            vault,
            "cases",
            "link",
            "2026-0002",
            "--officer",
            "O7",
            "--from",
            "2026-03-01T09:00",
            "--to",
            "2026-03-01T11:00",
            "--json",
        )
    )
    assert sorted(out["linked"]) == sorted(inside)
    assert "--from" in run(vault, "cases", "link", "2026-0002", "--officer", "O7", code=1)
    # a whole case's recordings in one access request
    run(vault, "users", "add", "admin1", "--role", "admin", user="root")
    run(vault, "users", "add", "clerk1", "--role", "clerk", user="admin1")
    req = json.loads(
        run(vault, "access", "request", "--case", "2026-0002", "--reason", "法院调取", "--json")
    )
    assert sorted(req["recordings"]) == sorted(inside)


def test_errors_once_no_log_lines_and_verbose_shows_them(vault: Vault) -> None:
    run(vault, "init")
    env = {**os.environ, "STATION_HOME": str(vault.home)}
    for k in ("STATION_LOG_JSON", "STATION_LOG_LEVEL"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "station", "cases", "show", "无此案"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert p.returncode != 0
    assert p.stderr.count("错误 / error") == 1 and "[warning" not in p.stderr, p.stderr
    assert "case.not_found" not in p.stderr and p.stdout == ""
    logged = (vault.home / "log" / "station-cli.log").read_text("utf-8")
    assert "case.not_found" in logged
    p = subprocess.run([*cmd[:3], "-v", *cmd[3:]], env=env, capture_output=True, text=True)
    assert "case.not_found" in p.stderr and p.stderr.count("错误 / error") == 1


def test_journal_lines_carry_priorities(vault: Vault) -> None:
    env = {**os.environ, "STATION_LOG_JSON": "1", "JOURNAL_STREAM": "8:1234"}
    code = (
        "from station import log; log.configure('info', json=True);"
        "log.get().warning('dock.alert', device='x'); log.get().info('dock.added')"
    )
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    lines = p.stderr.splitlines()
    assert lines[0].startswith("<4>{") and "dock.alert" in lines[0]
    assert lines[1].startswith("<6>{") and json.loads(lines[1][3:])["event"] == "dock.added"


def test_tables_fit_120_columns() -> None:
    headers = [
        "编号 / id",
        "录制（北京时间）/ recorded (Beijing time)",
        "案件 / case",
        "名称 / name",
    ]
    rows = [["a2d9b6465fccba6c", "2026-03-01 16:00:00", "城管罚字〔2026〕第 9 号" * 3, "x" * 300]]
    text = format_table(headers, rows)
    assert max(_width(line) for line in text.splitlines()) <= TABLE_WIDTH
    # nothing cut off: every character of the long cells is still there, ids on one line
    flat = "".join(text.split())
    assert "x" * 300 in "".join(c for c in flat if c == "x") and "a2d9b6465fccba6c" in text
    assert "2026-03-01 16:00:00" in text


def test_disc_plan_warns_of_missing_derivatives_and_existing_jobs(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    run(vault, "init")
    sha = add_recording(vault, db, recorded_at="2026-03-01T08:00:00.000000Z")
    run(vault, "cases", "create", "2026-0009", "--name", "案")
    run(vault, "cases", "link", "2026-0009", sha[:8])
    run(vault, "cases", "mark-long-term", "2026-0009", "--reason", "2")
    out = run(vault, "disc", "plan", "2026-0009")
    assert "without an archival derivative" in out and sha[:16] in out
    with db.conn:
        db.execute(
            "insert into disc_jobs (id, state, media, out_dir, discs_total, bytes_total, plan,"
            " created_at, created_by) values (7, 'verified', 'dvd', '/x', 1, 1, '{}',"
            " '2026-03-02T00:00:00.000000Z', 'x')"
        )
        db.execute("insert into disc_job_cases (job_id, case_number) values (7, '2026-0009')")
    assert "already has disc job 7" in run(vault, "disc", "plan", "2026-0009")
