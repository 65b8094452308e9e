"""Accounts, passwords and roles (R14): the CLI acts as --user, checks the password (scrypt)
and the role, and leaves an audit entry for every refusal."""

from __future__ import annotations

import json
import sqlite3

import pytest
import sqlite_utils
from click.testing import CliRunner

from station.access.users import authenticate, check_password, create_user, hash_password
from station.cli import main
from station.errors import PermissionDenied, StationError
from station.vault import Vault

PW = "correct horse 1"


def run(vault: Vault, user: str, *args: str, password: str | None = PW, new: str | None = None):  # type: ignore[no-untyped-def]
    env = {"STATION_USER": user}
    env["STATION_PASSWORD"] = password  # type: ignore[assignment]
    if new is not None:
        env["STATION_NEW_PASSWORD"] = new
    return CliRunner().invoke(main, ["--home", str(vault.home), "--user", user, *args], env=env)


def events(db: sqlite_utils.Database) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in db.execute("select event, actor from audit_log order by seq")]


def test_password_hash_is_scrypt_salted_and_checked() -> None:
    h1, h2 = hash_password(PW), hash_password(PW)
    assert h1.startswith("scrypt$16384$8$1$") and h1 != h2 and PW not in h1
    assert check_password(PW, h1) and not check_password(PW + "x", h1)
    assert not check_password(PW, "md5$abc")


def test_bootstrap_admin_then_roles_enforced(vault: Vault, db: sqlite_utils.Database) -> None:
    # No account yet: the first one must be an admin, and needs no login.
    r = run(vault, "root", "users", "add", "li", "--role", "clerk", new=PW)
    assert r.exit_code == 1 and "first account must be an admin" in r.output
    r = run(vault, "root", "users", "add", "admin1", "--role", "admin", new=PW, password=None)
    assert r.exit_code == 0, r.output
    # From now on only an authenticated admin adds accounts.
    r = run(vault, "admin1", "users", "add", "wang", "--role", "officer", "--json", new=PW)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"name": "wang", "role": "officer"}
    r = run(vault, "wang", "users", "add", "zhao", "--role", "admin", new=PW)
    assert r.exit_code == 10
    assert "may not do this" in r.output and "无权执行" in r.output
    assert ("access.denied", "wang") in events(db)
    stored = db.execute("select password_hash from users where name = 'wang'").fetchone()[0]
    assert PW not in stored and check_password(PW, stored)


def test_wrong_password_unknown_user_and_missing_password(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    create_user(db, "admin1", "admin", PW, actor="test")
    r = run(vault, "admin1", "users", "list", password="wrong password")
    assert r.exit_code == 10 and "wrong user name or password" in r.output
    r = run(vault, "ghost", "users", "list")
    assert r.exit_code == 10 and "用户名或密码错误" in r.output
    r = run(vault, "admin1", "users", "list", password=None)  # no tty, no env: refused
    assert r.exit_code == 10 and "password required" in r.output
    failed = [a for e, a in events(db) if e == "access.login_failed"]
    assert failed == ["admin1", "ghost"]
    r = run(vault, "admin1", "users", "list", "--json")
    assert r.exit_code == 0 and [u["name"] for u in json.loads(r.stdout)] == ["admin1"]


def test_disabled_account_and_password_change(vault: Vault, db: sqlite_utils.Database) -> None:
    create_user(db, "admin1", "admin", PW, actor="test")
    create_user(db, "wang", "officer", PW, actor="admin1")
    assert run(vault, "wang", "users", "passwd", new="short").exit_code == 1  # too short
    r = run(vault, "wang", "users", "passwd", new="a new long one")
    assert r.exit_code == 0, r.output
    with pytest.raises(PermissionDenied):
        authenticate(db, "wang", PW)
    assert authenticate(db, "wang", "a new long one").role == "officer"
    # An officer cannot reset someone else's password.
    assert run(vault, "wang", "users", "passwd", "admin1", password="a new long one",
               new="hijacked pw 1").exit_code == 10  # fmt: skip
    assert run(vault, "admin1", "users", "disable", "wang").exit_code == 0
    with pytest.raises(PermissionDenied):
        authenticate(db, "wang", "a new long one")
    assert db.execute("select count(*) from users where name = 'wang'").fetchone()[0] == 1
    assert ("users.disabled", "admin1") in events(db)


def test_bad_account_input(db: sqlite_utils.Database) -> None:
    with pytest.raises(StationError, match="unknown role"):
        create_user(db, "x", "chief", PW, actor="t")
    with pytest.raises(StationError, match="one word"):
        create_user(db, "two words", "clerk", PW, actor="t")
    create_user(db, "x", "clerk", PW, actor="t")
    with pytest.raises(StationError, match="exists already"):
        create_user(db, "x", "clerk", PW, actor="t")
    with pytest.raises(sqlite3.IntegrityError):  # the schema refuses a role it does not know
        db.execute(
            "insert into users (name, role, password_hash, created_at, created_by)"
            " values ('y', 'god', 'h', 'now', 't')"
        )
