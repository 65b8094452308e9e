"""Spot checks (R16): a seeded draw recorded in the audit log and repeatable from it, and an
append-only ledger of results."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest
import sqlite_utils
from click.testing import CliRunner

from station.access.users import create_user
from station.cli import main
from station.spotcheck.ledger import draw, population_digest
from station.vault import Vault
from tests.integrity_support import store_recording

PW = "correct horse 1"


def run(vault: Vault, user: str, *args: str):  # type: ignore[no-untyped-def]
    env = {"STATION_USER": user, "STATION_PASSWORD": PW}
    return CliRunner().invoke(main, ["--home", str(vault.home), "--user", user, *args], env=env)


@pytest.fixture
def setup(vault: Vault, db: sqlite_utils.Database) -> list[dict]:
    create_user(db, "zhou", "supervisor", PW, actor="setup")
    create_user(db, "wang", "officer", PW, actor="setup")
    rows = [
        store_recording(vault, db, os.urandom(2000 + i), seq=i,
                        officer="000123" if i % 2 else "000456")
        for i in range(1, 13)
    ]  # fmt: skip
    return rows


def test_draw_is_a_pure_function_of_population_and_seed() -> None:
    pop = [f"{i:064x}" for i in range(50)]
    a = draw(pop, 5, "seed-1")
    assert a == draw(list(reversed(pop)), 5, "seed-1")  # order of the population is irrelevant
    assert a != draw(pop, 5, "seed-2")
    assert len(set(a)) == 5 and set(a) <= set(pop)
    assert draw(pop[:3], 10, "s") == draw(pop[:3], 10, "s") and len(draw(pop[:3], 10, "s")) == 3
    assert population_digest(pop) == population_digest(list(reversed(pop)))


def test_draw_record_report_and_replay(
    vault: Vault, db: sqlite_utils.Database, setup: list[dict]
) -> None:
    assert run(vault, "wang", "spotcheck", "draw", "--n", "3").exit_code == 10  # officer
    r = run(vault, "zhou", "spotcheck", "draw", "--n", "4", "--officer", "000123", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["population"] == 6 and len(d["items"]) == 4
    officers = {row["sha256"]: row["officer_id"] for row in setup}
    assert {officers[i["sha256"]] for i in d["items"]} == {"000123"}
    # The draw is in the audit log with its seed, and repeats from it.
    entry = db.execute(
        "select actor, data from audit_log where event = 'spotcheck.drawn'"
    ).fetchone()
    data = json.loads(entry[1])
    assert entry[0] == "zhou" and data["seed"] == d["seed"]
    assert data["chosen"] == [i["sha256"] for i in d["items"]]
    rep = run(vault, "wang", "spotcheck", "replay", str(d["draw"]), "--json")
    assert json.loads(rep.stdout)["reproduced"] is True
    # Results: "problem" needs a note; the ledger shows the latest result per item.
    first, second = d["items"][0]["item"], d["items"][1]["item"]
    bad = run(vault, "zhou", "spotcheck", "record", str(first), "--result", "problem")
    assert bad.exit_code == 1 and "请填写问题说明" in bad.output
    assert run(vault, "zhou", "spotcheck", "record", str(first), "--result", "problem",
               "--note", "未按规定告知录音录像").exit_code == 0  # fmt: skip
    assert run(vault, "zhou", "spotcheck", "record", str(second), "--result", "ok").exit_code == 0
    assert run(vault, "wang", "spotcheck", "record", str(second), "--result", "ok").exit_code == 10
    assert run(vault, "zhou", "spotcheck", "record", "999", "--result", "ok").exit_code == 5
    rep = run(vault, "zhou", "report", "spotchecks", "--json")
    assert rep.exit_code == 0, rep.output
    ledger = json.loads(rep.stdout)
    assert [x["result"] for x in ledger] == ["problem", "ok", None, None]
    assert ledger[0]["note"] == "未按规定告知录音录像" and ledger[0]["checked_by"] == "zhou"
    table = run(vault, "zhou", "report", "spotchecks")
    assert "有问题 / problem" in table.output and "未查 / pending" in table.output
    recorded = db.execute("select count(*) from audit_log where event = 'spotcheck.recorded'")
    assert recorded.fetchone()[0] == 2


def test_ledger_is_append_only_and_a_tampered_draw_does_not_replay(
    vault: Vault, db: sqlite_utils.Database, setup: list[dict]
) -> None:
    r = run(vault, "zhou", "spotcheck", "draw", "--n", "3", "--seed", "fixed", "--json")
    d = json.loads(r.stdout)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("update spotcheck_items set sha256 = 'x' where draw_id = ?", [d["draw"]])
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("delete from spotcheck_draws")
    # Someone swaps a drawn recording for another one behind the station's back.
    chosen = {i["sha256"] for i in d["items"]}
    other = next(row["sha256"] for row in setup if row["sha256"] not in chosen)
    conn = sqlite3.connect(vault.catalog_path)
    conn.execute("drop trigger spotcheck_items_no_update")
    conn.execute(
        "update spotcheck_items set sha256 = ? where id = ?", [other, d["items"][0]["item"]]
    )
    conn.commit()
    conn.close()
    rep = run(vault, "zhou", "spotcheck", "replay", str(d["draw"]))
    assert "NOT reproduced" in rep.output


def test_draw_with_no_population(vault: Vault, db: sqlite_utils.Database, setup) -> None:
    r = run(vault, "zhou", "spotcheck", "draw", "--n", "2", "--officer", "nobody")
    assert r.exit_code == 1 and "没有符合条件的录像" in r.output
