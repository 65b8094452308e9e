"""Custody in the inbox: a pass shares the vault with other runs, and removing verified files
is audited before the first unlink (DESIGN.md invariants 2 and 8, R7)."""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from custody_support import (
    errors_of,
    kill9,
    need_strace,
    query,
    run_station,
    station,
    verify,
    wait_for,
)
from test_inbox_support import inbox_settings, make_drop

from station.inbox.oneshot import run_once
from station.ingest import IngestProgress, engine
from station.vault import Vault
from station.verify.run import run_verify

SIDE = {"officer": "123456", "device": "CAM-07", "unit": "430400000000"}


def _old(folder: Path) -> None:
    """Make a drop look settled to a one-shot pass (mtime an hour ago)."""
    past = time.time() - 3600
    for p in folder.rglob("*"):
        os.utime(p, (past, past))


def test_cli_ingest_during_an_inbox_pass(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    """`station ingest` of the same files, started while an inbox pass has a copy staged and
    uncommitted: neither run loses or deletes the other's work; the inbox removes only files
    whose vault copy it proved (invariants 2 and 8)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    files = {f"F{i}.MP4": os.urandom(50_000) for i in range(4)}
    shas = make_drop(inbox, "d1", files, sidecar=SIDE)
    _old(inbox)
    same = tmp_path / "same"
    same.mkdir()
    for name, data in files.items():
        (same / name).write_bytes(data)
    reached, go = threading.Event(), threading.Event()

    def progress(p: IngestProgress) -> None:
        if p.files_done >= 1 and not go.is_set():
            reached.set()
            assert go.wait(120)

    ingest = functools.partial(engine.ingest_files, progress=progress)
    result: list[dict[str, Any]] = []
    settings = inbox_settings([inbox])
    t = threading.Thread(
        target=lambda: result.append(run_once(vault, settings, actor="inbox", ingest=ingest))
    )
    t.start()
    try:
        assert reached.wait(120)
        assert list(vault.staging.rglob("*.part"))
        code, _out, err = run_station(vault.home, "ingest", str(same), "--json")
        assert code == 0 and "Traceback" not in err, err
    finally:
        go.set()
        t.join(120)
    (out,) = result[0]["processed"]
    assert out["state"] == "done" and out["removed"] == 4, out
    assert not (inbox / "d1").exists()
    states = [r[0] for r in db.execute("select state from sessions order by id")]
    assert states == ["done", "done"]
    assert {r[0] for r in db.execute("select sha256 from recordings")} == set(shas.values())
    assert len([p for p in vault.originals.rglob("*") if p.is_file()]) == 4
    report = run_verify(vault, db, inbox_settings([inbox]))
    assert report.ok, report.counts()


@pytest.mark.slow
def test_kill9_between_removal_intent_and_unlinks(tmp_path: Path) -> None:
    """Kill -9 after the removal intent is committed, before the first unlink (each unlink is
    held back 5 s by strace): every file is still in the inbox and in the vault; the session
    shows the clearing unfinished and `station verify` reports the intent without result."""
    need_strace()
    home = tmp_path / "home"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    assert run_station(home, "init")[0] == 0
    (home / "station.toml").write_text(
        f'[inbox]\nfolders = ["{inbox}"]\nsettle_seconds = 0.5\n', encoding="utf-8"
    )
    files = {f"F{i}.MP4": os.urandom(30_000) for i in range(3)}
    make_drop(inbox, "d1", files, sidecar=SIDE)
    _old(inbox)
    p = station(
        home,
        "inbox",
        "rescan",
        strace=["-e", "inject=unlink:delay_enter=5000000"],
    )
    try:
        wait_for(
            "the removal intent",
            lambda: bool(query(home, "select 1 from audit_log where event='inbox.remove_intent'")),
            proc=p,
        )
    finally:
        kill9(p)
    assert sorted(x.name for x in (inbox / "d1").iterdir()) == [*sorted(files), "station.json"]
    assert len(query(home, "select sha256 from recordings")) == 3
    ((sid, clearing),) = query(home, "select id, clearing from sessions")
    assert clearing == "intent"
    report = verify(home)
    assert errors_of(report) == [], report["counts"]
    unfinished = [f for f in report["findings"] if f["code"] == "clear.unfinished"]
    assert len(unfinished) == 1 and unfinished[0]["subject"] == f"session:{sid}"
    assert sorted(f["path"] for f in unfinished[0]["data"]["files"]) == sorted(files)
    # the next start-up closes the clearing as interrupted, in the session and the audit log
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_station(home, "ingest", str(empty), "--json")[0] == 0
    ((clearing, message),) = query(
        home, "select clearing, message from sessions where id = ?", (sid,)
    )
    assert clearing == "interrupted" and "clearing interrupted" in message
    # a later pass finishes the job: the files are held, proven again, then removed
    code, out, err = run_station(home, "inbox", "rescan", "--json")
    assert code == 0, err
    assert not (inbox / "d1").exists()
    events = [r[0] for r in query(home, "select event from audit_log order by seq")]
    assert events.count("inbox.remove_intent") == 2 and events.count("inbox.removed") == 1
    assert json.loads(out)
