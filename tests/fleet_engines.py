"""Real engines for the fleet tests: a single-node Ceph (one mon, one BlueStore OSD on a sparse
file, radosgw with the beast front end on 127.0.0.1) and a private PostgreSQL server.

Both come up once per test session (``ceph`` and ``postgres`` fixtures below, imported by the
fleet test modules), on ephemeral ports, in a temporary folder, and go down at the end. Every
daemon is started with a pid file and stopped by that pid. When the binaries are absent the
tests are skipped with the reason; ``scripts/setup.sh`` installs them, so CI runs them.

Settings that matter (measured, see the harness notes): the rgw client needs
``auth_client_required = none`` and ``ms_mon_client_mode = crc`` or it hangs for minutes, and
``paxos_propose_interval = 0.05`` keeps start-up at a few seconds.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CEPH_BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool", "ceph")
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(pred: object, what: str, timeout: float = 120.0, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return
        time.sleep(every)
    raise RuntimeError(f"timed out waiting for {what}")


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_pid(pidfile: Path, timeout: float = 20.0, sig: int = signal.SIGTERM) -> None:
    pid = _pid(pidfile)
    if pid is None or not _alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait(lambda: not _alive(pid), f"pid {pid} to die", 10)


@dataclass
class Ceph:
    root: Path
    conf: Path
    rgw_port: int
    access_key: str
    secret_key: str

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.rgw_port}"

    def _run(self, *args: str, timeout: float = 60.0) -> str:
        out = subprocess.run(
            [*args, "-c", str(self.conf)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {out.stderr[-2000:]}")
        return out.stdout

    @property
    def rgw_pidfile(self) -> Path:
        return self.root / "run" / "rgw.pid"

    def start_rgw(self) -> None:
        self._run("radosgw", "-n", "client.rgw.a", "--pid-file", str(self.rgw_pidfile))
        _wait(self.rgw_up, "radosgw to answer", 120)

    def rgw_up(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.rgw_port), timeout=0.5),
        ):
            return True
        return False

    def kill_rgw(self) -> None:
        """Kill radosgw at once (SIGKILL): an outage in the middle of a transfer."""
        stop_pid(self.rgw_pidfile, timeout=0.0, sig=signal.SIGKILL)
        _wait(lambda: not self.rgw_up(), "radosgw port to close", 30)

    def stop_rgw(self) -> None:
        stop_pid(self.rgw_pidfile)

    def user(self, uid: str) -> tuple[str, str]:
        """A further S3 user (its own access and secret key)."""
        ak, sk = uuid.uuid4().hex[:20].upper(), uuid.uuid4().hex
        self._run(
            "radosgw-admin",
            "user",
            "create",
            f"--uid={uid}",
            f"--display-name={uid}",
            f"--access-key={ak}",
            f"--secret={sk}",
        )
        return ak, sk


def _ceph_conf(root: Path, mon_port: int, rgw_port: int, fsid: str) -> str:
    return f"""[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{mon_port}
ms bind msgr1 = false
ms bind msgr2 = true
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
paxos propose interval = 0.05
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 0
auth allow insecure global id reclaim = false
mon warn on pool no redundancy = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
run dir = {root}/run
admin socket = {root}/run/$name.asok
log file = {root}/log/$name.log
mon data = {root}/mon/$name
osd data = {root}/osd/$name
osd objectstore = bluestore
bluestore block create = true
bluestore block size = 10737418240
osd memory target = 939524096
bluestore cache autotune = false
bluestore cache size = 134217728
osd max object name len = 256
osd max object namespace len = 64
mgr initial modules =
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw data = {root}/rgw
rgw enable usage log = false
rgw dns name = localhost
"""


def start_ceph(root: Path) -> Ceph:
    for d in ("run", "log", "mon", "osd/osd.0", "rgw"):
        (root / d).mkdir(parents=True, exist_ok=True)
    mon_port, rgw_port = free_port(), free_port()
    fsid = str(uuid.uuid4())
    conf = root / "ceph.conf"
    conf.write_text(_ceph_conf(root, mon_port, rgw_port, fsid))
    ak, sk = "FLEETTESTACCESSKEY01", uuid.uuid4().hex
    ceph = Ceph(root, conf, rgw_port, ak, sk)

    def run(*args: str, timeout: float = 60.0) -> str:
        return ceph._run(*args, timeout=timeout)

    monmap = root / "monmap"
    subprocess.run(
        [
            "monmaptool",
            "--create",
            "--fsid",
            fsid,
            "--addv",
            "a",
            f"[v2:127.0.0.1:{mon_port}]",
            str(monmap),
        ],
        check=True,
        capture_output=True,
    )
    run("ceph-mon", "--mkfs", "-i", "a", "--monmap", str(monmap))
    run("ceph-mon", "-i", "a", "--pid-file", str(root / "run" / "mon.pid"))
    osd_uuid = str(uuid.uuid4())
    run("ceph", "osd", "create", osd_uuid, timeout=120)
    run("ceph-osd", "-i", "0", "--mkfs", "--osd-uuid", osd_uuid, timeout=120)
    run("ceph-osd", "-i", "0", "--pid-file", str(root / "run" / "osd.pid"))

    def osd_up() -> bool:
        try:
            return '"num_up_osds":1' in run("ceph", "osd", "stat", "-f", "json").replace(" ", "")
        except RuntimeError:
            return False

    _wait(osd_up, "the OSD to come up", 120, every=0.3)
    ceph.start_rgw()
    run(
        "radosgw-admin",
        "user",
        "create",
        "--uid=station",
        "--display-name=station",
        f"--access-key={ak}",
        f"--secret={sk}",
    )
    return ceph


def stop_ceph(root: Path) -> None:
    for name in ("rgw", "osd", "mon"):
        stop_pid(root / "run" / f"{name}.pid")


@dataclass
class Postgres:
    root: Path
    port: int

    @property
    def dsn(self) -> str:
        return f"postgresql://station@127.0.0.1:{self.port}/postgres"

    def db_dsn(self, name: str) -> str:
        return f"postgresql://station@127.0.0.1:{self.port}/{name}"

    def _as_postgres(self, *args: str, timeout: float = 120.0) -> None:
        pw = pwd.getpwnam("postgres")

        def demote() -> None:
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)

        out = subprocess.run(
            list(args),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            preexec_fn=demote if os.geteuid() == 0 else None,
        )
        if out.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {out.stdout[-1000:]} {out.stderr[-1000:]}")

    def start(self) -> None:
        self._as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.root / "data"),
            "-l",
            str(self.root / "pg.log"),
            "-o",
            f"-k {self.root} -h 127.0.0.1 -p {self.port} -c fsync=off",
            "-w",
            "start",
        )

    def stop(self) -> None:
        pidfile = self.root / "data" / "postmaster.pid"
        pid = None
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pidfile.read_text().splitlines()[0])
        if pid is None or not _alive(pid):
            return
        os.kill(pid, signal.SIGINT)  # fast shutdown
        _wait(lambda: not _alive(pid), "PostgreSQL to stop", 60)

    def create_db(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        return self.db_dsn(name)


def start_postgres(root: Path) -> Postgres:
    root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    pg = Postgres(root, free_port())
    pg._as_postgres(
        str(PG_BIN / "initdb"),
        "-D",
        str(root / "data"),
        "-A",
        "trust",
        "-U",
        "station",
        "--no-sync",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
    )
    pg.start()
    return pg


def _missing(names: tuple[str, ...]) -> list[str]:
    return [n for n in names if shutil.which(n) is None]


@pytest.fixture(scope="session")
def ceph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ceph]:
    missing = _missing(CEPH_BINARIES)
    if missing:
        pytest.skip(f"Ceph binaries absent ({', '.join(missing)}): run scripts/setup.sh")
    root = tmp_path_factory.mktemp("ceph")
    try:
        cluster = start_ceph(root)
    except BaseException:
        stop_ceph(root)
        raise
    try:
        yield cluster
    finally:
        stop_ceph(root)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    if not (PG_BIN / "pg_ctl").exists():
        pytest.skip(f"PostgreSQL binaries absent ({PG_BIN}): run scripts/setup.sh")
    # Not under pytest's temp root: a pytest starting meanwhile resets that to mode 0700,
    # which locks the postgres user out of its own data folder.
    base = Path(tempfile.mkdtemp(prefix="station-pg-"))
    os.chmod(base, 0o711)
    root = base / "pg"
    try:
        pg = start_postgres(root)
    except BaseException:
        Postgres(root, 0).stop()
        shutil.rmtree(base, ignore_errors=True)
        raise
    try:
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)
