"""The one boundary between a person's input and the station's commands.

Steps, for every command line:

1. Before a command's body runs, every value it was given (arguments, options, environment
   variables behind options) is checked: text that is not valid UTF-8 (Python keeps such bytes as
   lone surrogates) is refused with :class:`InputError`, naming the argument.
2. :class:`StationGroup` is the one catch at the top: a :class:`StationError` becomes its message
   on stderr and its exit code (see ``station.errors.EXIT_CODES``); a catalog locked by another
   process past the busy timeout becomes :class:`CatalogBusyError`; an operating-system error on a
   named file becomes :class:`FileAccessError` with the file's path.
3. Anything else is an internal error: the traceback goes to the station's error log
   (``<home>/run/internal-errors.log``, or the journal when logging JSON), never to the terminal;
   the person sees a short bilingual message and exit code 70.

Invariant: no input a person can type ends in a Python traceback on the terminal.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import os
import sqlite3
import sys
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import click

from station.errors import (
    CatalogBusyError,
    FileAccessError,
    InputError,
    InternalError,
    StationError,
)
from station.log import get
from station.safeload import INT_LIMIT  # whole numbers are stored in SQLite (64-bit)
from station.text import LIMITS, check_text, escape_text

log = get()

_PASS_THROUGH = (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort)


def has_surrogates(text: str) -> bool:
    """True if ``text`` holds bytes that were not UTF-8 (decoded with ``surrogateescape``)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def shown(text: str, limit: int = 60) -> str:
    """``text`` as a person can read it: undecodable bytes as ``\\xNN``, cut at ``limit``."""
    raw = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    cut = raw[:limit] + ("…" if len(raw) > limit else "")
    return cut.encode("unicode_escape").decode("ascii") if not cut.isprintable() else cut


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, os.PathLike):
        yield from _strings(os.fspath(value))
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            yield from _strings(v)


def param_name(param: click.Parameter) -> str:
    """How a person wrote the parameter: ``--reason``, or ``NUMBER`` for an argument."""
    if isinstance(param, click.Option):
        name = max(param.opts, key=len)
        env = param.envvar if isinstance(param.envvar, str) else None
        return f"{name} (env {env})" if env else name
    return param.human_readable_name


def _numbers(value: Any) -> Iterator[int | float]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield value
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _numbers(v)


# How long a typed text may be and whether it may hold line breaks, by the parameter's name.
# Any other text parameter: one line of at most LIMITS["note"] characters.
_TEXT_RULES: dict[str, tuple[str, str, int, bool]] = {
    **{
        k: ("编号", "the number", LIMITS["id"], False)
        for k in (
            "officer",
            "officer_id",
            "device",
            "device_id",
            "unit",
            "unit_id",
            "usb_serial",
            "serial_no",
            "model",
        )
    },
    **{
        k: ("案件编号", "the case number", LIMITS["case_number"], False) for k in ("number", "case")
    },
    **{
        k: ("名称", "the name", LIMITS["name"], False)
        for k in (
            "name",
            "party",
            "cause",
            "department",
            "display_name",
            "officer_name",
            "unit_name",
            "by",
            "recipient",
            "category",
        )
    },
    "actor": ("账号", "the user name", LIMITS["id"], False),
    "location": ("存放位置", "the location", LIMITS["place"], False),
    # a disc drive's device path, not a recorder number
    "burn.device": ("光驱", "the drive", 4096, False),
    **{k: ("说明", "the text", LIMITS["note"], True) for k in ("note", "reason", "proves")},
}


def check_params(ctx: click.Context) -> None:
    """Refuse values of ``ctx``'s command that no command can use: text that is not valid
    UTF-8, numbers that are not finite, whole numbers beyond 64 bits."""
    for param in ctx.command.params:
        if param.name is None:
            continue
        value = ctx.params.get(param.name)
        for number in _numbers(value):
            name = param_name(param)
            if isinstance(number, float) and not math.isfinite(number):
                raise InputError(
                    f"{name} 须为有限数值 / {name} must be a finite number, got {number}",
                    where=ctx.command_path,
                )
            if isinstance(number, int) and abs(number) > INT_LIMIT:
                raise InputError(
                    f"{name} 数值过大 / {name} is out of range: {shown(str(number), 24)}",
                    where=ctx.command_path,
                    hint=f"at most {INT_LIMIT}",
                )
        for text in _strings(value):
            if has_surrogates(text):
                name = param_name(param)
                raise InputError(
                    f"{name} 含有非 UTF-8 字节 / {name} is not valid UTF-8 text: {shown(text)}",
                    where=ctx.command_path,
                    hint="请以 UTF-8 重新输入 / retype it in UTF-8",
                )
            if isinstance(param.type, click.types.StringParamType):
                zh, en, limit, multiline = _TEXT_RULES.get(
                    f"{ctx.info_name}.{param.name}",
                    _TEXT_RULES.get(param.name, ("文本", "the text", LIMITS["note"], False)),
                )
                check_text(
                    text,
                    zh=f"{param_name(param)} {zh}",
                    en=f"{param_name(param)} ({en})",
                    where=ctx.command_path,
                    max_len=limit,
                    multiline=multiline,
                )


def guard_arguments(cmd: click.Command) -> None:
    """Wrap the callback of ``cmd`` and of every command below it with :func:`check_params`."""
    callback = cmd.callback
    if callback is not None and not getattr(callback, "_station_guarded", False):

        @functools.wraps(callback)
        def checked(*args: Any, **kwargs: Any) -> Any:
            check_params(click.get_current_context())
            return callback(*args, **kwargs)

        checked._station_guarded = True  # type: ignore[attr-defined]
        cmd.callback = checked
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            guard_arguments(sub)


def check_home(home: Path) -> None:
    """``--home`` must be a folder, or not exist yet under a folder (``station init`` makes it)."""
    text = os.fspath(home)
    if has_surrogates(text):
        raise InputError(
            f"--home 含有非 UTF-8 字节 / --home is not valid UTF-8 text: {shown(text)}",
            where="--home / STATION_HOME",
        )
    hint = "point --home (or STATION_HOME) at the station's folder"
    try:
        if home.is_dir():
            return
        if home.exists() or home.is_symlink():
            raise InputError("数据目录不是文件夹 / --home is not a folder", where=text, hint=hint)
        parent = home.absolute().parent  # the nearest existing parent must be a folder
        while not (parent.exists() or parent.is_symlink()) and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise InputError(
                f"数据目录位于文件之下 / --home lies under a file: {parent}", where=text, hint=hint
            )
    except OSError as exc:
        raise InputError(
            f"数据目录不可用 / --home cannot be used: {exc.strerror or exc}",
            where=shown(text, 200),
            hint=hint,
        ) from exc


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _catalog_path(ctx: click.Context) -> str:
    app = ctx.find_root().obj
    vault = getattr(app, "vault", None)
    return str(vault.catalog_path) if vault is not None else "catalog.sqlite"


def _fail(exc: StationError) -> NoReturn:
    click.echo(f"错误 / error: {escape_text(exc.render())}", err=True)
    raise click.exceptions.Exit(exc.exit_code)


def _internal(ctx: click.Context, exc: BaseException) -> NoReturn:
    """Write the traceback to the error log; tell the person briefly where it is."""
    text = "".join(traceback.format_exception(exc))
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    entry = f"--- {stamp} pid {os.getpid()} argv {sys.argv[1:]!r}\n{text}\n"
    where: str | None = None
    app = ctx.find_root().obj
    vault = getattr(app, "vault", None)
    candidates = [vault.run] if vault is not None else []
    candidates.append(Path(tempfile.gettempdir()))
    for folder in candidates:
        try:
            if not folder.is_dir():
                continue
            path = folder / "internal-errors.log"
            with open(path, "a", encoding="utf-8", errors="backslashreplace") as f:
                f.write(entry)
            where = str(path)
            break
        except OSError:
            continue
    if os.environ.get("STATION_LOG_JSON") == "1":
        log.error("cli.internal_error", error=repr(exc), report=where, exc_info=exc)
    err = InternalError(
        f"采集站内部错误 / internal error of the station ({type(exc).__name__})",
        where=where,
        hint="详情见该文件，请报告维护人员 / details are in that file; please report it",
    )
    _fail(err)


class StationGroup(click.Group):
    """The ``station`` group: the one catch at the top (see the module docstring)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _PASS_THROUGH:
            raise
        except StationError as exc:
            _fail(exc)
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                _internal(ctx, exc)
            _fail(
                CatalogBusyError(
                    "目录数据库被其他进程占用 / the catalog is locked by another process",
                    where=_catalog_path(ctx),
                    hint="wait until the other station command finishes, then try again",
                )
            )
        except OSError as exc:
            if exc.filename is None:
                _internal(ctx, exc)
            name = os.fspath(exc.filename)
            if isinstance(name, bytes):
                name = name.decode("utf-8", "backslashreplace")
            _fail(
                FileAccessError(
                    f"无法读写 / cannot use {shown(name, 200)}: {exc.strerror or exc}",
                    where=ctx.command_path,
                )
            )
        except Exception as exc:
            _internal(ctx, exc)
