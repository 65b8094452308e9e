"""The Debian package, for real on this machine: built from the checkout by
``scripts/build-deb.sh``, installed with apt (dependencies from Debian's archive), used as the
``station`` service user, upgraded from the release in ``packaging/deb/upgrade-from`` with a
populated catalog, a failed migration, ``dpkg -i`` twice, remove, purge without and with
``STATION_PURGE_VAULT=yes``. R7: no package operation may rewrite or delete evidence; the
vault's files are compared (hash, inode, mtime) after every step.

Installs into the real /usr, /opt, /lib and /var/lib/station and creates the ``station`` user,
so it runs only as root on a machine with neither (it skips otherwise, never touching a real
station), one at a time (a lock file), and leaves the machine as it found it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import pwd
import shutil
import sqlite3
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VAULT = Path("/var/lib/station")
PREFIX = Path("/opt/station")
UNITS = Path("/lib/systemd/system")
RULES = Path("/lib/udev/rules.d")
ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
ENV.pop("STATION_HOME", None)
ENV.pop("STATION_USER", None)

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(1200)]


def _need() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: installs a package")
    for tool in ("dpkg-deb", "apt-get", "runuser", "systemd-analyze", "git", "udevadm"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    if not (REPO / ".git").exists():
        pytest.skip("needs the git checkout")


def _foreign_station() -> str | None:
    """Something of a station already on this machine (never ours to touch)."""
    if VAULT.exists():
        return str(VAULT)
    with contextlib.suppress(KeyError):
        pwd.getpwnam("station")
        return "user station"
    st = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "station"], capture_output=True)
    if b"installed" in st.stdout or b"config-files" in st.stdout:
        return "package station"
    return None


def run(argv: list[str], *, ok: bool = True, env: dict[str, str] | None = None) -> str:
    p = subprocess.run(argv, capture_output=True, text=True, env=env or ENV, cwd="/", timeout=600)
    out = p.stdout + p.stderr
    if ok:
        assert p.returncode == 0, f"{argv} -> {p.returncode}\n{out[-4000:]}"
    return out


def as_station(*args: str, ok: bool = True) -> str:
    return run(["runuser", "-u", "station", "--", "/usr/bin/station", *args], ok=ok)


def dpkg(
    *args: str, ok: bool = True, purge_vault: bool = False
) -> subprocess.CompletedProcess[str]:
    env = dict(ENV)
    if purge_vault:
        env["STATION_PURGE_VAULT"] = "yes"
    for _ in range(300):  # dpkg itself does not wait for the lock (apt-get elsewhere)
        p = subprocess.run(["dpkg", *args], capture_output=True, text=True, env=env, timeout=600)
        if "is locked by another process" not in p.stderr:
            break
        time_wait(2)
    if ok:
        assert p.returncode == 0, f"dpkg {args} -> {p.returncode}\n{p.stdout}{p.stderr}"
    return p


def apt_install(deb: Path, **env: str) -> str:
    return run(
        [
            "apt-get",
            "-o",
            "DPkg::Lock::Timeout=900",
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            str(deb),
        ],
        env={**ENV, **env},
    )


def evidence() -> dict[str, tuple[str, int, int]]:
    """Every file under originals/ and archival/: (sha256, inode, mtime_ns)."""
    out = {}
    for top in ("originals", "archival"):
        for p in sorted((VAULT / top).rglob("*")):
            if p.is_file():
                st = p.stat()
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
                out[str(p.relative_to(VAULT))] = (digest, st.st_ino, st.st_mtime_ns)
    return out


def catalog_rows(table: str) -> int:
    with contextlib.closing(sqlite3.connect(VAULT / "catalog.sqlite")) as c:
        return int(c.execute(f"select count(*) from {table}").fetchone()[0])


def build(out: Path, cache: Path, ref: str | None = None) -> Path:
    env = {**ENV, "PIP_CACHE_DIR": str(cache)}
    argv = ["bash", str(REPO / "scripts/build-deb.sh"), "--out", str(out)]
    if ref:
        argv += ["--ref", ref]
    p = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
    assert p.returncode == 0, p.stdout + p.stderr[-4000:]
    deb = Path(p.stdout.strip().splitlines()[-1])
    assert deb.parent == out and deb.name.startswith("station_") and deb.suffix == ".deb"
    return deb


def upgrade_from() -> str:
    lines = (REPO / "packaging/deb/upgrade-from").read_text().splitlines()
    return next(line.strip() for line in lines if line.strip() and not line.startswith("#"))


@contextlib.contextmanager
def one_at_a_time() -> Iterator[None]:
    Path("/run/lock").mkdir(exist_ok=True)
    with open("/run/lock/station-deb-test.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def cleanup() -> None:
    """Leave the machine as found: package purged with its vault, user and group gone."""
    env = {**ENV, "STATION_PURGE_VAULT": "yes"}
    subprocess.run(["dpkg", "--purge", "station"], capture_output=True, env=env)
    shutil.rmtree(VAULT, ignore_errors=True)
    shutil.rmtree(PREFIX, ignore_errors=True)
    subprocess.run(["userdel", "station"], capture_output=True)
    subprocess.run(["groupdel", "station"], capture_output=True)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder the ``station`` user can reach (pytest's tmp folders are root-only)."""
    d = Path(tempfile.mkdtemp(prefix="station-deb-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def ingest_sim(where: Path, device: str, clips: int) -> None:
    vol = where / f"vol-{device}"
    os.chown(where, pwd.getpwnam("station").pw_uid, -1)
    as_station(
        "sim", "volume", str(vol), "--device", device, "--officer", "100001",
        "--clips", str(clips), "--seconds", "1", "--size", "160x120",
    )  # fmt: skip
    out = as_station("--user", "tech", "ingest", str(vol))
    assert f"新增 new {clips}" in out, out


def check_installed(deb_version: str) -> None:
    # files, owners and modes
    for path, mode in (
        (Path("/usr/bin/station"), 0o755),
        (PREFIX / "venv/bin/station", 0o755),
        (UNITS / "station.service", 0o644),
        (UNITS / "station-retention.service", 0o644),
        (UNITS / "station-retention.timer", 0o644),
        (RULES / "70-station-recorder.rules", 0o644),
    ):
        st = path.stat()
        assert stat.S_IMODE(st.st_mode) == mode and st.st_uid == 0, path
    assert (RULES / "70-station-recorder.rules").read_bytes() == (
        REPO / "udev-rules/70-station-recorder.rules"
    ).read_bytes()
    st = VAULT.stat()
    user = pwd.getpwnam("station")
    assert stat.S_IMODE(st.st_mode) == 0o750 and (st.st_uid, st.st_gid) == (
        user.pw_uid,
        user.pw_gid,
    )
    assert (VAULT / "catalog.sqlite").stat().st_uid == user.pw_uid
    assert stat.S_IMODE((VAULT / "keys").stat().st_mode) == 0o700
    assert user.pw_uid < 1000 and user.pw_shell == "/usr/sbin/nologin"
    assert user.pw_dir == str(VAULT)
    # no byte code written at run time into the package's tree (dpkg owns every file there)
    listed = set(run(["dpkg", "-L", "station"]).splitlines())
    strays = [str(p) for p in (PREFIX / "venv/lib").rglob("*.pyc") if str(p) not in listed]
    assert strays == []
    # units: on /usr/bin/station, clean under systemd-analyze verify (any stderr line fails)
    units = sorted(UNITS.glob("station*.service")) + sorted(UNITS.glob("station*.timer"))
    for unit in units:
        text = unit.read_text()
        assert "/usr/local/bin" not in text
        if unit.suffix == ".service":
            assert "ExecStart=/usr/bin/station " in text, unit
    p = subprocess.run(
        ["systemd-analyze", "verify", *map(str, units)], capture_output=True, text=True, cwd="/"
    )
    assert p.returncode == 0 and p.stderr.strip() == "", p.stderr
    # enabled without systemd running (deb-systemd-helper's links)
    assert Path("/etc/systemd/system/multi-user.target.wants/station.service").is_symlink()
    assert Path("/etc/systemd/system/timers.target.wants/station-retention.timer").is_symlink()
    # the command, as the service user
    assert as_station("--version").strip() == "station, version " + _py_version()
    status = run(["dpkg-query", "-W", "-f=${Status} ${Version}", "station"])
    assert status == f"install ok installed {deb_version}"


def _py_version() -> str:
    import tomllib

    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def _deb_version(deb: Path) -> str:
    return run(["dpkg-deb", "-f", str(deb), "Version"]).strip()


def udev_rule_applies(tmp: Path) -> None:
    """The installed rule (not the repo's copy) tags a reference recorder, under umockdev."""
    from dock_support import UmockdevStation

    tb = UmockdevStation(tmp / "udev-home", tmp)
    try:
        tb.start_testbed_only()
        _usb, tty = tb.reference_serial_recorder("ZFY0042")
        empty, upper, work = tmp / "rules-empty", tmp / "dev-upper", tmp / "dev-work"
        for d in (empty, upper, work):
            d.mkdir(exist_ok=True)
        # /etc/udev/rules.d emptied: only the package's /lib/udev/rules.d copy can match
        script = (
            "mount --make-rprivate / && "
            f"mount --bind {empty} /etc/udev/rules.d && mount -t tmpfs none /run && "
            f"mount -t overlay -o lowerdir=/dev,upperdir={upper},workdir={work} overlay /dev && "
            f"udevadm test --action=add {tty}"
        )
        r = tb.send(op="run", argv=["unshare", "-m", "sh", "-c", script])
        assert r["rc"] == 0, r
        out = str(r["stdout"]) + str(r["stderr"])
    finally:
        tb.close()
    for line in out.splitlines():
        if "70-station-recorder.rules" in line:
            assert "Invalid" not in line and "rror" not in line, line
    assert str(RULES / "70-station-recorder.rules") in out or "70-station-recorder" in out
    props = dict(
        line.split("=", 1)
        for line in out.splitlines()
        if "=" in line and line.split("=", 1)[0].isupper() and " " not in line.split("=", 1)[0]
    )
    assert props.get("STATION_RECORDER") == "1" and props.get("STATION_SERIAL") == "ZFY0042"
    assert "/dev/station/recorder-ZFY0042" in props.get("DEVLINKS", "")


def daemon_starts_and_shares_the_vault() -> None:
    """First start asks nothing: the daemon as its unit runs it (root, group station, UMask
    0027) comes up ready and stops cleanly; then the `station` user still signs, locks and
    reads everything the root daemon touched."""
    unit = (UNITS / "station.service").read_text()
    assert "Group=station" in unit and "UMask=0027" in unit
    cmd = "umask 0027; exec /usr/bin/station --home /var/lib/station run"
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(
            ["setpriv", "--regid", "station", "--clear-groups", "sh", "-c", cmd],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**ENV, "STATION_LOG_JSON": "1"},
            cwd="/",
        )
        try:
            state = None
            for _ in range(600):
                with contextlib.suppress(FileNotFoundError, ValueError):
                    st = json.loads((VAULT / "run/status.json").read_text())
                    state = st.get("state")
                    if state == "ready" and "vault_space" in st.get("services", {}):
                        break
                if proc.poll() is not None:
                    break
                time_wait(0.1)
            assert state == "ready", state
            status = json.loads(as_station("status", "--json"))
            assert status["running"] and status["vault_space"]["total_bytes"] > 0
        finally:
            proc.terminate()
            proc.wait(timeout=120)
            log.seek(0)
            out = log.read()
    assert proc.returncode == 0 and '"daemon.stopped"' in out, out[-3000:]
    as_station("--user", "tech", "checkpoint", "make")
    as_station("inbox", "status")
    as_station("--user", "retention-timer", "retention", "run", "--dry-run")
    for p in (VAULT / "keys/audit-ed25519.pem", VAULT / "run/inbox.lock"):
        assert p.stat().st_uid == pwd.getpwnam("station").pw_uid, p


def time_wait(seconds: float) -> None:
    import threading

    threading.Event().wait(seconds)


def test_package_install_upgrade_remove_purge(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, shared_dir: Path
) -> None:
    _need()
    with one_at_a_time():
        found = _foreign_station()
        if found:
            pytest.skip(f"a station is already on this machine ({found}); not touching it")
        cache = tmp_path_factory.mktemp("pip-cache")  # one wheel cache for both builds
        new_deb = build(tmp_path / "new", cache)
        old_deb = build(tmp_path / "old", cache, ref=upgrade_from())
        old_v, new_v = _deb_version(old_deb), _deb_version(new_deb)
        newer = subprocess.run(["dpkg", "--compare-versions", new_v, "gt", old_v])
        assert newer.returncode == 0, (old_v, new_v)
        try:
            _scenario(tmp_path, shared_dir, old_deb, new_deb, old_v, new_v)
        finally:
            cleanup()
        # the machine as found
        assert not VAULT.exists() and not PREFIX.exists()
        assert not Path("/usr/bin/station").exists()
        with pytest.raises(KeyError):
            pwd.getpwnam("station")
        leftovers = [
            str(p)
            for root in (Path("/etc/systemd/system"), Path("/var/lib/systemd"))
            for p in root.rglob("*station*")
        ]
        assert leftovers == []


def _scenario(
    tmp: Path, shared: Path, old_deb: Path, new_deb: Path, old_v: str, new_v: str
) -> None:
    # 1. the previous release, installed and used: a populated catalog with a checkpoint
    apt_install(old_deb)
    ingest_sim(shared, "DSJ0001", 2)
    as_station("--user", "tech", "checkpoint", "make")
    before = evidence()
    assert len(before) == 2
    recordings = catalog_rows("recordings")
    audit = catalog_rows("audit_log")

    # 2. upgrade: online backup first, migrations, verify --quick; evidence untouched
    out = apt_install(new_deb)
    assert "catalog backed up before the upgrade" in out, out
    check_installed(new_v)
    assert evidence() == before
    backups = sorted((VAULT / "backups").glob("catalog-*-preinst-*.sqlite"))
    assert len(backups) == 1
    with contextlib.closing(sqlite3.connect(f"file:{backups[0]}?mode=ro", uri=True)) as c:
        assert c.execute("pragma integrity_check").fetchone()[0] == "ok"
        assert c.execute("select count(*) from recordings").fetchone()[0] == recordings
        assert c.execute("select count(*) from audit_log").fetchone()[0] == audit
    verdict = json.loads(as_station("verify", "--json"))
    assert verdict["ok"] and verdict["files_checked"] == 2 and not verdict["counts"], verdict
    udev_rule_applies(tmp)
    daemon_starts_and_shares_the_vault()

    # 3. the new version ingests as the service user
    ingest_sim(shared, "DSJ0002", 1)
    as_station("--user", "tech", "checkpoint", "make")
    before = evidence()  # originals, and the archival copies the daemon made meanwhile
    assert len([k for k in before if k.startswith("originals/")]) == 3

    # 4. dpkg -i twice is harmless
    dpkg("-i", str(new_deb))
    check_installed(new_v)
    assert evidence() == before

    # 5. a failing migration: nothing changes, the old environment is kept, a clear message
    db = sqlite3.connect(VAULT / "catalog.sqlite")
    (name, applied_at) = db.execute(
        "select name, applied_at from _migrations where number = 1"
    ).fetchone()
    with db:
        db.execute("delete from _migrations where number = 1")  # m0001 will fail: tables exist
    tables = db.execute("select name from sqlite_master order by name").fetchall()
    db.close()
    p = dpkg("-i", str(new_deb), ok=False)
    said = p.stdout + p.stderr
    assert p.returncode != 0
    assert "数据库迁移失败" in said and "the catalog migration failed" in said, said
    assert "0001_core" in said and "backup taken before" in said, said
    assert str(PREFIX / "previous") in said
    with contextlib.closing(sqlite3.connect(VAULT / "catalog.sqlite")) as db:
        assert db.execute("select name from sqlite_master order by name").fetchall() == tables
        assert db.execute("select count(*) from _migrations where number = 1").fetchone()[0] == 0
        with db:
            db.execute(
                "insert into _migrations (number, name, applied_at) values (1, ?, ?)",
                [name, applied_at],
            )
    # meanwhile the command (and the daemon's unit) run the version kept from before
    assert "the previous version keeps running" in said, said
    assert (PREFIX / "previous/ACTIVE").exists()
    kept = as_station("--version")
    assert "running the previous version" in kept and "station, version" in kept, kept
    assert evidence() == before
    dpkg("--configure", "station")
    assert not (PREFIX / "previous").exists()
    check_installed(new_v)
    assert "previous" not in as_station("--version")

    # 6. remove: program gone, the vault and its user stay
    out = run(["apt-get", "-o", "DPkg::Lock::Timeout=900", "remove", "-y", "-q", "station"])
    assert "evidence and catalog stay in /var/lib/station" in out, out
    assert not Path("/usr/bin/station").exists() and not PREFIX.exists()
    assert evidence() == before
    pwd.getpwnam("station")

    # 7. purge without the variable: the vault is still kept, and the output says how
    p = dpkg("--purge", "station")
    said = p.stdout + p.stderr
    assert "the vault was NOT deleted" in said and "STATION_PURGE_VAULT=yes" in said, said
    assert evidence() == before and (VAULT / "catalog.sqlite").exists()

    # 8. installing again finds the kept vault and carries on with it (its id stays)
    apt_install(new_deb, STATION_ID="ZFZ-99")
    assert json.loads(as_station("config", "show", "--json"))["station"]["id"] != "ZFZ-99"
    check_installed(new_v)
    verdict = json.loads(as_station("verify", "--quick", "--json"))
    assert verdict["ok"] and verdict["mode"] == "quick", verdict
    assert evidence() == before

    # 9. purge with the variable: the vault, the user and the group go
    p = dpkg("--purge", "station", purge_vault=True)
    assert "deleting the vault" in p.stdout + p.stderr
    assert not VAULT.exists()
    with pytest.raises(KeyError):
        pwd.getpwnam("station")

    # 10. a fresh install given the station's id (it names the audit log and its key)
    apt_install(new_deb, STATION_ID="ZFZ-09")
    assert json.loads(as_station("config", "show", "--json"))["station"]["id"] == "ZFZ-09"
    assert (VAULT / "keys/audit-ed25519.vkey").read_text().startswith("ZFZ-09-audit+")
    dpkg("--purge", "station", purge_vault=True)
    assert not VAULT.exists()
