"""The daemon's life cycle in-process: extra services started after the dock is ready and
stopped in reverse order, sd_notify on a real socket, the status file, one stop event."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

from station.app.daemon import Daemon
from station.config import Settings
from station.sdnotify import Notifier
from station.vault import Vault
from station_testbed.fake_monitor import FakeMonitor


class Recorder:
    """A service that records what the daemon did to it."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def start(self) -> None:
        self.log.append(f"start {self.name}")

    def stop(self) -> None:
        self.log.append(f"stop {self.name}")


class Broken(Recorder):
    def stop(self) -> None:
        super().stop()
        raise RuntimeError("boom")


def test_services_and_notifications(vault: Vault, tmp_path: Path) -> None:
    calls: list[str] = []
    sock_path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as srv:
        srv.bind(str(sock_path))
        srv.settimeout(30)
        d = Daemon(
            vault,
            Settings(),
            services=[Recorder("transcode", calls), Broken("inbox", calls)],
            notifier=Notifier({"NOTIFY_SOCKET": str(sock_path)}),
            monitor=FakeMonitor(),  # no udev needed
        )
        t = threading.Thread(target=d.run, kwargs={"install_signals": False})
        t.start()
        msgs = [srv.recv(4096).decode()]
        while "READY=1" not in msgs[-1]:
            msgs.append(srv.recv(4096).decode())
        assert calls == ["start transcode", "start inbox"]
        status = json.loads((vault.run / "status.json").read_text())
        assert status["state"] == "ready" and status["slots"] == []
        d.request_stop()  # what the signal handler does, and all it does
        t.join(30)
        assert not t.is_alive()
        assert calls[2:] == ["stop inbox", "stop transcode"]  # reverse order, despite the error
        rest = []
        srv.settimeout(0.5)
        try:
            while True:
                rest.append(srv.recv(4096).decode())
        except OSError:
            pass
        assert "STOPPING=1" in rest
    assert json.loads((vault.run / "status.json").read_text())["state"] == "stopped"
