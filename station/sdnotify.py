"""A small sd_notify: READY=1, WATCHDOG=1, STOPPING=1, STATUS=… to ``$NOTIFY_SOCKET``.

Datagrams on an AF_UNIX socket (a leading ``@`` means the abstract namespace). Without
``NOTIFY_SOCKET`` (not started by systemd) every call is a no-op that returns False.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        addr = env.get("NOTIFY_SOCKET", "")
        self.address: str | None = None
        if addr.startswith("@"):
            self.address = "\0" + addr[1:]
        elif addr.startswith("/"):
            self.address = addr
        self.watchdog_s = _watchdog_seconds(env)
        self._last_status: str | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: str) -> bool:
        if self.address is None:
            return False
        msg = "\n".join(f"{k}={v.replace(chr(10), ' ')}" for k, v in fields.items())
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            try:
                # Never block: a stalled service manager must not stall the station.
                sock.sendto(msg.encode("utf-8"), socket.MSG_DONTWAIT, self.address)
            except OSError:
                return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.send(READY="1", **({"STATUS": status} if status else {}))

    def watchdog(self) -> bool:
        return self.send(WATCHDOG="1")

    def stopping(self) -> bool:
        return self.send(STOPPING="1")

    def status(self, text: str) -> bool:
        """STATUS=…, sent only when the text changed."""
        if text == self._last_status:
            return False
        self._last_status = text
        return self.send(STATUS=text)


def _watchdog_seconds(env: Mapping[str, str]) -> float | None:
    """The watchdog interval systemd expects, if it is for this process (WATCHDOG_PID)."""
    usec = env.get("WATCHDOG_USEC")
    if not usec or not usec.isdigit() or int(usec) == 0:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 1e6
