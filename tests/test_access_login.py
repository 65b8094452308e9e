"""Who acts (R7, R14): an unknown or disabled name decides nothing about footage; a clerk logs in
once and is proven for a while; the daemon and timers act as the station's service identity."""

from __future__ import annotations

import json
import os
import stat

import sqlite_utils
from click.testing import CliRunner

from station.access import tickets
from station.access.users import create_user
from station.cases import tags
from station.cli import main
from station.vault import Vault
from tests.integrity_support import store_recording


def cli(vault: Vault, *args: str, **env: str) -> tuple[int, str]:
    base = {"STATION_USER": None, "STATION_PASSWORD": None}
    res = CliRunner().invoke(main, ["--home", str(vault.home), *args], env={**base, **env})
    return res.exit_code, res.output


def people(db: sqlite_utils.Database) -> None:
    create_user(db, "admin1", "admin", "admin-pass-1", actor="setup")
    create_user(db, "zhou", "supervisor", "super-pass-1", actor="admin1")
    create_user(db, "li", "clerk", "clerk-pass-1", actor="admin1")
    create_user(db, "gone", "supervisor", "gone-pass-1", actor="admin1")
    from station.access.users import disable_user

    disable_user(db, "gone", actor="admin1")


def held(db: sqlite_utils.Database, sha: str) -> bool:
    return bool(
        db.execute(
            "select count(*) from holds where sha256 = ? and released_at is null", [sha]
        ).fetchone()[0]
    )


def test_ghost_and_disabled_cannot_release_a_hold_or_run_retention(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    people(db)
    sha = store_recording(vault, db, b"evidence")["sha256"]
    tags.hold(db, [sha], reason="行政诉讼", actor="li")
    for env in (
        {"STATION_USER": "ghost"},
        {"STATION_USER": "ghost", "STATION_PASSWORD": "anything-1"},
        {"STATION_USER": "gone", "STATION_PASSWORD": "gone-pass-1"},
        {"STATION_USER": "li", "STATION_PASSWORD": "clerk-pass-1"},  # a clerk: not a release
    ):
        assert cli(vault, "recordings", "release", sha, **env)[0] == 10, env
        assert cli(vault, "retention", "run", **env)[0] == 10, env
    assert held(db, sha)
    assert db.execute("select count(*) from retention_runs").fetchone()[0] == 0
    actors = {r[0] for r in db.execute("select actor from audit_log where event like 'access.%'")}
    assert {"ghost", "gone", "li"} <= actors
    # the supervisor may; the log names the proven supervisor, not the login name of the shell
    code, out = cli(
        vault, "recordings", "release", sha, STATION_USER="zhou", STATION_PASSWORD="super-pass-1"
    )
    assert code == 0, out
    assert (
        db.execute("select actor from audit_log where event = 'recording.released'").fetchone()[0]
        == "zhou"
    )


def test_login_once_then_act_then_logout(vault: Vault, db: sqlite_utils.Database) -> None:
    people(db)
    sha = store_recording(vault, db, b"evidence")["sha256"]
    code, out = cli(
        vault, "login", "--minutes", "30", STATION_USER="li", STATION_PASSWORD="clerk-pass-1"
    )
    assert code == 0, out
    path = tickets.ticket_path(vault)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert str(path).startswith(os.environ["XDG_RUNTIME_DIR"])
    # no name, no password: the ticket proves li
    code, out = cli(vault, "recordings", "tag", sha, "--category", "warning")
    assert code == 0, out
    assert (
        db.execute("select actor from audit_log where event = 'recording.tagged'").fetchone()[0]
        == "li"
    )
    # naming someone else does not borrow li's ticket
    assert cli(vault, "recordings", "hold", sha, "--reason", "x", STATION_USER="zhou")[0] == 10
    assert cli(vault, "logout")[0] == 0
    assert not path.exists()
    assert cli(vault, "recordings", "hold", sha, "--reason", "x")[0] == 10
    events = [r[0] for r in db.execute("select event from audit_log where actor = 'li'")]
    assert "access.login" in events and "access.logout" in events


def test_ticket_void_once_account_disabled_or_password_changed(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    people(db)
    sha = store_recording(vault, db, b"evidence")["sha256"]
    assert cli(vault, "login", STATION_USER="li", STATION_PASSWORD="clerk-pass-1")[0] == 0
    code, out = cli(
        vault,
        "users",
        "passwd",
        "li",
        STATION_USER="admin1",
        STATION_PASSWORD="admin-pass-1",
        STATION_NEW_PASSWORD="clerk-pass-2",
    )
    assert code == 0, out
    assert cli(vault, "recordings", "review", sha)[0] == 10
    assert (
        db.execute(
            "select count(*) from audit_log where event = 'access.ticket_refused'"
        ).fetchone()[0]
        == 1
    )
    assert cli(vault, "login", STATION_USER="li", STATION_PASSWORD="clerk-pass-2")[0] == 0
    assert (
        cli(
            vault, "users", "disable", "li", STATION_USER="admin1", STATION_PASSWORD="admin-pass-1"
        )[0]
        == 0
    )
    assert cli(vault, "recordings", "review", sha)[0] == 10


def test_forged_and_expired_tickets_are_refused(vault: Vault, db: sqlite_utils.Database) -> None:
    people(db)
    sha = store_recording(vault, db, b"evidence")["sha256"]
    assert cli(vault, "login", STATION_USER="li", STATION_PASSWORD="clerk-pass-1")[0] == 0
    path = tickets.ticket_path(vault)
    data = json.loads(path.read_text())
    data["user"] = "admin1"  # promote oneself by hand
    path.write_text(json.dumps(data))
    assert cli(vault, "devices", "revoke", "ZFY0001")[0] == 10
    assert tickets.read(vault)[1] == "forged"
    # a ticket whose boot-time end has passed (made with the real key: only time is wrong)
    key = tickets._key(vault, create=False)
    assert key is not None
    t = tickets.Ticket(
        "li", os.getuid(), tickets.clock.boot_id(), 1.0, data["password"], str(vault.home.resolve())
    )
    path.write_text(json.dumps({**t.body(), "mac": tickets._mac(key, t.body())}))
    assert tickets.read(vault)[1] == "expired"
    assert cli(vault, "recordings", "review", sha)[0] == 10
    # a ticket others may read is not used
    assert cli(vault, "login", STATION_USER="li", STATION_PASSWORD="clerk-pass-1")[0] == 0
    path.chmod(0o644)
    assert tickets.read(vault)[1] == "unsafe"


def test_service_identity_for_service_tasks_only(vault: Vault, db: sqlite_utils.Database) -> None:
    people(db)
    sha = store_recording(vault, db, b"evidence")["sha256"]
    code, out = cli(vault, "--service", "retention", "run")
    assert code == 0, out
    assert db.execute("select actor from retention_runs").fetchone()[0] == "station"
    # a person's act is never the service's
    assert cli(vault, "--service", "recordings", "hold", sha, "--reason", "x")[0] == 10
    assert cli(vault, "--service", "users", "disable", "li")[0] == 10
    assert not held(db, sha)
