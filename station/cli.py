"""The ``station`` command. Thin: each part of the station contributes its commands.

Start-up imports only click and this package's command index: a command's module is imported when
that command runs (station/cli_lazy.py), so ``station --help`` and ``station status`` start at once.
"""

from __future__ import annotations

import click

from station import __version__
from station.cli_groups import recordings, report, sim
from station.cli_guard import StationGroup, check_home, guard_arguments
from station.cli_index import INDEX
from station.cli_lazy import REGISTRY, LazyGroup

# Each module lists its commands in ``COMMANDS``. After adding a module or a command, run
# scripts/readme_commands.py (it regenerates the README table and station/cli_index.py).
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
    "station.fleet.cli",  # fleet status|sync|fetch
    "station.usb_dock.cli",  # run, status, devices (+ sim recorder)
    "station.oversight.cli",  # duty add|list (R21), stops add|list|approve|show (R18)
    "station.access.departments_cli",  # departments set-user|set-officer|list (R6, R14)
    "station.catalog.cli",  # catalog backup|migrate
    "station.web.cli",  # web (the screens without the docks)
    "station.clock_cli",  # clock status|trust
)

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _Root(LazyGroup, StationGroup):
    """The ``station`` group: commands loaded lazily, the one catch at the top (cli_guard)."""


@click.group(cls=_Root, context_settings=CONTEXT)
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
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="在终端显示日志（-vv 更详细）/ show log events on the terminal (-vv: debug)",
)
@click.option(
    "--service",
    is_flag=True,
    envvar="STATION_SERVICE",
    help="以采集站服务身份运行（守护进程、定时任务）/ act as the station's service identity "
    "(the daemon, the timers; only as the home's owner; env STATION_SERVICE=1)",
)
@click.pass_context
def main(
    ctx: click.Context, home: str | None, actor: str | None, verbose: int, service: bool
) -> None:
    """执法信息采集站 / Body-camera ingest station.

    接入记录仪、校验、归档、保管。Dock recorders, verify every copy, archive and retain footage
    under the whole-process recording rules (R1–R18).
    """
    # a person at a terminal sees messages only (events go to the home's log file; -v shows
    # them); services log JSON to the journal
    from pathlib import Path

    from station import log
    from station.cli_util import App, default_actor
    from station.vault import Vault, default_home

    vault = Vault(Path(home) if home else default_home())
    check_home(vault.home)
    log.configure_cli(vault.home, verbose)
    ctx.obj = App(
        vault=vault,
        actor=actor or default_actor(),
        actor_given=bool(actor),
        service=service,
    )


def _guard(cmd: click.Command) -> None:
    """Every argument of every command is checked before the command runs (non-UTF-8 refused):
    each command is guarded as it is loaded; a lazy group's own sub-commands as they are added."""
    with REGISTRY.loaded_only():
        guard_arguments(cmd)


REGISTRY.configure(main, _COMMAND_MODULES, INDEX, on_add=_guard)
main.add_command(recordings)
main.add_command(report)
main.add_command(sim)
_guard(main)  # main's own options, and commands loaded before this module was imported
