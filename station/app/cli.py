"""``station run``: the daemon, assembled by :func:`station.app.compose.build_daemon`."""

from __future__ import annotations

import os
import sys

import click

from station.access.guard import SERVICE, guard
from station.cli_util import App, json_option, pass_app


@click.command("run")
@json_option
@pass_app
def run_cmd(app: App, as_json: bool) -> None:
    """运行采集站守护进程 / Run the dock daemon (udev hotplug, sessions, sd_notify).

    --json: 日志为 JSON 行 / log as JSON lines (as under systemd).
    """
    from station import log
    from station.app.compose import build_daemon

    guard(app, SERVICE)  # the daemon acts as the station's service identity
    # The daemon logs at the settings' level (default info) unless STATION_LOG_LEVEL says more.
    log.configure(
        os.environ.get("STATION_LOG_LEVEL", app.settings.log.level),
        json=as_json or os.environ.get("STATION_LOG_JSON") == "1",
    )
    sys.exit(build_daemon(app.vault, app.settings).run())


COMMANDS = [run_cmd]
