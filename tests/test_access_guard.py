"""Role checks on the commands that change evidence records (R14): open while the station has
no accounts, enforced from the first account on, every refusal audited."""

from __future__ import annotations

import sqlite_utils
from click.testing import CliRunner

from station.access.users import create_user
from station.cli import main
from station.vault import Vault


def run(vault: Vault, user: str, *args: str, password: str | None = None) -> tuple[int, str]:
    env = {"STATION_USER": user}
    if password is not None:
        env["STATION_PASSWORD"] = password
    res = CliRunner().invoke(main, ["--home", str(vault.home), *args], env=env)
    return res.exit_code, res.output


def test_open_station_before_the_first_account(vault: Vault, db: sqlite_utils.Database) -> None:
    code, out = run(vault, "anyone", "cases", "create", "案-1", "--name", "测试")
    assert code == 0, out


def test_roles_enforced_once_accounts_exist(vault: Vault, db: sqlite_utils.Database) -> None:
    from station.catalog import write_txn

    with write_txn(db):
        create_user(db, "admin1", "admin", "admin-pass-1", actor="setup")
        create_user(db, "li", "clerk", "clerk-pass-1", actor="admin1")
        create_user(db, "wang", "officer", "officer-pass-1", actor="admin1")
    # an officer may not open a case
    code, out = run(
        vault, "wang", "cases", "create", "案-2", "--name", "x", password="officer-pass-1"
    )
    assert code == 10 and "无权" in out
    # nor may anyone without the right password
    code, out = run(vault, "li", "cases", "create", "案-2", "--name", "x", password="wrong")
    assert code == 10
    # a clerk with the password may
    code, out = run(vault, "li", "cases", "create", "案-2", "--name", "x", password="clerk-pass-1")
    assert code == 0, out
    # device enrolment is an admin's
    code, out = run(
        vault,
        "li",
        "devices",
        "enrol",
        "ZFY0001",
        "--officer",
        "100001",
        "--unit",
        "000000000001",
        password="clerk-pass-1",
    )
    assert code == 10
    events = [r[0] for r in db.execute("select event from audit_log order by seq")]
    assert events.count("access.denied") >= 2
    assert db.execute("select count(*) from cases").fetchone()[0] == 1
