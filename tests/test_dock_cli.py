"""The dock's commands: devices, status, sim recorder (a real subprocess on a real pty), demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner
from dock_support import REPO

from station.cli import main
from station.config import Settings
from station.diskspace import vault_space
from station.recorder.serial_driver import SerialDriver
from station.status import StatusBoard
from station.usb_dock import registry
from station.vault import Vault


def run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.output


def test_enrol_list_revoke(vault: Vault, db: sqlite_utils.Database) -> None:
    code, out = run(
        "devices",
        "enrol",
        "ZFY0001",
        "--officer",
        "100001",
        "--unit",
        "110101000001",
        "--officer-name",
        "张三",
        "--json",
    )
    assert code == 0, out
    data = json.loads(out)
    assert len(data["secret_hex"]) == 64 and data["officer_id"] == "100001"
    assert registry.secret_for(db, "ZFY0001") == bytes.fromhex(data["secret_hex"])
    code, out = run("devices", "list")
    assert code == 0 and "ZFY0001" in out and "张三" in out
    # Re-enrolling keeps the key unless a new one is given.
    code, out = run(
        "devices", "enrol", "ZFY0001", "--officer", "100002", "--unit", "110101000001", "--json"
    )
    assert json.loads(out)["secret_hex"] == data["secret_hex"]
    code, out = run("devices", "revoke", "ZFY0001", "--json")
    assert code == 0 and json.loads(out) == {"device_id": "ZFY0001", "enrolled": False}
    assert registry.secret_for(db, "ZFY0001") is None
    events = [r[0] for r in db.execute("select event from audit_log")]
    assert events.count("device.enrolled") == 2 and "device.revoked" in events


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ZFY01", "--officer", "100001", "--unit", "110101000001"], "7 letters"),
        (["ZFY0001", "--officer", "1", "--unit", "110101000001"], "2 to 32"),
        (["ZFY0001", "--officer", "100001", "--unit", "1101"], "12 digits"),
        (
            ["ZFY0001", "--officer", "100001", "--unit", "110101000001", "--secret-hex", "zz"],
            "hexadecimal",
        ),
    ],
)
def test_enrol_rejects_bad_input(
    vault: Vault, db: sqlite_utils.Database, args: list[str], message: str
) -> None:
    code, out = run("devices", "enrol", *args)
    assert code != 0 and message in out
    assert registry.list_devices(db) == []


def test_alerts_and_ack(vault: Vault, db: sqlite_utils.Database) -> None:
    aid = registry.raise_alert(db, "unknown_device", "未登记 / not enrolled", device_id="ZFY0009")
    code, out = run("devices", "alerts", "--json")
    assert code == 0 and json.loads(out)[0]["device_id"] == "ZFY0009"
    code, out = run("devices", "ack", str(aid))
    assert code == 0 and "acknowledged" in out
    assert json.loads(run("devices", "alerts", "--json")[1]) == []
    assert len(json.loads(run("devices", "alerts", "--all", "--json")[1])) == 1
    code, out = run("devices", "ack", str(aid))
    assert code != 0 and "no open alert" in out


def test_status_reads_the_daemons_file(vault: Vault) -> None:
    code, out = run("status")
    assert code != 0 and "station run" in out
    board = StatusBoard(vault.run / "status.json")
    board.update(
        "1-1",
        phase="copying",
        device_id="ZFY0001",
        files_done=2,
        files_total=5,
        bytes_done=10_000_000,
        bytes_total=50_000_000,
    )
    board.set_state("ready")
    code, out = run("status")
    assert code == 0 and "ZFY0001" in out and "2/5" in out and "复制并校验" in out
    # stdout only: a low-space warning on stderr is for the person, not the JSON reader
    data = json.loads(CliRunner().invoke(main, ["status", "--json"]).stdout)
    assert data["running"] is True and data["slots"][0]["safe_to_undock"] is False


def test_sim_recorder_command_on_a_pty(tmp_path: Path) -> None:
    link = tmp_path / "rec"
    secret = "00" * 32
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "station",
            "sim",
            "recorder",
            "--pty-link",
            str(link),
            "--serial",
            "ZFY0042",
            "--battery",
            "33",
            "--drift",
            "-5",
            "--secret-hex",
            secret,
            "--json",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["serial"] == "ZFY0042" and link.is_symlink()
        drv = SerialDriver.open(str(link), timeout_s=2.0)
        try:
            assert drv.identify().serial == "ZFY0042"
            drv.authenticate(bytes.fromhex(secret))
            assert drv.battery() == 33
        finally:
            drv.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert not link.exists()


def test_sim_recorder_rejects_unknown_faults() -> None:
    code, out = run("sim", "recorder", "--faults", "explode")
    assert code != 0 and "explode" in out


@pytest.mark.root  # loop devices and mounts
@pytest.mark.slow
def test_demo_runs_the_daemon_with_docked_recorders(tmp_path: Path) -> None:
    """The README's main command, end to end."""
    env = dict(os.environ, PYTHONPATH=str(REPO), STATION_HOME=str(tmp_path / "unused"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "station",
            "demo",
            "--dir",
            str(tmp_path / "demo"),
            "--clips",
            "2",
            "--seconds",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(proc.stdout)
    assert data["daemon_exit"] == 0
    assert data["kiosk"].startswith("http://127.0.0.1:")  # the screens were served meanwhile
    assert '"event": "web.listening"' in (tmp_path / "demo" / "daemon.log").read_text()
    assert data["left_on_recorders"] == {
        "ZFY0001": [],
        "ZFY0777": [next(iter(data["left_on_recorders"]["ZFY0777"]))],
    }
    assert len(data["left_on_recorders"]["ZFY0777"]) == 1  # refused: untouched
    recs = data["recordings"]
    assert len(recs) == 2 and all(abs(r["drift_s"] - 12.0) < 0.5 for r in recs)
    slots = {s["device_id"]: s for s in data["slots"]}
    assert slots["ZFY0001"]["safe_to_undock"] and slots["ZFY0001"]["cleared"] == 2
    assert [f["code"] for f in slots["ZFY0001"]["flags"]] == ["clock_drift"]
    assert slots["ZFY0777"]["phase"] == "refused"
    codes = [a["code"] for a in data["alerts"]]
    # The demo keeps the station's default low-space threshold and its vault lives on this
    # host's disk: a host with little free space gets the alert too (said, never hidden).
    space = vault_space(tmp_path / "demo", Settings())
    if abs(space.free_percent - space.threshold_percent) > 0.5:
        assert ("vault_low_space" in codes) == space.low, (codes, space)
    assert [c for c in codes if c != "vault_low_space"] == ["unknown_device"]
