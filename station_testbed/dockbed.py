"""A dock on a bench: real stand-ins for docked recorders, shared by the demo, the benchmark and
the tests — exFAT images on loop devices, simulated recorders on ptys, and :class:`DockBed`, the
daemon as a real subprocess under ``umockdev-wrapper`` with synthetic udev events."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from station.recorder.simulator import SimConfig, SimRecorder, open_pty, serve
from station_testbed.waiting import STALL_S, pid_alive, wait_progress


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    return env


def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, env=_env()).stdout


def is_root() -> bool:
    return os.geteuid() == 0


@contextmanager
def exfat_loop(
    tmp: Path, content: Path | None, size_mb: int = 48, cluster_kb: int | None = None
) -> Iterator[str]:
    """An exFAT image filled with ``content`` (a folder), attached to a loop device; with
    ``cluster_kb`` formatted with that cluster size (recorder cards use 32–128 KiB; mkfs.exfat
    picks 4 KiB for small images)."""
    img = tmp / f"vol{os.getpid()}_{len(list(tmp.iterdir()))}.img"
    with open(img, "wb") as f:
        f.truncate(size_mb * 1024 * 1024)
    cluster = ["-c", f"{cluster_kb}K"] if cluster_kb else []
    sh("mkfs.exfat", *cluster, "-L", "ZFY", str(img))
    loop = sh("losetup", "-f", "--show", str(img)).strip()
    try:
        if content is not None:
            mnt = tmp / f"fill_{Path(loop).name}"
            mnt.mkdir()
            sh("mount.exfat-fuse", loop, str(mnt))
            try:
                shutil.copytree(content, mnt, dirs_exist_ok=True)
            finally:
                os.sync()
                sh("umount", str(mnt))
                mnt.rmdir()
        yield loop
    finally:
        subprocess.run(["losetup", "-d", loop], check=False, env=_env())
        img.unlink(missing_ok=True)


def read_loop(loop: str, tmp: Path) -> dict[str, int]:
    """The files on an exFAT loop device now (relative path -> size), read back independently."""
    mnt = tmp / f"check_{Path(loop).name}"
    mnt.mkdir(exist_ok=True)
    sh("mount.exfat-fuse", "-o", "ro", loop, str(mnt))
    try:
        return {str(p.relative_to(mnt)): p.stat().st_size for p in mnt.rglob("*") if p.is_file()}
    finally:
        sh("umount", str(mnt))
        mnt.rmdir()


def files_of(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


@contextmanager
def sim_recorder(cfg: SimConfig, link: Path | None = None) -> Iterator[tuple[SimRecorder, str]]:
    rec = SimRecorder(cfg)
    master, slave, name = open_pty(link)
    stop = threading.Event()
    t = threading.Thread(target=serve, args=(rec, master, stop), daemon=True)
    t.start()
    try:
        yield rec, name
    finally:
        stop.set()
        t.join(5)
        os.close(master)
        os.close(slave)


# The folder holding the ``station`` package (the repository in a checkout).
REPO = Path(__file__).resolve().parents[1]


class DockBed:
    """The daemon as a real subprocess under ``umockdev-wrapper``, devices added via the
    controller (station_testbed/dockbed_controller.py), sd_notify on a real datagram socket."""

    def __init__(
        self,
        home: Path,
        tmp: Path,
        *,
        watchdog_s: float = 4.0,
        transcode: bool = False,
        web_listen: str = "",
        low_space_percent: float | None = 0.01,
    ) -> None:
        import socket
        import sys

        if not transcode:  # the dock's own tests and benchmarks run no ffmpeg workers
            home.mkdir(parents=True, exist_ok=True)
            settings = home / "station.toml"
            text = settings.read_text(encoding="utf-8") if settings.exists() else ""
            if "[transcode]" not in text:
                settings.write_text(text + '\n[transcode]\nprofile = "off"\n', encoding="utf-8")
        # the screens: off unless asked for (parallel beds never fight over one port)
        home.mkdir(parents=True, exist_ok=True)
        settings = home / "station.toml"
        text = settings.read_text(encoding="utf-8") if settings.exists() else ""
        if "[web]" not in text:
            settings.write_text(text + f'\n[web]\nlisten = "{web_listen}"\n', encoding="utf-8")
        # A test bed's vault lives on the host's disk, not on a dock's own: its free space is
        # not the station's, so the low-space alert is off unless asked for (None: the station's
        # default, as the demo runs it).
        text = settings.read_text(encoding="utf-8")
        if low_space_percent is not None and "[vault]" not in text:
            settings.write_text(
                text + f"\n[vault]\nlow_space_percent = {low_space_percent}\n", encoding="utf-8"
            )
        self.home = home
        self.log = tmp / "daemon.log"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify_path = tmp / "notify.sock"
        self.notify.bind(str(self.notify_path))
        self.notify.settimeout(60)
        env = _env()
        env["PYTHONPATH"] = str(REPO)
        env["NOTIFY_SOCKET"] = str(self.notify_path)
        env["WATCHDOG_USEC"] = str(int(watchdog_s * 1e6))
        env.pop("WATCHDOG_PID", None)
        self.proc = subprocess.Popen(
            [
                "umockdev-wrapper",
                sys.executable,
                "-m",
                "station_testbed.dockbed_controller",
                str(home),
                str(self.log),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp,
        )
        self.n = 0
        self.children: dict[str, list[str]] = {}

    def send(self, **cmd: object) -> dict[str, object]:
        import json

        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"controller died; daemon log:\n{self.daemon_log()}")
        return dict(json.loads(line))

    def notifications(self, until: str, timeout: float = 60) -> list[str]:
        self.notify.settimeout(timeout)
        seen: list[str] = []
        while True:
            msg = self.notify.recv(4096).decode()
            seen.append(msg)
            if until in msg.split("\n"):
                return seen

    def start(self) -> None:
        self.root = Path(str(self.send(op="start")["root"]))

    def start_testbed_only(self) -> None:
        self.root = Path(str(self.send(op="root")["root"]))

    def dock(
        self,
        port: int,
        tty: str | None,
        storage: str | None,
        *,
        usb_serial: str,
        recorder: bool = True,
    ) -> str:
        """Add a USB device with a serial child (``tty``: the pty's name, linked into the
        testbed's /dev, where umockdev's preload redirects to) and a storage child."""
        usb = str(
            self.send(
                op="add",
                subsystem="usb",
                name=f"usb1/1-{port}",
                props={"DEVTYPE": "usb_device", "ID_SERIAL_SHORT": usb_serial},
            )["syspath"]
        )
        tag = {"STATION_RECORDER": "1", "STATION_DRIVER": "serial"} if recorder else {}
        kids = self.children.setdefault(usb, [])
        if tty:
            node = self.root / "dev" / f"ttyACM{port}"
            node.parent.mkdir(parents=True, exist_ok=True)
            node.unlink(missing_ok=True)
            node.symlink_to(tty)
            r = self.send(
                op="add",
                subsystem="tty",
                name=f"ttyACM{port}",
                parent=usb,
                props={"DEVNAME": f"/dev/ttyACM{port}", **tag},
            )
            kids.append(str(r["syspath"]))
        if storage:
            self.n += 1
            r = self.send(
                op="add",
                subsystem="block",
                name=f"sd{chr(97 + self.n)}1",
                parent=usb,
                props={
                    "DEVNAME": storage,
                    "ID_FS_TYPE": "exfat",
                    "ID_BUS": "usb",
                    "DEVTYPE": "partition",
                    **tag,
                },
            )
            kids.append(str(r["syspath"]))
        return usb

    def dock_all(self, docks: list[tuple[int, str | None, str | None, str]]) -> list[str]:
        """Several recorders docked at once: each ``(port, tty, storage, usb_serial)`` as
        :meth:`dock` adds it (the USB device, then its serial and storage children), all of
        them in one request to the controller, so no dock waits for the one before it to be
        acknowledged. Returns the USB syspaths in the order given."""
        devices: list[dict[str, object]] = []
        plan: list[tuple[int, list[int]]] = []  # (index of the USB device, its children's)
        for port, tty, storage, usb_serial in docks:
            usb_at = len(devices)
            devices.append(
                {
                    "subsystem": "usb",
                    "name": f"usb1/1-{port}",
                    "props": {"DEVTYPE": "usb_device", "ID_SERIAL_SHORT": usb_serial},
                }
            )
            tag = {"STATION_RECORDER": "1", "STATION_DRIVER": "serial"}
            kids: list[int] = []
            if tty:
                node = self.root / "dev" / f"ttyACM{port}"
                node.parent.mkdir(parents=True, exist_ok=True)
                node.unlink(missing_ok=True)
                node.symlink_to(tty)
                kids.append(len(devices))
                devices.append(
                    {
                        "subsystem": "tty",
                        "name": f"ttyACM{port}",
                        "parent": {"ref": usb_at},
                        "props": {"DEVNAME": f"/dev/ttyACM{port}", **tag},
                    }
                )
            if storage:
                self.n += 1
                kids.append(len(devices))
                devices.append(
                    {
                        "subsystem": "block",
                        "name": f"sd{chr(97 + self.n)}1",
                        "parent": {"ref": usb_at},
                        "props": {
                            "DEVNAME": storage,
                            "ID_FS_TYPE": "exfat",
                            "ID_BUS": "usb",
                            "DEVTYPE": "partition",
                            **tag,
                        },
                    }
                )
            plan.append((usb_at, kids))
        got = self.send(op="add_many", devices=devices)["syspaths"]
        assert isinstance(got, list)
        paths = [str(p) for p in got]
        usbs = []
        for usb_at, kids in plan:
            self.children.setdefault(paths[usb_at], []).extend(paths[k] for k in kids)
            usbs.append(paths[usb_at])
        return usbs

    def reference_serial_recorder(self, serial: str, port: int = 1) -> tuple[str, str]:
        """A reference serial recorder (USB ``1209:5a46`` with a ``ttyACM`` child) as the
        kernel announces it, before any udev rule has tagged it; (usb, tty) syspaths."""
        usb = self.send(
            op="add",
            subsystem="usb",
            name=f"usb1/1-{port}",
            attrs={"idVendor": "1209", "idProduct": "5a46", "serial": serial},
            props={"DEVTYPE": "usb_device"},
        )["syspath"]
        tty = self.send(
            op="add",
            subsystem="tty",
            name=f"ttyACM{port - 1}",
            parent=usb,
            attrs={"dev": f"166:{port - 1}"},
            props={"DEVNAME": f"/dev/ttyACM{port - 1}", "MAJOR": "166", "MINOR": str(port - 1)},
        )["syspath"]
        return str(usb), str(tty)

    def undock(self, usb: str) -> None:
        """``remove`` uevents for the children, then the USB device, as the kernel sends them;
        the devices leave the testbed, so the slot can be docked again."""
        for kid in self.children.pop(usb, []):
            self.send(op="remove", syspath=kid)
        self.send(op="remove", syspath=usb)

    def status(self) -> dict[str, object]:
        import json

        try:
            return dict(json.loads((self.home / "run/status.json").read_text()))
        except (FileNotFoundError, ValueError):
            return {}

    def progress(self) -> object:
        """What the daemon visibly does: its state and every slot (phase, bytes, files), without
        the time stamps, which change on every write. ``wait_progress`` compares these."""
        st = self.status()
        slots = st.get("slots")
        return (
            st.get("state"),
            [
                {k: v for k, v in s.items() if k != "updated_at"}
                for s in (slots if isinstance(slots, list) else [])
            ],
        )

    def gone(self) -> str | None:
        """Why the daemon cannot make progress any more (its controller or itself exited), or
        None while it lives."""
        if self.proc.poll() is not None:
            return f"the test bed's controller exited (rc {self.proc.returncode})"
        pid = self.status().get("pid")
        if isinstance(pid, int) and not pid_alive(pid):
            return f"the daemon (pid {pid}) exited"
        return None

    def dump_stacks(self) -> str:
        """The daemon's threads' stacks (SIGUSR1 writes them into its log) and the log's tail."""
        import time

        pid = self.status().get("pid")
        if isinstance(pid, int) and pid_alive(pid):
            os.kill(pid, signal.SIGUSR1)
            time.sleep(1)
        return self.daemon_log()

    def wait_status(self, pred: object, timeout: float | None = None) -> dict[str, object]:
        """The first status matching ``pred``. Waits while the daemon visibly advances
        (``progress``) and lives; fails when nothing changed for ``timeout`` seconds
        (default ``STALL_S``) or the daemon is gone, naming the last status."""

        def matched() -> dict[str, object] | None:
            st = self.status()
            return st if st and pred(st) else None  # type: ignore[operator]

        return wait_progress(
            matched,
            self.progress,
            what="daemon status to match",
            alive=self.gone,
            stall_s=STALL_S if timeout is None else timeout,
            context=self.dump_stacks,
        )

    def daemon_log(self) -> str:
        try:
            return self.log.read_text()[-6000:]
        except FileNotFoundError:
            return ""

    def stop_daemon(self) -> object:
        """SIGTERM the daemon; its exit code (or None if the controller is gone)."""
        rc: object = None
        if self.proc.poll() is None:
            try:
                rc = self.send(op="stop").get("rc")
            except (AssertionError, BrokenPipeError):
                pass
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return rc

    def drain(self) -> list[str]:
        out = []
        self.notify.settimeout(0.5)
        try:
            while True:
                out.append(self.notify.recv(4096).decode())
        except OSError:
            pass
        return out

    def close(self) -> None:
        self.stop_daemon()
        self.notify.close()
        root = getattr(self, "root", None)
        if root is not None and root.exists():  # umockdev removes it, unless it crashed
            shutil.rmtree(root, ignore_errors=True)
