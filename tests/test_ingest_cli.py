"""`station ingest`, `station recordings list|show` through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from custody_support import need_strace, run_station

from station.cli import main
from station.errors import IngestIncompleteError
from station.vault import Vault


def run(vault: Vault, *args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, ["--home", str(vault.home), *args], catch_exceptions=False)
    return res.exit_code, res.stdout, res.stderr


def test_ingest_summary_and_listing(vault: Vault, volume: Path) -> None:
    assert run(vault, "init")[0] == 0
    code, out, _ = run(vault, "ingest", str(volume), "--json")
    assert code == 0
    summary = json.loads(out)
    assert (summary["files"], summary["new"], summary["failed"]) == (3, 3, 0)
    assert {f["outcome"] for f in summary["files_detail"]} == {"new"}
    code, out, _ = run(vault, "ingest", str(volume))
    assert code == 0 and "已有 held 3" in out and "MB/s" in out

    rows = json.loads(run(vault, "recordings", "list", "--json", "--officer", "100001")[1])
    assert len(rows) == 3
    limited = run(vault, "recordings", "list", "--json", "--officer", "100001", "--limit", "2")[1]
    assert json.loads(limited) == rows[:2]
    assert json.loads(run(vault, "recordings", "list", "--json", "--officer", "999")[1]) == []
    early = json.loads(run(vault, "recordings", "list", "--json", "--until", "2000-01-01")[1])
    assert early == []
    table = run(vault, "recordings", "list")[1]
    assert "设备" in table and "device" in table and "共 3 条" in table

    sha = rows[0]["sha256"]
    shown = json.loads(run(vault, "recordings", "show", sha[:10], "--json")[1])
    assert shown["sha256"] == sha
    assert [s["outcome"] for s in shown["sightings"]] == ["new", "held"]
    assert [a["event"] for a in shown["audit"]] == ["recording.ingested", "recording.sighted"]


def test_failed_file_gives_nonzero_exit(vault: Vault, tmp_path: Path) -> None:
    """A file that cannot be read fails (EIO on open, injected by strace for that path only, so
    it fails for root as well); the other is stored, the summary is printed, and the command ends
    with IngestIncompleteError's code — not click's usage code 2."""
    need_strace()
    run(vault, "init")
    vol = tmp_path / "v"
    vol.mkdir()
    (vol / "OK.MP4").write_bytes(b"fine")
    bad = vol / "BAD.MP4"
    bad.write_bytes(b"unreadable")
    fault = ["-P", str(bad), "-e", "trace=openat", "-e", "inject=openat:error=EIO"]
    code, out, err = run_station(vault.home, "ingest", str(vol), "--json", strace=fault)
    data = json.loads(out)
    assert code == IngestIncompleteError.exit_code == 18, err
    assert data["failed"] == 1 and data["new"] == 1
    assert "not every file was stored" in err and "Traceback" not in err


def test_uninitialised_home_is_a_clear_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["--home", str(tmp_path / "nowhere"), "recordings", "list"])
    assert res.exit_code != 0
    assert "station init" in res.stderr


def test_unknown_hash(vault: Vault) -> None:
    run(vault, "init")
    res = CliRunner().invoke(main, ["--home", str(vault.home), "recordings", "show", "deadbeef"])
    assert res.exit_code == 5 and "找不到" in res.stderr
