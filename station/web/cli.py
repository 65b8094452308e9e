"""``station web``: the screens alone, without the docks (an office PC, or beside a daemon
that runs under its own systemd unit)."""

from __future__ import annotations

import json
import signal
import sys
import threading
from types import FrameType

import click

from station.cli_util import App, json_option, pass_app


@click.command("web")
@click.option(
    "--listen",
    help="监听地址 / HOST:PORT to serve on (default: setting web.listen, 127.0.0.1:8470); "
    "非本机地址须配置 TLS / other than loopback needs web.tls_cert and web.tls_key",
)
@json_option
@pass_app
def web_cmd(app: App, listen: str | None, as_json: bool) -> None:
    """提供屏幕页面（不接管插槽）/ Serve the kiosk and office pages without the docks.

    --json: 启动后打印地址 JSON / print the address as JSON once serving.
    """
    from station.web.server import WebService

    app.vault.check()
    svc = WebService(app.vault, app.settings, listen or app.settings.web.listen or None)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    svc.start()
    if not svc.started:
        raise click.ClickException(f"无法监听（端口被占用？） / cannot serve on {svc.url()}")
    if as_json:
        # one line, printed once serving: a supervising script reads it and goes on
        click.echo(json.dumps({"url": svc.url(), "office": svc.url() + "office/"}))
    else:
        click.echo(f"屏幕 / screens: {svc.url()}  办公 / office: {svc.url()}office/")
    sys.stdout.flush()
    while not stop.wait(3600):
        if svc.thread is None or not svc.thread.is_alive():
            break
    svc.stop()


COMMANDS = [web_cmd]
