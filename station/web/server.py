"""Serving the screens with uvicorn: inside ``station run`` (a service with ``start``/``stop``)
or alone (``station web``).

A listen address other than loopback needs TLS (``web.tls_cert`` and ``web.tls_key``), else
the server refuses to start: office pages carry passwords and footage.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from station.config import Settings
from station.errors import ConfigError
from station.log import get
from station.vault import Vault

log = get()


@dataclass(frozen=True)
class Listen:
    host: str
    port: int
    tls: bool


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(
            f"expected HOST:PORT, got {text!r}", where="--listen", hint="e.g. 127.0.0.1:8470"
        )
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen(text: str, settings: Settings) -> Listen:
    """The address to bind, refusing anything but loopback without TLS settings."""
    host, port = parse_listen(text)
    tls = bool(settings.web.tls_cert and settings.web.tls_key)
    if not is_loopback(host) and not tls:
        raise ConfigError(
            f"非本机地址须配置 TLS / refusing to serve the screens on {host} without TLS",
            where="web.listen",
            hint="set web.tls_cert and web.tls_key in station.toml, or listen on 127.0.0.1",
        )
    for key in ("tls_cert", "tls_key"):
        value = getattr(settings.web, key)
        if value and not Path(value).is_file():
            raise ConfigError(f"no such file: {value}", where=f"web.{key}")
    return Listen(host, port, tls)


class WebService:
    """uvicorn in a thread of the daemon; ``stop()`` ends the open kiosk streams first."""

    def __init__(self, vault: Vault, settings: Settings, listen: str | None = None) -> None:
        self.vault = vault
        self.settings = settings
        self.listen = check_listen(listen or settings.web.listen, settings)
        self.server: Any = None  # uvicorn.Server, imported when started
        self.thread: threading.Thread | None = None
        self.app: Any = None

    def make_server(self) -> Any:
        import uvicorn

        from station.web.app import create_app

        self.app = create_app(self.vault, self.settings)
        tls = self.settings.web
        config = uvicorn.Config(
            self.app,
            host=self.listen.host,
            port=self.listen.port,
            log_config=None,  # our structlog set-up, not uvicorn's
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=3,
            ssl_certfile=tls.tls_cert or None,
            ssl_keyfile=tls.tls_key or None,
            server_header=False,
        )
        return uvicorn.Server(config)

    def start(self, wait_s: float = 10.0) -> None:
        """Serve in a thread; wait until the socket is bound. A port in use is logged, not
        raised: the docks work without their screen (``station web`` checks ``started``)."""
        import time

        self.server = self.make_server()
        self.thread = threading.Thread(target=self._serve, name="web", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + wait_s
        while not self.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.started:
            log.info("web.listening", url=self.url(), tls=self.listen.tls)
        else:
            log.error("web.not_listening", url=self.url(), hint="is the port in use?")

    def _serve(self) -> None:
        try:
            self.server.run()
        except SystemExit:  # uvicorn exits when it cannot bind
            log.error("web.server_exited", url=self.url())
        except Exception:
            log.exception("web.server_failed", url=self.url())

    @property
    def started(self) -> bool:
        return bool(getattr(self.server, "started", False))

    def url(self) -> str:
        scheme = "https" if self.listen.tls else "http"
        host = f"[{self.listen.host}]" if ":" in self.listen.host else self.listen.host
        return f"{scheme}://{host}:{self.listen.port}/"

    def stop(self) -> None:
        if self.server is None:
            return
        app = self.app
        if app is not None:
            app.state.web.feed.close_from_thread()
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(10)
        log.info("web.stopped")
