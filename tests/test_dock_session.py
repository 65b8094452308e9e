"""Dock sessions end to end without udev: a simulated recorder on a real pty, the real ingest
engine (R3, R4, R7). The recorder's storage is either a folder used in place
(``DirectoryMounter``: no root needed) or, as root, an exFAT image on a real loop device mounted
read-only through FUSE (``SystemMounter``): every test using ``docked`` runs both ways."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from dock_support import (
    exfat_loop,
    files_of,
    is_root,
    make_recorder_volume,
    mass_storage_recorder,
    read_loop,
    sim_recorder,
)

from station.config import Settings
from station.recorder.simconfig import SimConfig
from station.status import StatusBoard
from station.timeutil import local_naive_to_utc, parse_iso
from station.usb_dock import registry
from station.usb_dock.mount import DirectoryMounter, Mounter
from station.usb_dock.session import DockSession, Outcome
from station.usb_dock.slots import DeviceClaims, SlotState
from station.vault import Vault

SECRET = bytes(range(32))
TZ = "Asia/Shanghai"


@pytest.fixture(scope="module")
def clips_a(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_recorder_volume(tmp_path_factory.mktemp("a"), "ZFY0001", "100001")


@pytest.fixture(scope="module")
def clips_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_recorder_volume(tmp_path_factory.mktemp("b"), "ZFY0002", "100002", clips=4)


def enrol(db: sqlite_utils.Database, device: str, officer: str) -> None:
    registry.enrol(
        db,
        device,
        officer_id=officer,
        unit_id="110101000001",
        actor="admin",
        officer_name="张三",
        secret=SECRET,
    )


def run_session(
    vault: Vault,
    st: SlotState,
    claims: DeviceClaims | None = None,
    board: StatusBoard | None = None,
    settings: Settings | None = None,
    clock: Any = None,
) -> Outcome:
    board = board or StatusBoard(vault.run / "status.json")
    mounter: Mounter | None = getattr(st, "mounter", None)
    extra = {"clock": clock} if clock is not None else {}
    return DockSession(
        vault,
        settings or Settings(),
        st,
        board,
        claims or DeviceClaims(),
        mounter=mounter,
        **extra,
    ).run()


def session_row(db: sqlite_utils.Database, sid: int) -> dict[str, Any]:
    return dict(next(db.query("select * from sessions where id = ?", [sid])))


@pytest.fixture(
    params=[
        pytest.param("folder", id="folder"),
        pytest.param("exfat", id="exfat-loop", marks=pytest.mark.root),
    ]
)
def storage_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "exfat" and not is_root():
        pytest.skip("needs root for loop devices and mounts")
    return str(request.param)


@pytest.fixture
def docked(tmp_path: Path, storage_kind: str) -> Iterator[Any]:
    """Dock helper: (sim config, volume folder) -> SlotState with a pty and the storage (a copy
    of the folder, or an exFAT loop device). ``st.left()`` reads what is on the storage now."""
    stack: list[Any] = []

    def dock(cfg: SimConfig, content: Path, slot: str = "1-1") -> SlotState:
        if storage_kind == "exfat":
            loop_cm = exfat_loop(tmp_path, content)
            storage = loop_cm.__enter__()
            stack.append(loop_cm)
        else:
            storage = str(tmp_path / f"storage-{len(stack)}")
            shutil.copytree(content, storage)
        sim_cm = sim_recorder(cfg)
        rec, port = sim_cm.__enter__()
        stack.append(sim_cm)
        st = SlotState(
            slot, tty=port, storage=storage, fstype="exfat", recorder=True, driver="serial"
        )
        st.storage_ready.set()
        st.sim = rec  # type: ignore[attr-defined]
        st.loop = storage  # type: ignore[attr-defined]
        if storage_kind == "exfat":
            st.left = lambda: read_loop(storage, tmp_path)  # type: ignore[attr-defined]
        else:
            st.mounter = DirectoryMounter()  # type: ignore[attr-defined]
            st.left = lambda: files_of(Path(storage))  # type: ignore[attr-defined]
        return st

    yield dock
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


def test_healthy_recorder_is_ingested_checked_and_cleared(
    vault: Vault, db: sqlite_utils.Database, docked: Any, clips_a: Path, tmp_path: Path
) -> None:
    enrol(db, "ZFY0001", "100001")
    st = docked(SimConfig(serial="ZFY0001", secret=SECRET, drift_s=0.4), clips_a)
    board = StatusBoard(vault.run / "status.json")
    out = run_session(vault, st, board=board)
    assert out.state == "done", out.flags
    assert out.flags == []
    assert out.report is not None and out.report.count("new") == 3
    assert len(out.cleared) == 3
    # The recorder's storage now holds nothing that was verified (invariant 2).
    assert st.left() == {}
    row = session_row(db, out.session_id)
    assert row["state"] == "done" and row["battery_pct"] == 87 and row["safe_to_undock"] == 1
    assert row["device_id"] == "ZFY0001" and row["officer_id"] == "100001"
    assert row["storage_total"] == 32 * 1000**3 and row["cleared"] == 3
    assert abs(row["drift_s"] - 0.4) < 0.3  # R3
    assert st.sim.clock_sets and abs(st.sim.drift_s) < 0.5  # device clock set
    status = json.loads((vault.run / "status.json").read_text())
    (slot,) = status["slots"]
    assert slot["safe_to_undock"] and slot["phase"] == "done" and slot["files_done"] == 3
    assert not (vault.run / "mnt" / "1-1").exists()  # unmounted
    events = [r[0] for r in db.execute("select event from audit_log")]
    assert "dock.cleared" in events and events[-1] == "session.ended"


def test_drift_and_low_battery_are_flagged_and_times_corrected(
    vault: Vault, db: sqlite_utils.Database, docked: Any, clips_b: Path
) -> None:
    enrol(db, "ZFY0002", "100002")
    st = docked(
        SimConfig(
            serial="ZFY0002", officer_id="100002", secret=SECRET, drift_s=40.0, battery_pct=9
        ),
        clips_b,
    )
    out = run_session(vault, st)
    assert out.state == "done"
    codes = [f["code"] for f in out.flags]
    assert codes == ["battery_low", "clock_drift"]
    assert "9%" in out.flags[0]["message"] and "+40" in out.flags[1]["message"]
    rows = list(db.query("select * from recordings where device_id = 'ZFY0002'"))
    assert len(rows) == 4
    for r in rows:
        assert abs(r["drift_s"] - 40.0) < 0.5  # stored with every file (R3)
        dev = dt.datetime.strptime(r["original_name"].split("_")[2], "%Y%m%d%H%M%S")
        corrected = parse_iso(r["recorded_at"])
        assert abs((local_naive_to_utc(dev, TZ) - corrected).total_seconds() - 40.0) < 0.5


def test_unenrolled_recorder_is_never_mounted(
    vault: Vault, db: sqlite_utils.Database, docked: Any, clips_a: Path, tmp_path: Path
) -> None:
    st = docked(SimConfig(serial="ZFY0001", secret=SECRET), clips_a)
    out = run_session(vault, st)
    assert out.state == "refused" and next(f["code"] for f in out.flags) == "unknown_device"
    assert not (vault.run / "mnt").exists()  # invariant 5
    assert not st.sim.storage_mode and not st.sim.clock_sets
    assert st.left() == files_of(clips_a)
    (alert,) = registry.list_alerts(db)
    assert alert["code"] == "unknown_device" and alert["device_id"] == "ZFY0001"
    devs = registry.list_devices(db)
    assert devs[0]["device_id"] == "ZFY0001" and devs[0]["enrolled"] == 0  # listed for enrolment


def test_clone_failing_authentication_is_refused(
    vault: Vault, db: sqlite_utils.Database, docked: Any, clips_a: Path
) -> None:
    enrol(db, "ZFY0001", "100001")
    st = docked(SimConfig(serial="ZFY0001", secret=SECRET, faults=frozenset({"bad-auth"})), clips_a)
    out = run_session(vault, st)
    assert out.state == "refused" and "auth_failed" in [f["code"] for f in out.flags]
    assert not st.sim.storage_mode
    assert db.execute("select count(*) from recordings").fetchone()[0] == 0
    assert registry.list_alerts(db)[0]["code"] == "auth_failed"


def test_officer_mismatch_is_flagged(
    vault: Vault, db: sqlite_utils.Database, docked: Any, clips_a: Path
) -> None:
    enrol(db, "ZFY0001", "100009")
    st = docked(SimConfig(serial="ZFY0001", secret=SECRET), clips_a)
    out = run_session(vault, st)
    assert "officer_mismatch" in [f["code"] for f in out.flags]
    assert "100001" in out.flags[0]["message"] and "100009" in out.flags[0]["message"]


def test_implausible_clock_is_flagged_and_not_used(
    vault: Vault, db: sqlite_utils.Database, docked: Any, clips_a: Path
) -> None:
    enrol(db, "ZFY0001", "100001")
    st = docked(
        SimConfig(serial="ZFY0001", secret=SECRET, faults=frozenset({"clock-2000"})), clips_a
    )
    out = run_session(vault, st)
    assert out.state == "done" and [f["code"] for f in out.flags] == ["clock_implausible"]
    row = session_row(db, out.session_id)
    assert row["drift_s"] < -86400 * 365 * 20 and row["device_clock"].startswith("2000-01-01")
    drifts = {r[0] for r in db.execute("select drift_s from recordings")}
    assert drifts == {None}  # file times not "corrected" by 26 years


def test_pulled_out_mid_copy_clears_nothing_and_resumes(
    vault: Vault, db: sqlite_utils.Database, docked: Any, clips_b: Path, tmp_path: Path
) -> None:
    enrol(db, "ZFY0002", "100002")
    st = docked(SimConfig(serial="ZFY0002", officer_id="100002", secret=SECRET), clips_b)
    board = StatusBoard(vault.run / "status.json")

    def pull(b: StatusBoard) -> None:
        slot = b.slots.get("1-1", {})
        if slot.get("files_done", 0) >= 1 and not st.gone.is_set():
            st.gone.set()
            st.halt.set()

    board.listeners.append(pull)
    out = run_session(vault, st, board=board)
    assert out.state == "interrupted" and out.cleared == []
    assert "interrupted" in [f["code"] for f in out.flags]
    assert st.left() == files_of(clips_b)  # nothing cleared
    stored = db.execute("select count(*) from recordings").fetchone()[0]
    assert 1 <= stored < 4
    # Docked again: the rest is ingested, nothing is copied twice, then all is cleared.
    st2 = SlotState(
        "1-1", tty=st.tty, storage=st.loop, fstype="exfat", recorder=True, driver="serial"
    )
    st2.storage_ready.set()
    st2.mounter = getattr(st, "mounter", None)  # type: ignore[attr-defined]
    out2 = run_session(vault, st2)
    assert out2.state == "done" and out2.report is not None
    assert out2.report.count("held") == stored and out2.report.count("new") == 4 - stored
    assert len(out2.cleared) == 4 and st.left() == {}


def test_two_recorders_claiming_one_id(
    vault: Vault, db: sqlite_utils.Database, docked: Any, clips_a: Path
) -> None:
    enrol(db, "ZFY0001", "100001")
    claims = DeviceClaims()
    first = SlotState("1-2")
    assert claims.claim("ZFY0001", first) is None  # docked and busy in slot 1-2
    st = docked(SimConfig(serial="ZFY0001", secret=SECRET), clips_a)
    out = run_session(vault, st, claims=claims)
    assert out.state == "refused" and "duplicate_id" in [f["code"] for f in out.flags]
    assert "1-2" in out.flags[0]["message"] and not st.sim.storage_mode
    assert claims.holders["ZFY0001"] is first  # the other slot keeps its claim


def test_unknown_usb_stick_is_not_mounted(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    stick = tmp_path / "stick"
    stick.mkdir()
    (stick / "photo.jpg").write_bytes(b"x" * 100)
    st = SlotState("2-1", storage=str(stick), fstype="vfat", recorder=False, usb_serial="ABC")
    st.storage_ready.set()
    out = run_session(vault, st)
    assert out.state == "refused" and out.flags[0]["code"] == "unknown_device"
    assert not (vault.run / "mnt").exists() and (stick / "photo.jpg").exists()
    assert registry.list_alerts(db)[0]["slot"] == "2-1"


def test_silent_recorder_fails_the_session_only(
    vault: Vault, db: sqlite_utils.Database, docked: Any, clips_a: Path
) -> None:
    enrol(db, "ZFY0001", "100001")
    st = docked(SimConfig(serial="ZFY0001", secret=SECRET, faults=frozenset({"silent"})), clips_a)
    settings = Settings()
    settings.dock.serial_timeout_s = 0.3
    out = run_session(vault, st, settings=settings)
    assert out.state == "failed" and out.flags[0]["code"] == "device_error"
    assert "no reply" in out.flags[0]["message"]
    assert [a["code"] for a in registry.list_alerts(db)] == ["device_error"]  # R4: reported
    assert session_row(db, out.session_id)["safe_to_undock"] == 1


def test_mass_storage_recorder_by_usb_serial(
    vault: Vault, db: sqlite_utils.Database, clips_a: Path, tmp_path: Path
) -> None:
    vol, st = mass_storage_recorder(db, clips_a, tmp_path / "ms")
    # its "storage" is a folder on this host's disk, whose fullness is not the recorder's
    settings = Settings()
    settings.dock.storage_full_pct = 100
    out = run_session(vault, st, settings=settings)
    assert out.state == "done"
    assert {f["code"] for f in out.flags} == {"battery_unknown", "clock_unknown"}  # R3: unknown
    row = session_row(db, out.session_id)
    assert row["battery_pct"] is None and row["drift_s"] is None and row["officer_id"] == "100001"
    assert files_of(vol) == {}  # cleared after verify
    _ = threading  # keep import for type checkers


@pytest.mark.root
def test_vault_full_mid_session_clears_only_what_was_stored(
    tmp_path: Path, docked: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vault on a real, small ext4 file system fills up during the copy."""
    from dock_support import sh

    if not is_root():
        pytest.skip("needs root for a loop device (the small vault)")
    img, mnt = tmp_path / "vault.img", tmp_path / "vaultfs"
    with open(img, "wb") as f:
        f.truncate(4 * 1024 * 1024)
    sh("mkfs.ext4", "-q", "-F", "-m", "0", str(img))
    loop = sh("losetup", "-f", "--show", str(img)).strip()
    mnt.mkdir()
    sh("mount", loop, str(mnt))
    try:
        vault = Vault(mnt / "home")
        monkeypatch.setenv("STATION_HOME", str(vault.home))
        vault.init()
        from station.catalog import open_catalog

        db = open_catalog(vault.catalog_path)
        enrol(db, "ZFY0001", "100001")
        content = tmp_path / "big"
        day = content / "DCIM" / "20261121"
        day.mkdir(parents=True)
        for i in range(1, 6):  # 5 x 900 KB of noise; the vault has room for about 3
            name = f"ZFY0001_100001_20261121{10 + i:02d}0000_{i:04d}.MP4"
            (day / name).write_bytes(os.urandom(900_000))
        st = docked(SimConfig(serial="ZFY0001", secret=SECRET), content)
        out = run_session(vault, st)
        assert out.state == "failed" and "vault_full" in [f["code"] for f in out.flags]
        stored = {r[0] for r in db.execute("select original_name from recordings")}
        assert 1 <= len(stored) < 5
        left = st.left()
        # Exactly the stored files were cleared; everything else is still on the recorder.
        assert {Path(p).name for p in left} == {p.name for p in day.iterdir()} - stored
        assert sorted(Path(c).name for c in out.cleared) == sorted(stored)
        assert list(vault.staging.iterdir()) == []
        assert session_row(db, out.session_id)["safe_to_undock"] == 1
        assert [a["code"] for a in registry.list_alerts(db)] == ["vault_full"]
        db.close()
    finally:
        sh("umount", str(mnt))
        sh("losetup", "-d", loop)


def test_serial_link_dropping_after_storage_mode_is_harmless(
    vault: Vault, db: sqlite_utils.Database, docked: Any, clips_a: Path, tmp_path: Path
) -> None:
    """Some recorders drop the control link once they present their storage."""
    enrol(db, "ZFY0001", "100001")
    st = docked(
        SimConfig(serial="ZFY0001", secret=SECRET, faults=frozenset({"disconnect"})), clips_a
    )
    out = run_session(vault, st)
    assert out.state == "done" and out.flags == [] and len(out.cleared) == 3
    assert st.left() == {}


def test_recorder_giving_two_ids_is_failed_not_mounted(
    vault: Vault, db: sqlite_utils.Database, docked: Any, clips_a: Path
) -> None:
    enrol(db, "ZFY0001", "100001")
    st = docked(SimConfig(serial="ZFY0001", secret=SECRET, faults=frozenset({"wrong-id"})), clips_a)
    out = run_session(vault, st)
    assert out.state == "failed" and "two ids" in out.flags[0]["message"]
    assert not st.sim.storage_mode and not (vault.run / "mnt").exists()


def test_the_session_takes_its_clock_from_the_daemon(
    vault: Vault, db: sqlite_utils.Database, docked: Any, clips_a: Path
) -> None:
    """The time the recorder is set to (R3) and the session's own times come from the injected
    clock, not from the host's."""
    enrol(db, "ZFY0001", "100001")
    st = docked(SimConfig(serial="ZFY0001", secret=SECRET, drift_s=3.0), clips_a)
    fixed = dt.datetime(2026, 11, 21, 4, 30, 0, tzinfo=dt.UTC)
    out = run_session(vault, st, clock=lambda: fixed)
    assert out.state == "done"
    assert st.sim.clock_sets == ["2026-11-21T12:30:00.000"]  # Beijing time of the clock
    row = session_row(db, out.session_id)
    assert (
        row["started_at"].startswith("2026-11-21T04:30:00") and row["ended_at"] == row["started_at"]
    )


def test_device_in_repair_is_refused_at_the_dock(
    vault: Vault, db: sqlite_utils.Database, docked: Any, clips_a: Path, tmp_path: Path
) -> None:
    """R4: a device handed in for repair (送修) is refused with a clear flag, never mounted."""
    from click.testing import CliRunner

    from station.cli import main

    enrol(db, "ZFY0001", "100001")
    home = ["--home", str(vault.home), "--user", "信息中心"]
    res = CliRunner().invoke(
        main, [*home, "devices", "state", "ZFY0001", "in-repair", "--note", "屏幕破裂，送修"]
    )
    assert res.exit_code == 0, res.output
    st = docked(SimConfig(serial="ZFY0001", secret=SECRET), clips_a)
    out = run_session(vault, st)
    assert out.state == "refused"
    flag = next(f for f in out.flags if f["code"] == "device_in_repair")
    assert "送修" in flag["message"] and "ZFY0001" in flag["message"]
    assert not st.sim.storage_mode and not (vault.run / "mnt").exists()
    assert st.left() == files_of(clips_a)  # nothing touched
    assert registry.list_alerts(db)[0]["code"] == "device_in_repair"
    # Back in service: the same recorder docks normally.
    res = CliRunner().invoke(main, [*home, "devices", "state", "ZFY0001", "in-service"])
    assert res.exit_code == 0, res.output
    st2 = docked(SimConfig(serial="ZFY0001", secret=SECRET), clips_a, slot="1-2")
    assert run_session(vault, st2).state == "done"


def test_gap_in_sequence_numbers_is_flagged(
    vault: Vault, db: sqlite_utils.Database, docked: Any, tmp_path: Path
) -> None:
    """R20: a file deleted on the recorder before docking leaves a gap in the numbers."""
    from click.testing import CliRunner

    from station.cli import main

    content = make_recorder_volume(tmp_path / "gap", "ZFY0003", "100003", clips=4)
    (deleted,) = [p for p in content.rglob("*_0002.MP4")]
    deleted.unlink()
    enrol(db, "ZFY0003", "100003")
    st = docked(SimConfig(serial="ZFY0003", officer_id="100003", secret=SECRET), content)
    out = run_session(vault, st)
    assert out.state == "done"
    flag = next(f for f in out.flags if f["code"] == "sequence_gap")
    assert "缺 1 个" in flag["message"] and "R20" in flag["message"]
    row = session_row(db, out.session_id)
    assert "sequence_gap" in row["flags"]
    (gap,) = db.query("select * from sequence_gaps")
    assert (gap["after_seq"], gap["before_seq"], gap["missing"]) == (1, 3, 1)
    assert gap["session_id"] == out.session_id and gap["device_id"] == "ZFY0003"
    res = CliRunner().invoke(main, ["--home", str(vault.home), "report", "devices", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    (sec,) = [s for s in rep["sections"] if s["key"] == "gaps"]
    assert [(r["device_id"], r["missing"]) for r in sec["rows"]] == [("ZFY0003", 1)]
    (devs,) = [s for s in rep["sections"] if s["key"] == "devices"]
    health = {r["device"]: r["health"] for r in devs["rows"]}
    assert "R20" in health["ZFY0003"]
