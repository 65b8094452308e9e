"""Custody at the dock: a recorder is cleared only against vault copies proven in this session,
and the intent to clear is audited before the first unlink (DESIGN.md invariant 2, R7). The
recorder's storage is a folder (no root) or, as root, an exFAT loop device (``docked``)."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from custody_support import run_station
from dock_support import is_root, make_recorder_volume, mass_storage_recorder
from test_dock_session import (
    SECRET,
    docked,  # noqa: F401 (a fixture, used by name)
    enrol,
    run_session,
    storage_kind,  # noqa: F401 (the fixture docked depends on)
)
from test_ingest_custody import _flip_byte

from station.config import Settings
from station.ingest import IngestContext, ingest_volume
from station.recorder.simconfig import SimConfig
from station.status import StatusBoard
from station.vault import Vault
from station.verify.run import run_verify


class PausingBoard(StatusBoard):
    """The dock's status board, which holds the session's copier after its first file (the
    copy staged, not yet committed) until the test lets it go."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reached = threading.Event()
        self.go = threading.Event()

    def update(self, slot: str, **fields: Any) -> None:
        super().update(slot, **fields)
        if fields.get("files_done", 0) >= 1 and not self.go.is_set():
            self.reached.set()
            assert self.go.wait(120)


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_redock_against_rotten_vault_copy_repairs_before_clearing(
    vault: Vault,
    db: sqlite_utils.Database,
    docked: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Flip one byte of a stored original, dock the same recorder again: the recorder's copy is
    the only good one. It is cleared only after the vault's file was replaced by this session's
    verified copy — never against the rotten file (invariant 2)."""
    content = make_recorder_volume(tmp_path / "rec", "ZFY0001", "100001")
    enrol(db, "ZFY0001", "100001")
    ingest_volume(vault, db, Settings(), content, IngestContext(kind="cli"), actor="t")
    sha, rel = db.execute("select sha256, vault_path from recordings limit 1").fetchone()
    _flip_byte(vault.home / rel)

    st = docked(SimConfig(serial="ZFY0001", secret=SECRET), content)
    out = run_session(vault, st)
    assert out.state == "done", out.flags
    # whatever was cleared has a good copy in the vault under its hash
    assert _sha(vault.home / rel) == sha
    assert len(out.cleared) == 3 and st.left() == {}
    for r in db.execute("select sha256, vault_path from recordings"):
        assert _sha(vault.home / r[1]) == r[0]
    assert (
        db.execute("select count(*) from audit_log where event = 'vault.repaired'").fetchone()[0]
        == 1
    )
    report = run_verify(vault, db, Settings())
    assert report.ok and report.counts().get("vault.repaired") == 1


def test_clearing_intent_is_audited_before_the_first_unlink(
    vault: Vault,
    db: sqlite_utils.Database,
    docked: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The intent (every file, with its hash) is committed before anything is deleted, and the
    per-file result names the intent (R7)."""
    content = make_recorder_volume(tmp_path / "rec", "ZFY0001", "100001")
    enrol(db, "ZFY0001", "100001")
    st = docked(SimConfig(serial="ZFY0001", secret=SECRET), content)
    out = run_session(vault, st)
    assert len(out.cleared) == 3
    rows = list(
        db.query(
            "select seq, event, data from audit_log where subject = ? order by seq",
            [f"session:{out.session_id}"],
        )
    )
    events = [r["event"] for r in rows]
    assert events.index("dock.clear_intent") < events.index("dock.cleared")
    import json

    intent = rows[events.index("dock.clear_intent")]
    result = json.loads(rows[events.index("dock.cleared")]["data"])
    listed = json.loads(intent["data"])["files"]
    assert sorted(f["path"] for f in listed) == sorted(result["files"])
    assert all(len(f["sha256"]) == 64 for f in listed)
    assert result["intent_seq"] == intent["seq"] and result["left"] == []
    row = db.execute(
        "select clearing, cleared from sessions where id = ?", [out.session_id]
    ).fetchone()
    assert tuple(row) == ("done", 3)


def test_cli_ingest_during_a_dock_session(
    vault: Vault,
    db: sqlite_utils.Database,
    docked: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """DESIGN.md invariant 8: `station ingest` started while a dock session is copying (its
    first file staged, uncommitted) must not reap the session's staging nor close it; both end
    well, each file is stored once and the recorder is cleared against proven copies."""
    content = make_recorder_volume(tmp_path / "rec", "ZFY0001", "100001", clips=4)
    enrol(db, "ZFY0001", "100001")
    st = docked(SimConfig(serial="ZFY0001", secret=SECRET), content)
    board = PausingBoard(vault.run / "status.json")
    result: list[Any] = []
    t = threading.Thread(target=lambda: result.append(run_session(vault, st, board=board)))
    t.start()
    try:
        assert board.reached.wait(120)
        assert list(vault.staging.rglob("*.part"))  # the session's copy, staged
        code, _out, err = run_station(vault.home, "ingest", str(content), "--json")
        assert code == 0 and "Traceback" not in err, err
    finally:
        board.go.set()
        t.join(120)
    out = result[0]
    assert out.state == "done", (out.flags, out.message)
    assert len(out.cleared) == 4 and st.left() == {}
    states = [r[0] for r in db.execute("select state from sessions order by id")]
    assert states == ["done", "done"]
    assert db.execute("select count(*) from recordings").fetchone()[0] == 4
    assert len([p for p in vault.originals.rglob("*") if p.is_file()]) == 4
    report = run_verify(vault, db, Settings())
    assert report.ok, report.counts()
    assert list(vault.staging.iterdir()) == []


@pytest.mark.root
def test_clearing_failing_part_way_records_what_went(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    """A recorder file that cannot be deleted (immutable) stops clearing part-way: the intent
    was audited first, and the result names each file that went and each that stayed; the
    session stores the real count, never 0 (R7)."""
    if not is_root():
        pytest.skip("needs root for chattr +i")
    import subprocess

    content = make_recorder_volume(tmp_path / "rec", "ZFY0001", "100001")
    vol, st = mass_storage_recorder(db, content, tmp_path / "ms")
    media = sorted(p for p in vol.rglob("*.MP4"))
    stuck = media[1]
    subprocess.run(["chattr", "+i", str(stuck)], check=True)
    try:
        out = run_session(vault, st)
    finally:
        subprocess.run(["chattr", "-i", str(stuck)], check=True)
    assert stuck.exists() and not media[0].exists()
    assert out.cleared == [str(media[0].relative_to(vol))]
    row = db.execute(
        "select cleared, clearing from sessions where id = ?", [out.session_id]
    ).fetchone()
    assert tuple(row) == (1, "done")
    result = db.execute(
        "select data from audit_log where event = 'dock.cleared' and subject = ?",
        [f"session:{out.session_id}"],
    ).fetchone()
    assert result is not None
    import json

    data = json.loads(result[0])
    assert data["files"] == out.cleared and str(stuck.relative_to(vol)) in data["left"]
    assert data["error"] and "device_error" in [f["code"] for f in out.flags]


_SESSION = """
import sys
from pathlib import Path
from station.config import Settings
from station.status import StatusBoard
from station.usb_dock import registry
from station.usb_dock.slots import SlotState
from station.usb_dock.session import DockSession
from station.usb_dock.slots import DeviceClaims, SlotState
from station.vault import Vault

vault = Vault(Path(sys.argv[1]))
st = SlotState("3-1", storage=sys.argv[2], fstype=None, recorder=True, driver="mass-storage",
               usb_serial="USB123")
st.storage_ready.set()
DockSession(vault, Settings(), st, StatusBoard(vault.run / "status.json"), DeviceClaims()).run()
"""


def test_kill9_between_clear_intent_and_unlinks(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    """A dock session in its own process, killed -9 after `dock.clear_intent` is committed and
    before its first unlink (strace holds every unlink 5 s): the recorder still has every file,
    the session shows the clearing unfinished, `station verify` reports the intent without result
    and the next start-up marks it interrupted (DESIGN.md invariant 2, R7)."""
    import subprocess
    import sys

    from custody_support import errors_of, kill9, need_strace, query, verify, wait_for

    from station.ingest import recover_at_startup
    from station.usb_dock.mount import is_mountpoint

    need_strace()
    content = make_recorder_volume(tmp_path / "rec", "ZFY0001", "100001")
    vol, _st = mass_storage_recorder(db, content, tmp_path / "ms")
    before = sorted(str(p.relative_to(vol)) for p in vol.rglob("*") if p.is_file())
    cmd = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "inject=unlink:delay_enter=5000000"]
    p = subprocess.Popen(
        [*cmd, sys.executable, "-c", _SESSION, str(vault.home), str(vol)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(
            "the clearing intent",
            lambda: bool(
                query(vault.home, "select 1 from audit_log where event = 'dock.clear_intent'")
            ),
            proc=p,
        )
    finally:
        kill9(p)
        mnt = vault.run / "mnt"
        for mp in mnt.iterdir() if mnt.is_dir() else []:
            if is_mountpoint(mp):
                subprocess.run(["umount", "-l", str(mp)], check=False)
    assert sorted(str(p.relative_to(vol)) for p in vol.rglob("*") if p.is_file()) == before
    ((sid, clearing, state),) = query(vault.home, "select id, clearing, state from sessions")
    assert (clearing, state) == ("intent", "running")
    report = verify(vault.home)
    assert errors_of(report) == [], report["counts"]
    unfinished = [f for f in report["findings"] if f["code"] == "clear.unfinished"]
    assert [f["subject"] for f in unfinished] == [f"session:{sid}"]
    assert recover_at_startup(vault, db)["sessions_interrupted"] == 1
    row = db.execute("select clearing, state, message from sessions").fetchone()
    assert row[0] == "interrupted" and row[1] == "interrupted" and "clearing" in row[2]
