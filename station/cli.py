"""The ``station`` command. Thin: each part of the station contributes its commands."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import click

from station import __version__, log
from station.cli_groups import recordings, report, sim
from station.cli_guard import StationGroup, check_home, guard_arguments
from station.cli_util import App, default_actor
from station.vault import Vault, default_home

# Each module lists its commands in ``COMMANDS``.
_COMMAND_MODULES = (
    "station.core_cli",  # init, config
    "station.ingest.cli",  # ingest, recordings list/show
    "station.sim.cli",  # sim volume
    "station.demo",  # demo
    "station.verify.cli",  # verify, checkpoint
    "station.access.cli",  # users, access, export
    "station.spotcheck.cli",  # spotcheck, report spotchecks
    "station.retention.cli",  # retention run|restore|tombstones
    "station.cases.cli",  # cases create|link|unlink|mark-long-term|close|reopen|archived|show|list
    "station.cases.recordings_cli",  # recordings tag|hold|release|review|mark-long-term|search
    "station.reports.cli",  # report retention|compliance|devices
    "station.transcode.cli",  # transcode status, retry, run-once
    "station.inbox.cli",  # inbox status|assign|rescan
    "station.disc_burn.cli",  # disc plan/build/verify/burn/mark-burned/list/show, report discs
    "station.usb_dock.cli",  # run, status, devices (+ sim recorder)
    "station.oversight.cli",  # duty add|list (R21), stops add|list|approve|show (R18)
    "station.access.departments_cli",  # departments set-user|set-officer|list (R6, R14)
    "station.catalog.cli",  # catalog backup|migrate
    "station.web.cli",  # web (the screens without the docks)
)

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=StationGroup, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="station")
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    envvar="STATION_HOME",
    help="采集站数据目录 / the station's home (default /var/lib/station as root, "
    "else ~/.local/share/station; env STATION_HOME)",
)
@click.option(
    "--user",
    "actor",
    envvar="STATION_USER",
    help="操作人 / acting user (env STATION_USER; default: the login name)",
)
@click.pass_context
def main(ctx: click.Context, home: str | None, actor: str | None) -> None:
    """执法信息采集站 / Body-camera ingest station.

    接入记录仪、校验、归档、保管。Dock recorders, verify every copy, archive and retain footage
    under the whole-process recording rules (R1–R18).
    """
    # services log JSON at info to the journal; a person at a terminal sees warnings and errors
    as_json = os.environ.get("STATION_LOG_JSON") == "1"
    log.configure(
        os.environ.get("STATION_LOG_LEVEL", "info" if as_json else "warning"), json=as_json
    )
    vault = Vault(Path(home) if home else default_home())
    check_home(vault.home)
    ctx.obj = App(vault=vault, actor=actor or default_actor())


main.add_command(recordings)
main.add_command(report)
main.add_command(sim)
for _name in _COMMAND_MODULES:
    for _cmd in importlib.import_module(_name).COMMANDS:
        main.add_command(_cmd)

# Every argument of every command is checked before the command runs (non-UTF-8 refused).
guard_arguments(main)
