"""Every act by a proven person (R7, R14): the README's command → role → how-proven table is
walked both ways. Every command of the CLI is in the table; every command with roles refuses an
unknown account, a disabled account, a too-junior account and the service identity (where it is
not a service task), each refusal audited and nothing else changed; every command without roles
changes no table when run by a stranger."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import pytest
import sqlite_utils
from click.testing import CliRunner

from station.access.commands import COMMAND_ROLES, SERVICE, markdown_table
from station.access.users import create_user, disable_user
from station.cli import main
from station.vault import Vault
from tests.integrity_support import store_recording

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
PASSWORDS = {
    "admin1": "admin-pass-1",
    "wang": "officer-pass-1",
    "li": "clerk-pass-1",
    "gone": "gone-pass-1",
}


def leaves(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    out: dict[str, click.Command] = {}
    for name, cmd in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(cmd, click.Group):
            out.update(leaves(cmd, path + " "))
        else:
            out[path] = cmd
    return out


COMMANDS = leaves(main)


def test_every_command_is_in_the_table_and_back() -> None:
    assert sorted(COMMANDS) == sorted(COMMAND_ROLES)


def test_readme_carries_the_table() -> None:
    m = re.search(r"<!-- roles:start -->\n(.*?)\n<!-- roles:end -->", README, re.S)
    assert m, "README has no role table: run .venv/bin/python scripts/readme_commands.py"
    assert m.group(1) == markdown_table(), "run .venv/bin/python scripts/readme_commands.py"


def filler(cmd: click.Command, where: Path) -> list[str]:
    """Arguments click accepts for ``cmd``: required ones filled by type. The role check comes
    before anything is looked up, so the values need not exist in the catalog."""
    args: list[str] = []
    opts: list[str] = []
    for p in cmd.params:
        if not p.required:
            continue
        t = p.type
        if isinstance(t, click.Choice):
            value = str(t.choices[0])
        elif isinstance(t, click.types.IntParamType | click.IntRange):
            value = "1"
        elif isinstance(t, click.Path):
            value = str(where)
        else:
            value = "a" * 64
        if isinstance(p, click.Argument):
            args.append(value)
        else:
            opts += [p.opts[0], value]
    return opts + args


def snapshot(db_path: Path) -> list[str]:
    """Every row of every table but the audit log (refusals are audit entries)."""
    db = sqlite_utils.Database(str(db_path))
    try:
        out = []
        for t in sorted(db.table_names()):
            if t in ("audit_log",):
                continue
            out.append(f"{t}: {sorted(map(repr, db.execute(f'select * from [{t}]').fetchall()))}")
        return out
    finally:
        db.close()


@pytest.fixture
def station(vault: Vault, db: sqlite_utils.Database, tmp_path: Path) -> dict[str, Any]:
    create_user(db, "admin1", "admin", PASSWORDS["admin1"], actor="setup")
    create_user(db, "wang", "officer", PASSWORDS["wang"], actor="admin1")
    create_user(db, "li", "clerk", PASSWORDS["li"], actor="admin1")
    create_user(db, "gone", "supervisor", PASSWORDS["gone"], actor="admin1")
    disable_user(db, "gone", actor="admin1")
    rec = store_recording(vault, db, b"evidence")
    folder = tmp_path / "somewhere"
    folder.mkdir()
    return {"sha": rec["sha256"], "folder": folder}


def invoke(
    vault: Vault, path: str, args: list[str], env: dict[str, str], service: bool = False
) -> tuple[int, str]:
    pre = ["--home", str(vault.home)] + (["--service"] if service else [])
    res = CliRunner().invoke(main, [*pre, *path.split(), *args], env=env)
    return res.exit_code, res.output


def refusals(db_path: Path) -> int:
    db = sqlite_utils.Database(str(db_path))
    try:
        return int(
            db.execute(
                "select count(*) from audit_log where event in ('access.login_failed',"
                " 'access.denied', 'access.unproven', 'access.ticket_refused')"
            ).fetchone()[0]
        )
    finally:
        db.close()


GUARDED = sorted(c for c, (roles, _) in COMMAND_ROLES.items() if roles)
OPEN = sorted(c for c, (roles, _) in COMMAND_ROLES.items() if not roles)


@pytest.mark.parametrize("path", GUARDED)
def test_guarded_command_refuses_and_audits(
    vault: Vault, db: sqlite_utils.Database, station: dict[str, Any], path: str
) -> None:
    roles, _ = COMMAND_ROLES[path]
    args = filler(COMMANDS[path], station["folder"])
    before = snapshot(vault.catalog_path)
    tries: list[tuple[str, dict[str, str], bool]] = [
        ("unknown account", {"STATION_USER": "ghost", "STATION_PASSWORD": "whatever1"}, False),
        (
            "disabled account",
            {"STATION_USER": "gone", "STATION_PASSWORD": PASSWORDS["gone"]},
            False,
        ),
        ("wrong password", {"STATION_USER": "admin1", "STATION_PASSWORD": "not-it-123"}, False),
        ("no proof at all", {"STATION_USER": "admin1"}, False),
    ]
    junior = "wang" if "officer" not in roles else None
    if junior:
        tries.append(
            ("too junior", {"STATION_USER": junior, "STATION_PASSWORD": PASSWORDS[junior]}, False)
        )
    if SERVICE not in roles:
        tries.append(("service identity", {"STATION_USER": "admin1"}, True))
    else:
        tries.append(
            (
                "a person's password for a service-only task",
                {"STATION_USER": "admin1", "STATION_PASSWORD": PASSWORDS["admin1"]},
                False,
            )
            if roles == (SERVICE,)
            else ("nothing", {}, False)
        )
    db.close()
    for what, env, service in tries:
        if what == "nothing":
            continue
        n = refusals(vault.catalog_path)
        code, out = invoke(vault, path, args, env, service)
        assert code == 10, f"{path} by {what}: exit {code}\n{out}"
        assert refusals(vault.catalog_path) == n + 1, f"{path} by {what}: refusal not audited"
    assert snapshot(vault.catalog_path) == before, f"{path}: something changed"


BLOCKING = ("demo", "sim recorder", "web")  # serve until stopped; `login` proves a password


@pytest.mark.parametrize("path", [c for c in OPEN if c not in (*BLOCKING, "login")])
def test_command_without_roles_changes_nothing(
    vault: Vault, db: sqlite_utils.Database, station: dict[str, Any], path: str
) -> None:
    args = filler(COMMANDS[path], station["folder"])
    db.close()
    before = snapshot(vault.catalog_path)
    code, out = invoke(vault, path, args, {"STATION_USER": "ghost"})
    assert code != 10, out
    assert snapshot(vault.catalog_path) == before, f"{path} changed the catalog\n{out}"
