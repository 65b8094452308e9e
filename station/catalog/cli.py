"""``station catalog backup|migrate``: the catalog's upkeep for installs and upgrades."""

from __future__ import annotations

from pathlib import Path

import click

from station import catalog_upkeep as maintenance
from station.catalog import migrations
from station.catalog.db import open_catalog
from station.cli_util import App, json_option, pass_app, print_json


@click.group("catalog")
def catalog_group() -> None:
    """目录数据库维护 / The catalog: online backup, schema migrations."""


def _guard(app: App) -> None:
    """An administrator or the service identity; the catalog is opened without migrating
    (migrations run only inside ``maintenance.migrate``, after its backup)."""
    from station.access.guard import ADMIN, SERVICE, guard

    if app._db is None:
        app._db = open_catalog(app.vault.catalog_path, migrate=False)
    guard(app, *ADMIN, SERVICE)


def _backup_dir(app: App) -> Path:
    return app.vault.home / "backups"


@catalog_group.command("backup")
@click.option(
    "--to",
    "dest",
    type=click.Path(file_okay=False),
    help="目标目录（默认 $STATION_HOME/backups）/ folder (default $STATION_HOME/backups)",
)
@click.option(
    "--keep",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="保留最近几份 / how many backups to keep in that folder",
)
@json_option
@pass_app
def backup_cmd(app: App, dest: str | None, keep: int, as_json: bool) -> None:
    """在线备份目录数据库 / Consistent online backup of the catalog (SQLite backup API).

    守护进程运行时也可备份；证据文件不复制。Safe while the daemon writes; copies the catalog
    only, never the evidence files. The copy holds the recorders' secrets and the password
    hashes: an administrator's, or the service's (the package's upgrade).
    """
    app.vault.check()
    _guard(app)
    out = maintenance.backup(
        app.vault.catalog_path, Path(dest) if dest else _backup_dir(app), keep=keep
    )
    if as_json:
        print_json({"backup": str(out), "bytes": out.stat().st_size})
    else:
        click.echo(f"已备份 / backed up: {out}")


@catalog_group.command("migrate")
@click.option("--check", is_flag=True, help="只列出待迁移项 / only list pending migrations")
@json_option
@pass_app
def migrate_cmd(app: App, check: bool, as_json: bool) -> None:
    """升级目录数据库结构 / Back up the catalog, then apply pending migrations in one transaction.

    失败时目录保持原样并给出备份位置。On failure nothing is changed and the message names the
    backup taken before.
    """
    app.vault.check()
    if not check:
        _guard(app)
    if check:
        db = open_catalog(app.vault.catalog_path, migrate=False)
        try:
            todo = [f"{m.number:04d}_{m.name}" for m in migrations.pending(db)]
        finally:
            db.close()
        if as_json:
            print_json({"pending": todo})
        else:
            click.echo(f"待迁移 / pending: {', '.join(todo) or '—'}")
        return
    result = maintenance.migrate(app.vault.catalog_path, _backup_dir(app), actor=app.actor)
    if as_json:
        print_json(
            {
                "applied": result.applied,
                "backup": str(result.backup) if result.backup else None,
                "schema_before": result.before[-1] if result.before else None,
            }
        )
    elif result.applied:
        click.echo(
            f"已迁移 / migrated: {', '.join(result.applied)}"
            + (f"\n迁移前备份 / backup before: {result.backup}" if result.backup else "")
        )
    else:
        click.echo("目录已是最新 / the catalog is up to date")


COMMANDS = [catalog_group]
