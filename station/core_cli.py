"""``station init`` and ``station config``."""

from __future__ import annotations

import contextlib
import os
import tomllib
from pathlib import Path
from typing import Any

import click

from station.access.guard import ADMIN, SERVICE, guard
from station.catalog import open_catalog
from station.cli_util import App, json_option, pass_app, print_json
from station.config import SETTINGS_MAX_BYTES, settings_as_dict
from station.errors import ConfigError
from station.hashing import fsync_dir
from station.log import get

log = get()


@click.command("init")
@json_option
@pass_app
def init_cmd(app: App, as_json: bool) -> None:
    """初始化采集站数据目录 / Create the station's home, catalog and folders."""
    if app.vault.catalog_path.exists():
        guard(app, *ADMIN, SERVICE)  # a station in use: an administrator, or the package
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
def config_check(app: App, file: str | None, as_json: bool) -> None:
    """检查配置文件，一次列出全部错误 / Validate a settings file (default: the station's own),
    listing every error at once with its key and the allowed values."""
    from station.config import check_settings_data, defaults_in_force
    from station.safeload import LoadError, loads_toml, read_bounded

    path = Path(file) if file else app.vault.settings_path
    if not path.exists():
        raise ConfigError(
            "找不到配置文件，全部使用默认值 / no settings file: the defaults are in force",
            where=str(path),
            hint="`station config set SECTION.KEY=VALUE` (admin) creates it; "
            "`station config show` prints the defaults",
        )
    try:
        data = loads_toml(read_bounded(path, SETTINGS_MAX_BYTES).decode("utf-8"))
    except (LoadError, UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"不是有效的 TOML / not valid TOML: {exc}", where=str(path)) from exc
    problems = check_settings_data(data)
    defaults = defaults_in_force(data)
    if as_json:
        print_json(
            {
                "file": str(path),
                "valid": not problems,
                "errors": [p.to_json() for p in problems],
                "defaults_in_force": defaults,
            }
        )
        if problems:
            raise click.exceptions.Exit(ConfigError.exit_code)
        return
    if problems:
        for n, p in enumerate(problems, 1):
            click.echo(f"  {n}. {p.render()}", err=True)
        raise ConfigError(
            f"配置文件有 {len(problems)} 处错误（见上）/ {len(problems)} error(s) in the "
            "settings, listed above",
            where=str(path),
        )
    click.echo(f"配置有效 / settings valid: {path}")
    if defaults:
        click.echo(
            f"{len(defaults)} 项未设置，使用默认值 / {len(defaults)} settings use their defaults "
            "(`station config show` marks them)"
        )


@config_group.command("show")
@json_option
@pass_app
def config_show(app: App, as_json: bool) -> None:
    """显示生效的配置（TOML，标出默认值）/ Show the settings in force as TOML, defaults marked
    (--json: JSON)."""
    if as_json:
        print_json(settings_as_dict(app.settings))
        return
    click.echo(settings_toml(app.settings, app.vault.settings_path), nl=False)


def settings_toml(settings: Any, path: Path) -> str:
    """The settings in force as TOML; a key the file does not set is marked ``# 默认 /
    default``; a setting with no value is a comment line."""
    import tomlkit

    given: dict[str, Any] = {}
    if path.exists():
        with contextlib.suppress(tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
            given = tomllib.loads(path.read_text(encoding="utf-8"))
    doc = tomlkit.document()
    if path.exists():
        doc.add(tomlkit.comment(f"配置文件 / settings file: {path}"))
        doc.add(tomlkit.comment("标 “默认 / default” 的项未在文件中设置 / marked keys are not set"))
    else:
        doc.add(tomlkit.comment(f"没有配置文件 / no settings file: {path}"))
        doc.add(tomlkit.comment("全部为默认值 / every setting below is a default"))
    for section, values in settings_as_dict(settings).items():
        table = tomlkit.table()
        raw = given.get(section)
        mine = raw if isinstance(raw, dict) else {}
        for key, value in values.items():
            if value is None:
                table.add(tomlkit.comment(f"{key} = （未设置 / not set）"))
                continue
            item = tomlkit.item(value)
            if key not in mine:
                item.comment("默认 / default")
            table.add(key, item)
        doc.add(tomlkit.nl())
        doc.add(section, table)
    return tomlkit.dumps(doc)


def _parse_value(section: str, name: str, text: str) -> Any:
    """The value as the setting's type wants it: a text setting takes the text as it is
    (``110101000001`` stays a string); others a TOML value (15, true, ["a"]); what parses as
    neither is passed on as text, for the validation to refuse with the key's name."""
    import dataclasses
    import typing

    from station.config import Settings

    section_type = typing.get_type_hints(Settings).get(section)
    wants_text = (
        section_type is not None
        and dataclasses.is_dataclass(section_type)
        and typing.get_type_hints(section_type).get(name) is str
    )
    if wants_text and not text.startswith(('"', "'")):
        return text
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


@config_group.command("set")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@json_option
@pass_app
def config_set(app: App, assignments: tuple[str, ...], as_json: bool) -> None:
    """修改配置项 / Change settings in station.toml (admin), e.g. station.unit_name=某县城市管理局.

    整个文件先校验再写入（保留注释），并写入审计日志；运行中的守护进程自动应用。The whole file is
    validated before it is written (comments kept) and the change is audited; a running daemon
    applies it without a restart.
    """
    import tomlkit

    from station.access.guard import ADMIN, guard
    from station.audit import append
    from station.catalog import write_txn
    from station.config import parse_settings

    path = app.vault.settings_path
    app.vault.check()
    guard(app, *ADMIN)
    try:
        doc = (
            tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
        )
    except (tomlkit.exceptions.ParseError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=str(path)) from exc
    changes: dict[str, list[Any]] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) != 2 or not all(parts):
            raise click.BadParameter(
                f"{item!r}: expected SECTION.KEY=VALUE, e.g. station.unit_name=某县城市管理局",
                param_hint="KEY=VALUE",
            )
        section, name = parts
        value = _parse_value(section, name, raw)
        table = doc.get(section)
        if table is None:
            table = tomlkit.table()
            doc[section] = table
        old = table.get(name)
        table[name] = value
        changes[key.strip()] = [None if old is None else _plain(old), value]
    if "station.id" in changes and changes["station.id"][0] != changes["station.id"][1]:
        signed = app.db.execute("select count(*) from audit_checkpoints").fetchone()[0]
        if signed:
            raise ConfigError(
                "站点编号已用于签名检查点，不能再改 / station.id names this station's audit log "
                "and signing key; after the first checkpoint it cannot change",
                where=str(path),
                hint="set station.unit_name / station.unit_id instead",
            )
    text = tomlkit.dumps(doc)
    parse_settings(tomllib.loads(text), str(path))  # unknown keys, types, ranges: refused
    _write_settings(path, text)
    with write_txn(app.db):
        append(app.db, "settings.changed", actor=app.actor, data={"changes": changes})
    log.info("settings.changed", keys=sorted(changes))
    if as_json:
        print_json({"file": str(path), "changes": changes})
    else:
        for key, (old, new) in changes.items():
            click.echo(f"已修改 / set: {key} = {new!r} (原 / was {old!r})")


def _plain(value: Any) -> Any:
    unwrap = getattr(value, "unwrap", None)
    return unwrap() if callable(unwrap) else value


def _write_settings(path: Path, text: str) -> None:
    """Temp file beside it, fsync, rename; the old file's owner and mode are kept."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    if path.exists():
        st = path.stat()
        os.chmod(tmp, st.st_mode & 0o7777)
        if os.geteuid() == 0:
            os.chown(tmp, st.st_uid, st.st_gid)
    else:
        home = path.parent.stat()
        os.chmod(tmp, 0o640)
        if os.geteuid() == 0:
            os.chown(tmp, home.st_uid, home.st_gid)
    os.replace(tmp, path)
    fsync_dir(path.parent)


COMMANDS = [init_cmd, config_group]
