"""Shared pieces of the command line: the application context, output as JSON or a table."""

from __future__ import annotations

import datetime as dt
import functools
import getpass
import json
import os
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click
import sqlite_utils

from station.config import Settings
from station.errors import InputError, StationError
from station.text import escape_text
from station.vault import Vault

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class App:
    """What every command gets: the vault, its settings and catalog (opened on first use)."""

    vault: Vault
    actor: str
    _settings: Settings | None = None
    _db: sqlite_utils.Database | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = self.vault.settings()
        return self._settings

    @property
    def db(self) -> sqlite_utils.Database:
        if self._db is None:
            from station.catalog import open_catalog

            self.vault.check()
            self._db = open_catalog(self.vault.catalog_path)
        return self._db


def default_actor() -> str:
    return os.environ.get("STATION_USER") or getpass.getuser()


pass_app = click.make_pass_decorator(App)


def json_option(f: F) -> F:
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="机器可读的 JSON 输出 / machine-readable JSON output",
    )(f)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain text table that lines up Chinese (double-width) characters too.

    Every cell is shown through ``escape_text``: a line break, control character or bidi
    override in a value (a file name from a recorder, a sidecar) is printed as an escape, so
    one row stays one line and reads as what it holds."""
    body = [["" if v is None else escape_text(str(v)) for v in row] for row in rows]
    headers = [escape_text(h) for h in headers]
    widths = [_width(h) for h in headers]
    for row in body:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], _width(cell))
    lines = [
        "  ".join(_pad(h, widths[i]) for i, h in enumerate(headers)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(_pad(c, widths[i]) for i, c in enumerate(row)).rstrip() for row in body]
    return "\n".join(lines)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    click.echo(format_table(headers, rows))


def handle_errors(f: F) -> F:
    """Turn a StationError into a clear message on stderr and its exit code."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except StationError as exc:
            click.echo(f"错误 / error: {escape_text(exc.render())}", err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


def parse_time_option(text: str, tz: str, where: str) -> dt.datetime:
    """An ISO date or time typed on the command line (station-local without an offset); a
    value that is not one, or lies outside the calendar, is an InputError naming ``where``."""
    from station.timeutil import parse_iso

    try:
        return parse_iso(text, tz)
    except (ValueError, OverflowError) as exc:
        raise InputError(
            f"不是 ISO 日期时间 / not an ISO date or time: {escape_text(text[:60])!r}",
            where=where,
            hint="e.g. 2026-05-01 or 2026-05-01T14:30:00+08:00",
        ) from exc


def human_bytes(n: int | float | None) -> str:
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def resolve_path(p: str) -> Path:
    return Path(p).expanduser().resolve()
