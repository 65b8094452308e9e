"""Secrets are not readable by other local users (R8, R14): the catalog holds the recorders'
HMAC secrets and the password hashes. Checked as a real other user (``setpriv`` to nobody)."""

from __future__ import annotations

import grp
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from station.cli import main

pytestmark = pytest.mark.root


@pytest.fixture
def open_parent() -> Iterator[Path]:
    """A folder every user may pass through (pytest's own tmp folders are 0700, which would
    hide the home whatever its mode)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to act as another user")
    d = Path(tempfile.mkdtemp(prefix="station-perm-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def as_nobody(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", *cmd],
        capture_output=True,
        text=True,
        check=False,
    )


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def make_station(home: Path) -> None:
    env = {"STATION_USER": "admin1", "STATION_NEW_PASSWORD": "admin-pass-1"}
    r = CliRunner().invoke(main, ["--home", str(home), "init"], env=env)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(
        main, ["--home", str(home), "users", "add", "admin1", "--role", "admin"], env=env
    )
    assert r.exit_code == 0, r.output
    env["STATION_PASSWORD"] = "admin-pass-1"
    r = CliRunner().invoke(
        main,
        [
            "--home",
            str(home),
            "devices",
            "enrol",
            "ZFY0001",
            "--officer",
            "100001",
            "--unit",
            "110101000001",
        ],
        env=env,
    )
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["--home", str(home), "checkpoint", "make"], env=env)
    assert r.exit_code == 0, r.output


def test_init_makes_home_and_secrets_owner_only(open_parent: Path) -> None:
    home = open_parent / "home"
    make_station(home)
    assert mode(home) == 0o750
    assert mode(home / "keys") == 0o700
    assert mode(home / "keys" / "audit-ed25519.pem") == 0o600
    for name in ("catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"):
        if (home / name).exists():
            assert mode(home / name) == 0o600, name
    assert mode(home / "audit-head.json") == 0o600
    # another local user can neither list the home nor read the catalog, the key or the secret
    assert as_nobody("ls", str(home)).returncode != 0
    assert as_nobody("cat", str(home / "catalog.sqlite")).returncode != 0
    r = as_nobody(
        "sqlite3",
        "-readonly",
        str(home / "catalog.sqlite"),
        "select secret_hex from device_secrets",
    )
    assert r.returncode != 0 and len(r.stdout.strip()) < 64


def test_files_stay_private_even_if_the_home_is_opened_up(open_parent: Path) -> None:
    """An administrator's `chmod 755` on the home must still not expose the secrets; and
    `station init` run again repairs the home (and a catalog made 0644 by an older station)."""
    home = open_parent / "home"
    make_station(home)
    home.chmod(0o755)
    assert as_nobody("ls", str(home)).returncode == 0
    assert as_nobody("cat", str(home / "catalog.sqlite")).returncode != 0
    assert as_nobody("cat", str(home / "keys" / "audit-ed25519.pem")).returncode != 0
    (home / "catalog.sqlite").chmod(0o644)
    r = CliRunner().invoke(
        main,
        ["--home", str(home), "init"],
        env={"STATION_USER": "admin1", "STATION_PASSWORD": "admin-pass-1"},
    )
    assert r.exit_code == 0, r.output
    assert mode(home) == 0o750 and mode(home / "catalog.sqlite") == 0o600


def test_init_again_needs_an_admin_once_accounts_exist(open_parent: Path) -> None:
    home = open_parent / "home"
    make_station(home)
    r = CliRunner().invoke(
        main, ["--home", str(home), "init"], env={"STATION_USER": "ghost", "STATION_PASSWORD": "x"}
    )
    assert r.exit_code == 10


def test_login_ticket_is_private(open_parent: Path) -> None:
    home = open_parent / "home"
    make_station(home)
    runtime = open_parent / "run-user"
    runtime.mkdir(mode=0o755)
    r = CliRunner().invoke(
        main,
        ["--home", str(home), "login"],
        env={
            "STATION_USER": "admin1",
            "STATION_PASSWORD": "admin-pass-1",
            "XDG_RUNTIME_DIR": str(runtime),
        },
    )
    assert r.exit_code == 0, r.output
    (ticket,) = (runtime / "station").glob("ticket-*.json")
    assert mode(ticket) == 0o600 and mode(ticket.parent) == 0o700
    assert as_nobody("cat", str(ticket)).returncode != 0


def test_service_identity_refused_to_another_user(open_parent: Path) -> None:
    """Someone who may write the catalog (here: through its group) but is neither root nor
    the vault's owner claims the service identity: refused, and the refusal is audited."""
    home = open_parent / "home"
    make_station(home)
    venv = Path(sys.executable)
    if as_nobody(str(venv), "-c", "import station").returncode != 0:
        pytest.skip("this checkout's Python is not reachable for nobody")
    nogroup = grp.getgrnam("nogroup").gr_gid
    for p in [home, *home.iterdir(), *(home / "run").iterdir()]:
        os.chown(p, -1, nogroup)
        p.chmod(p.stat().st_mode | 0o070)
    r = as_nobody(str(venv), "-m", "station", "--home", str(home), "--service", "retention", "run")
    assert r.returncode == 10, r.stdout + r.stderr
    assert "neither root nor the home's owner" in r.stderr
    db = sqlite_utils.Database(str(home / "catalog.sqlite"))
    try:
        assert (
            db.execute(
                "select count(*) from audit_log where event = 'access.denied' and actor = 'station'"
            ).fetchone()[0]
            == 1
        )
        assert db.execute("select count(*) from retention_runs").fetchone()[0] == 0
    finally:
        db.close()
