"""``station init`` and ``station config``."""

from __future__ import annotations

from pathlib import Path

import click

from station.access.guard import ADMIN, guard
from station.catalog import open_catalog
from station.cli_util import App, handle_errors, json_option, pass_app, print_json
from station.config import load_settings, settings_as_dict
from station.log import get

log = get()


@click.command("init")
@json_option
@pass_app
@handle_errors
def init_cmd(app: App, as_json: bool) -> None:
    """初始化采集站数据目录 / Create the station's home, catalog and folders."""
    if app.vault.catalog_path.exists():
        guard(app, *ADMIN)  # re-running init on a station in use: an administrator's
    app.vault.init()
    db = open_catalog(app.vault.catalog_path)
    db.close()
    app.vault.protect()  # the WAL files now exist too
    log.info("station.initialised", home=str(app.vault.home))
    if as_json:
        print_json({"home": str(app.vault.home), "catalog": str(app.vault.catalog_path)})
    else:
        click.echo(f"已初始化 / initialised: {app.vault.home}")


@click.group("config")
def config_group() -> None:
    """配置 / Settings: check and show."""


@config_group.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@json_option
@pass_app
@handle_errors
def config_check(app: App, file: str | None, as_json: bool) -> None:
    """检查配置文件 / Validate a settings file (default: the station's own)."""
    path = Path(file) if file else app.vault.settings_path
    if file and not path.exists():
        raise click.BadParameter(f"no such file: {path}", param_hint="FILE")
    load_settings(path)
    if as_json:
        print_json({"file": str(path), "valid": True})
    else:
        click.echo(f"配置有效 / settings valid: {path}")


@config_group.command("show")
@pass_app
@handle_errors
def config_show(app: App) -> None:
    """显示生效的配置 / Show the settings in force, defaults included (JSON)."""
    print_json(settings_as_dict(app.settings))


COMMANDS = [init_cmd, config_group]
