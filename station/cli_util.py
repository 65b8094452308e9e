"""Shared pieces of the command line: the application context, output as JSON or a table."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from station import timeutil
from station.errors import InputError, StationError
from station.text import escape_text
from station.vault import Vault

if TYPE_CHECKING:
    import sqlite_utils

    from station.config import Settings

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class App:
    """What every command gets: the vault, its settings and catalog (opened on first use)."""

    vault: Vault
    actor: str
    actor_given: bool = False  # --user / STATION_USER named the account explicitly
    service: bool = False  # --service: the station's own service identity is claimed
    proven: bool = False  # ``actor`` was proven by ``require_role`` in this command
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


def stream_json(columns: Sequence[str], rows: Iterable[Sequence[Any]], batch: int = 2000) -> None:
    """Write rows as a JSON array of objects, one object a line, while reading them: memory
    stays flat however many rows come (the whole document is never built)."""
    encode = json.JSONEncoder(ensure_ascii=False, default=str).encode
    out = sys.stdout
    first = True
    chunk: list[str] = []
    out.write("[")
    for row in rows:
        chunk.append(encode(dict(zip(columns, row, strict=True))))
        if len(chunk) >= batch:
            out.write(("\n" if first else ",\n") + ",\n".join(chunk))
            first = False
            chunk = []
    if chunk:
        out.write(("\n" if first else ",\n") + ",\n".join(chunk))
        first = False
    out.write("]\n" if first else "\n]\n")
    out.flush()


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
    head_rows = [list(headers)]
    if sum(widths) + 2 * (len(widths) - 1) > TABLE_WIDTH:
        # too wide on one line: bilingual headers stand on two lines, Chinese over English
        split = [[*re.split(r"\s*/\s*", h, maxsplit=1), ""][:2] for h in headers]
        head_rows = [[p[0] for p in split], [p[1] for p in split]]
        widths = [
            max([_width(p) for p in split[i]] + [_width(r[i]) for r in body])
            for i in range(len(headers))
        ]
    # ids and times (short cells) keep one line while longer text can give way
    natural = [max([_width(r[i]) for r in body] + [0]) for i in range(len(headers))]
    widths = _fit_widths(widths, TABLE_WIDTH, rigid=[n <= 19 for n in natural])
    lines = [line for h in head_rows for line in _wrapped_lines(h, widths)]
    lines.append("  ".join("-" * w for w in widths))
    for row in body:
        lines += _wrapped_lines(row, widths)
    return "\n".join(lines)


# Tables never run past this many columns: the widest columns give way first and their cells
# wrap onto continuation lines (nothing is cut off).
TABLE_WIDTH = 120
_MIN_COL = 10


def _fit_widths(widths: list[int], limit: int, rigid: Sequence[bool] = ()) -> list[int]:
    """Narrow the widest column one step at a time: first every column down to 20, then the
    columns of long text (not ``rigid``: ids, times) down to 10, then any column down to 10."""
    out = list(widths)
    budget = limit - 2 * (len(out) - 1)
    stiff = list(rigid) or [False] * len(out)
    for floor, movable in ((20, None), (_MIN_COL, False), (_MIN_COL, None)):
        while sum(out) > budget:
            cand = [k for k in range(len(out)) if movable is None or stiff[k] == movable]
            if not cand:
                break
            i = max(cand, key=lambda k: out[k])
            if out[i] <= floor:
                break
            out[i] -= 1
    return out


def _chunks(text: str, width: int) -> list[str]:
    """``text`` cut into pieces of at most ``width`` display columns (CJK counts 2)."""
    pieces, cur, used = [], "", 0
    for ch in text:
        w = _width(ch)
        if used + w > width and cur:
            pieces.append(cur)
            cur, used = "", 0
        cur += ch
        used += w
    pieces.append(cur)
    return pieces


def _wrapped_lines(cells: Sequence[str], widths: Sequence[int]) -> list[str]:
    parts = [_chunks(c, widths[i]) for i, c in enumerate(cells)]
    height = max((len(p) for p in parts), default=1)
    return [
        "  ".join(_pad(p[n] if n < len(p) else "", widths[i]) for i, p in enumerate(parts)).rstrip()
        for n in range(height)
    ]


def time_header(zh: str, en: str, tz: str) -> str:
    """A time column header naming the zone once: ``录制（北京时间）/ recorded (Beijing time)``."""
    from station.timeutil import zone_words

    zone_zh, _, zone_en = zone_words(tz).partition(" / ")
    return f"{zh}（{zone_zh}）/ {en} ({zone_en})"


# a stored time (ISO 8601, UTC with Z or an offset) as it reaches a table cell
_STORED_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def display_tz() -> str:
    """The station's zone for people (``station.timezone``) from the running command's App;
    outside a command (a daemon or web thread) or when the settings cannot be read, the zone the
    daemon or web app set at start (``timeutil.station_zone``, Asia/Shanghai by default)."""
    ctx = click.get_current_context(silent=True)
    app = ctx.find_object(App) if ctx is not None else None
    if app is not None:
        try:
            return app.settings.station.timezone
        except StationError:
            pass
    return timeutil.station_zone()


timeutil.DISPLAY_TZ[:] = [display_tz]  # said_time() in messages raised below the CLI


def people_rows(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], tz: str
) -> tuple[list[str], list[list[Any]]]:
    """Stored times in cells become the station's wall clock; the header of each such column
    names the zone once (``时间（北京时间）/ at``)."""
    from station.timeutil import human_time, zone_words

    out = [list(r) for r in rows]
    converted: set[int] = set()
    for r in out:
        for i, v in enumerate(r):
            if isinstance(v, str) and _STORED_TIME.match(v):
                r[i] = human_time(v, tz)
                converted.add(i)
    zone_zh = zone_words(tz).split(" / ")[0]
    heads = list(headers)
    for i in converted:
        if i < len(heads) and zone_zh not in heads[i]:
            zh, sep, en = heads[i].partition(" / ")
            heads[i] = f"{zh}（{zone_zh}）{sep}{en}" if sep else f"{zh}（{zone_zh}）"
    return heads, out


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A table for people: stored times shown in 北京时间 (see ``people_rows``), 120 columns."""
    heads, body = people_rows(headers, rows, display_tz())
    click.echo(format_table(heads, body))


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


def write_output(path: str | Path, data: str | bytes, what: str) -> None:
    """Write a page or report a person asked for with ``--output``. A FIFO nobody reads fails
    at once (``O_NONBLOCK``: ENXIO) instead of hanging; a pipe with a reader and plain files
    work as usual; any OS error is a StationError naming the file."""
    blob = data if isinstance(data, bytes) else data.encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK, 0o644)
        os.set_blocking(fd, True)
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
    except OSError as exc:
        raise StationError(
            f"无法写入{what} / cannot write the {WHAT_EN.get(what, 'file')}: {exc.strerror}",
            where=str(path),
        ) from exc


WHAT_EN = {"报表": "report", "页面": "page"}


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
