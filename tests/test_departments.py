"""R6/R14: footage, cases and accounts belong to a department (科室); search and access are
scoped by it; the 调阅登记簿 lists every access. Real commands, real accounts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import sqlite_utils
from click.testing import CliRunner

from station.access.users import create_user
from station.catalog import write_txn
from station.cli import main
from station.vault import Vault
from tests.integrity_support import store_recording

PW = "correct horse 1"


def run(vault: Vault, user: str, *args: str) -> tuple[int, str]:
    env = {"STATION_USER": user, "STATION_PASSWORD": PW}
    res = CliRunner().invoke(main, ["--home", str(vault.home), "--user", user, *args], env=env)
    return res.exit_code, res.output


def ok(vault: Vault, user: str, *args: str) -> str:
    code, out = run(vault, user, *args)
    assert code == 0, out
    return out


def test_departments_scope_search_access_and_the_register(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    a = store_recording(vault, db, os.urandom(2000), seq=1, officer="100001")
    b = store_recording(vault, db, os.urandom(2100), seq=2, officer="100002")
    with write_txn(db):
        db.execute("insert or ignore into officers (officer_id, name) values ('100001', '张三')")
        db.execute("insert or ignore into officers (officer_id, name) values ('100002', '李四')")
        people = [("admin1", "admin"), ("li", "clerk"), ("zhou", "supervisor")]
        people += [("ma", "supervisor"), ("head", "supervisor"), ("wang", "officer")]
        for name, role in people:
            create_user(db, name, role, PW, actor="setup")
    # Accounts and officers in departments; the head has none (the whole unit).
    for user, dept in [("li", "市容科"), ("zhou", "市容科"), ("ma", "规划科"), ("wang", "市容科")]:
        ok(vault, "admin1", "departments", "set-user", user, dept)
    ok(vault, "li", "departments", "set-officer", "100001", "市容科")
    ok(vault, "li", "departments", "set-officer", "100002", "规划科")
    # A case in a department; a clerk may also tag a recording's own department.
    ok(vault, "li", "cases", "create", "规划罚〔2026〕2号", "--name", "违法建设",
       "--department", "规划科")  # fmt: skip
    listed = json.loads(ok(vault, "li", "departments", "list", "--json"))
    assert {d["department"] for d in listed} == {"市容科", "规划科"}

    # Search: the clerk of 市容科 finds only 市容科 footage; the head finds both.
    found = json.loads(ok(vault, "li", "recordings", "search", "--json"))
    assert [r["sha256"] for r in found] == [a["sha256"]] and found[0]["department"] == "市容科"
    everything = json.loads(ok(vault, "head", "recordings", "search", "--json"))
    assert {r["sha256"] for r in everything} == {a["sha256"], b["sha256"]}
    by_dept = json.loads(ok(vault, "head", "recordings", "search", "--department", "规划",
                            "--json"))  # fmt: skip
    assert [r["sha256"] for r in by_dept] == [b["sha256"]]
    # Listing and showing are scoped the same way; a look at another department's recording
    # is refused and audited (R14).
    listed = json.loads(ok(vault, "li", "recordings", "list", "--json"))
    assert [r["sha256"] for r in listed] == [a["sha256"]]
    assert len(json.loads(ok(vault, "head", "recordings", "list", "--json"))) == 2
    ok(vault, "li", "recordings", "show", a["sha256"][:12])
    code, out = run(vault, "li", "recordings", "show", b["sha256"][:12])
    assert code == 10 and "规划科" in out

    # Access: an officer of 市容科 may not ask for 规划科 footage (refused and audited) …
    code, out = run(vault, "wang", "access", "request", "--recording", b["sha256"],
                    "--reason", "核实")  # fmt: skip
    assert code == 10 and "规划科" in out
    assert (
        db.execute(
            "select count(*) from audit_log where event = 'access.out_of_department'"
        ).fetchone()[0]
        == 2  # the look by `recordings show` above, and this request
    )
    # … may ask for their own department's; 规划科's supervisor may not approve it, 市容科's may.
    req = json.loads(ok(vault, "wang", "access", "request", "--recording", a["sha256"],
                        "--reason", "案件复核 2026-3", "--json"))  # fmt: skip
    code, out = run(vault, "ma", "access", "approve", str(req["id"]))
    assert code == 10 and "市容科" in out
    ok(vault, "zhou", "access", "approve", str(req["id"]), "--valid-hours", "4")
    assert json.loads(ok(vault, "ma", "access", "list", "--json")) == []  # not 规划科's
    assert [r["id"] for r in json.loads(ok(vault, "head", "access", "list", "--json"))] == [
        req["id"]
    ]
    ok(vault, "wang", "access", "view", str(req["id"]))

    # The printable register shows every access: who, department, why, who approved, views.
    page = tmp_path / "register.html"
    ok(vault, "li", "access", "register", "-o", str(page))
    text = page.read_text("utf-8")
    for needed in ("调阅登记簿", "案件复核 2026-3", "wang", "市容科", "zhou", "同意", "查看"):
        assert needed in text, needed
    rows = json.loads(ok(vault, "li", "access", "register", "--json"))
    (row,) = rows
    assert row["department"] == "市容科" and row["decided_by"] == "zhou"
    assert row["views"] and row["views"][0].startswith("wang")
    code, out = run(vault, "wang", "access", "register")
    assert code == 10  # an officer does not read the register
