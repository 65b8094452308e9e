"""R9: a retention run proposes, a supervisor decides. The station command runs as a real
process under ``faketime`` with the clock moved months ahead, past the grace period."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlite_utils
from helpers_retention import add_recording

from station.cases import store
from station.vault import Vault

pytestmark = pytest.mark.skipif(shutil.which("faketime") is None, reason="needs faketime")


def ago(days: int) -> str:
    t = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def station(
    vault: Vault, days_ahead: int, *args: str, user: str = "王科长"
) -> subprocess.CompletedProcess[str]:
    """``station …`` as its own process, its clock ``days_ahead`` days in the future. A
    supervisor first vouches for that clock (``station clock trust``): moving the clock is this
    test's device, and the clock guard (tested in test_clock_guard.py) would rightly refuse a
    clock that jumped."""
    when = (dt.datetime.now(dt.UTC) + dt.timedelta(days=days_ahead)).strftime("%Y-%m-%d %H:%M:%S")
    env = {**os.environ, "TZ": "UTC", "STATION_HOME": str(vault.home)}

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["faketime", when, sys.executable, "-m", "station", "--user", user, *argv],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    trusted = run("clock", "trust", "--note", "测试：时钟已核对 / test clock")
    assert trusted.returncode == 0, trusted.stderr
    return run(*args)


def ok(res: subprocess.CompletedProcess[str]) -> dict:  # type: ignore[type-arg]
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def state(db: sqlite_utils.Database, sha: str) -> str:
    return str(db.execute("select state from recordings where sha256 = ?", [sha]).fetchone()[0])


def test_nothing_purged_without_a_supervisors_approval(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    routine = add_recording(vault, db, recorded_at=ago(400))  # tagged patrol: known routine
    second = add_recording(vault, db, recorded_at=ago(390))
    unclassified = add_recording(vault, db, recorded_at=ago(400), category=None)
    party = add_recording(vault, db, recorded_at=ago(400), category="enforcement")
    closed = add_recording(vault, db, recorded_at=ago(2500), category=None)
    store.create_case(
        db,
        "城管罚字〔2019〕1号",
        name="占道经营",
        actor="clerk",
        opened_at=dt.datetime(2019, 1, 1, tzinfo=dt.UTC),
    )
    store.link(db, "城管罚字〔2019〕1号", [closed], actor="clerk")
    store.close_case(
        db, "城管罚字〔2019〕1号", actor="clerk", closed_at=dt.datetime(2019, 6, 1, tzinfo=dt.UTC)
    )
    files = {s: vault.home / db["recordings"].get(s)["vault_path"] for s in (routine, second)}

    # A real run proposes the expired routine footage (and the closed case's), nothing else.
    first = ok(station(vault, 30, "retention", "run", "--json"))
    assert sorted(first["proposed"]) == sorted([routine, second, closed])
    assert first["pended"] == [] and first["purged"] == []
    # Supervisors are told: one open alert names how many wait (R9), shown with the others.
    alerts = ok(station(vault, 30, "devices", "alerts", "--json"))
    waiting = [a for a in alerts if a["code"] == "purge_proposed"]
    assert len(waiting) == 1 and waiting[0]["message"].startswith("3 段到期录像待负责人批准")
    summary = {
        x["label"]: x["value"]
        for x in ok(station(vault, 30, "report", "retention", "--json"))["summary"]
    }
    assert summary["待负责人批准清除 / proposed, awaiting a supervisor (R9)"] == 3
    assert summary["未分类，不按例行清除 / unclassified, never routine (R9)"] == 1
    dry = ok(station(vault, 30, "retention", "run", "--dry-run", "--json"))
    rules = {i["sha256"]: i["rule"] for i in dry["pend"]}
    assert unclassified not in rules and party not in rules  # never assumed routine
    # Months later — far past the grace period — still nothing is deleted: no one approved.
    for days in (60, 200):
        later = ok(station(vault, days, "retention", "run", "--json"))
        assert later["purged"] == [] and later["pended"] == [] and later["awaiting"] == 3
    assert all(p.is_file() for p in files.values())
    assert {state(db, s) for s in (routine, second, closed, unclassified, party)} == {"stored"}

    # A reason is required, and the decision is a supervisor's.
    res = station(vault, 201, "retention", "approve", routine)
    assert res.returncode != 0 and "--reason" in res.stderr
    approved = ok(
        station(
            vault, 201, "retention", "approve", routine, "--reason", "巡查录像无保存意义", "--json"
        )
    )
    assert approved["approved"] == [routine]
    rejected = ok(
        station(
            vault,
            201,
            "retention",
            "reject",
            second,
            closed,
            "--reason",
            "可能涉及投诉",
            "--keep-until",
            (dt.date.today() + dt.timedelta(days=400)).isoformat(),
            "--json",
        )
    )
    assert sorted(rejected["rejected"]) == sorted([second, closed])
    assert state(db, routine) == "pending_purge"

    # Past the grace period: only the approved recording goes; the tombstone names the approver.
    purge = ok(station(vault, 210, "retention", "run", "--json", user="station"))
    assert purge["purged"] == [routine] and purge["proposed"] == []
    assert not files[routine].exists() and files[second].is_file()
    tomb = db["tombstones"].get(routine)
    assert tomb["approved_by"] == "王科长" and tomb["purged_by"] == "station"
    assert tomb["approval_reason"] == "巡查录像无保存意义"
    listed = station(vault, 210, "retention", "tombstones")
    assert "王科长" in listed.stdout and "批准人" in listed.stdout
    # The rejected one is kept until the date given, then proposed again.
    again = ok(station(vault, 500, "retention", "run", "--json"))
    assert sorted(again["proposed"]) == sorted([second, closed])
    events = [r[0] for r in db.execute("select event from audit_log where subject = ?", [routine])]
    assert events[:4] == [
        "retention.proposed",
        "retention.approved",
        "retention.pending",
        "retention.proposal_pended",
    ]
    assert "retention.purged" in events
    # Every proposal, approval, rejection and tombstone is sealed: verify finds no protective
    # row edited, deleted or inserted (R7). (This test's recordings are raw catalog rows, not
    # ingested, so verify rightly notes them as unaudited; that is not what is checked here.)
    checked = station(vault, 500, "verify", "--json")
    found = json.loads(checked.stdout)["findings"]
    assert [f for f in found if f["code"].startswith("protected.")] == []


def test_approval_rechecks_and_needs_an_open_proposal(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    sha = add_recording(vault, db, recorded_at=ago(400))
    res = station(vault, 1, "retention", "approve", sha, "--reason", "x")
    assert res.returncode != 0 and "no open purge proposal" in res.stderr
    ok(station(vault, 1, "retention", "run", "--json"))
    # Linked to a case before the supervisor looks: the approval withdraws it (R10 keeps it).
    store.create_case(db, "应急 2026-7", name="检查", actor="clerk")
    store.link(db, "应急 2026-7", [sha], actor="clerk")
    out = ok(station(vault, 2, "retention", "approve", "--all", "--reason", "清理", "--json"))
    assert out["approved"] == [] and [w["sha256"] for w in out["withdrawn"]] == [sha]
    assert state(db, sha) == "stored"
