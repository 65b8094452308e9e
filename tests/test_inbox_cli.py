"""``station inbox status|assign|rescan``, with and without a running service."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner
from test_inbox_support import (
    drop_state,
    make_drop,
    recordings,
    running,
    wait_drop,
    write_file,
)

from station.cli import main
from station.errors import SidecarError
from station.vault import Vault


def run(vault: Vault, *args: str, code: int = 0) -> Any:
    res = CliRunner().invoke(main, ["--home", str(vault.home), "--user", "clerk1", *args])
    assert res.exit_code == code, res.output
    # JSON and tables go to stdout; errors and log events to stderr.
    if code != 0:
        return res.stderr
    return json.loads(res.stdout) if "--json" in args else res.stdout


@pytest.fixture
def inbox(vault: Vault, tmp_path: Path) -> Path:
    p = tmp_path / "inbox"
    p.mkdir()
    vault.settings_path.write_text(f'[inbox]\nfolders = ["{p}"]\nsettle_seconds = 0.5\n')
    return p


def _age(path: Path, seconds: float = 60) -> None:
    t = time.time() - seconds
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(p, (t, t), follow_symlinks=False)


def test_rescan_without_service_then_assign(
    vault: Vault, db: sqlite_utils.Database, inbox: Path
) -> None:
    sha = write_file(inbox / "cam" / "DSC0001.JPG", b"\xff\xd8photo\xff\xd9")
    _age(inbox / "cam")
    write_file(inbox / "fresh.WAV", b"still arriving")  # mtime now: not settled yet
    out = run(vault, "inbox", "rescan", "--json")
    assert [p["name"] for p in out["processed"]] == ["cam"]
    assert out["processed"][0]["state"] == "needs_details"
    assert out["waiting"][0]["drop"] == "fresh.WAV"
    status = run(vault, "inbox", "status", "--json")
    assert status["service_running"] is False
    assert status["folders"] == [{"path": str(inbox), "present": True, "mode": "inotify"}]
    (att,) = status["attention"]
    assert att["name"] == "cam" and att["state"] == "needs_details"
    text = run(vault, "inbox", "status")
    assert "待补充信息 / needs details" in text and "cam" in text

    out = run(
        vault,
        "inbox",
        "assign",
        str(att["id"]),
        "--officer",
        "123456",
        "--device",
        "NIKON-3",
        "--json",
    )
    assert out["processed"][0]["state"] == "done"
    rec = recordings(db)[sha]
    assert rec["officer_id"] == "123456" and rec["device_id"] == "NIKON-3"
    audit = db.execute(
        "select actor, data from audit_log where event = 'inbox.drop_assigned'"
    ).fetchone()
    assert audit[0] == "clerk1" and json.loads(audit[1])["was"] == "needs_details"


def test_assign_refusals(vault: Vault, db: sqlite_utils.Database, inbox: Path) -> None:
    assert "no inbox drop" in run(vault, "inbox", "assign", "99", "--officer", "1", code=5)
    write_file(inbox / "x.WAV", b"x")
    _age(inbox / "x.WAV")
    run(vault, "inbox", "rescan")
    drop_id = db.execute("select id from inbox_drops").fetchone()[0]
    bad = run(
        vault, "inbox", "assign", str(drop_id), "--officer", "a/b", code=SidecarError.exit_code
    )
    assert "assign: officer" in bad
    run(vault, "inbox", "assign", str(drop_id), "--officer", "7")
    again = run(vault, "inbox", "assign", str(drop_id), "--officer", "8", code=1)
    assert "can no longer be assigned" in again


def test_cli_pokes_a_running_service(vault: Vault, db: sqlite_utils.Database, inbox: Path) -> None:
    settings = vault.settings()
    with running(vault, settings) as svc:
        write_file(inbox / "REC.WAV", b"voice")
        wait_drop(db, "REC.WAV", "needs_details")
        drop_id = db.execute("select id from inbox_drops").fetchone()[0]
        out = run(vault, "inbox", "assign", str(drop_id), "--officer", "123456", "--json")
        assert "poked" in out  # the service, not the CLI, takes the drop in
        wait_drop(db, "REC.WAV", "done")
        assert run(vault, "inbox", "status", "--json")["service_running"] is True
        out = run(vault, "inbox", "rescan", "--retry", "--json")
        assert "poked" in out
        assert svc.wait_idle(10)
    assert drop_state(db, "REC.WAV") == "done"
    assert len(recordings(db)) == 1


def test_rescan_retry_takes_a_fixed_file(
    vault: Vault, db: sqlite_utils.Database, inbox: Path
) -> None:
    make_drop(inbox, "d", {"a.MP4": b"a"}, sidecar={"officer": "1"})
    (inbox / "d" / "link.MP4").symlink_to(inbox / "d" / "a.MP4")
    _age(inbox / "d")
    out = run(vault, "inbox", "rescan", "--json")
    assert out["processed"][0]["state"] == "partial"
    assert (inbox / "d" / "link.MP4.station-error.txt").exists()
    (inbox / "d" / "link.MP4").unlink()  # a clerk removes the symlink
    out = run(vault, "inbox", "rescan", "--retry", "--json")
    assert out["processed"][0]["state"] == "done"
    assert drop_state(db, "d") == "done"
    assert not (inbox / "d").exists()  # sidecar, stale error file and folder tidied away
