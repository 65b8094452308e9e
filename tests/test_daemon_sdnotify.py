"""sd_notify against a real AF_UNIX datagram socket."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

from station.sdnotify import Notifier


def test_messages_arrive_on_a_path_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as srv:
        srv.bind(str(path))
        srv.settimeout(5)
        n = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "20000000"})
        assert n.enabled and n.watchdog_s == 20.0
        assert n.ready("空闲 / idle")
        assert srv.recv(4096).decode() == "READY=1\nSTATUS=空闲 / idle"
        assert n.watchdog()
        assert srv.recv(4096) == b"WATCHDOG=1"
        assert n.status("2 slots\nbusy")
        assert srv.recv(4096) == b"STATUS=2 slots busy"
        assert n.stopping()
        assert srv.recv(4096) == b"STOPPING=1"


def test_abstract_namespace() -> None:
    name = f"station-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as srv:
        srv.bind("\0" + name)
        srv.settimeout(5)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert srv.recv(100) == b"READY=1"


def test_without_systemd_nothing_is_sent() -> None:
    n = Notifier({})
    assert not n.enabled and n.watchdog_s is None
    assert n.ready() is False


def test_watchdog_for_another_pid_is_ignored() -> None:
    env = {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    assert Notifier(env).watchdog_s is None
    env["WATCHDOG_PID"] = str(os.getpid())
    assert Notifier(env).watchdog_s == 1.0


def test_gone_socket_is_not_fatal(tmp_path: Path) -> None:
    assert Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody")}).ready() is False


def test_full_socket_does_not_block(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as srv:
        srv.bind(str(path))
        n = Notifier({"NOTIFY_SOCKET": str(path)})
        sent = [n.watchdog() for _ in range(5000)]  # nobody reads: the queue fills up
        assert sent[0] and not sent[-1]
        assert srv.recv(100) == b"WATCHDOG=1"


def test_unchanged_status_is_not_resent(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as srv:
        srv.bind(str(path))
        n = Notifier({"NOTIFY_SOCKET": str(path)})
        assert n.status("a") and not n.status("a") and n.status("b")
