"""``station report retention|compliance|devices`` (R17): each as a table, CSV (one table per
file, UTF-8 with BOM), XLSX (one sheet per section), JSON, a printable self-contained HTML page
or a PDF (``--format``; ``--json`` is ``--format json``)."""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from station.cases.cli import parse_time
from station.cli_groups import report
from station.cli_util import App, handle_errors, json_option, pass_app, write_output
from station.errors import StationError
from station.log import get
from station.reports.compliance_report import build_compliance
from station.reports.devices_report import build_devices
from station.reports.model import Report
from station.reports.render import BINARY, FORMATS, render
from station.reports.retention_report import build_retention
from station.timeutil import utcnow

log = get()
F = TypeVar("F", bound=Callable[..., Any])


def output_options(f: F) -> F:
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="输出格式 / output format",
    )
    @click.option("--section", help="只输出一节 / only this section (its key)")
    @click.option(
        "--output",
        "-o",
        type=click.Path(dir_okay=False),
        help="写入文件 / write to this file instead of the screen",
    )
    @click.option("--now", "now_text", help="报表时间（ISO）/ report as of this time")
    @json_option
    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return f(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def emit(
    rep: Report,
    fmt: str,
    as_json: bool,
    section: str | None,
    output: str | None,
    tz: str | None = None,
) -> None:
    """Render and print or write. CSV of a report with several sections and ``-o FILE``
    writes one file per section (``FILE-stem-<key>.csv``); XLSX and PDF need ``-o``."""
    fmt = "json" if as_json else fmt
    if fmt == "csv" and section is None and len(rep.sections) > 1:
        if not output:
            raise StationError(
                "CSV 每个文件一张表 / CSV holds one table per file",
                where="--format csv",
                hint="give --section KEY, or -o FILE for one file per section; sections: "
                + ", ".join(s.key for s in rep.sections),
            )
        base = Path(output)
        for s in rep.sections:
            _write(rep, fmt, s.key, base.with_name(f"{base.stem}-{s.key}{base.suffix}"), tz)
        return
    if fmt in BINARY and not output:
        raise StationError(
            f"{fmt.upper()} 需要输出文件 / {fmt.upper()} needs an output file",
            where="--format",
            hint=f"add -o report.{fmt}",
        )
    if output:
        _write(rep, fmt, section, Path(output), tz)
    else:
        click.echo(_render(rep, fmt, section, tz), nl=False)


def _render(rep: Report, fmt: str, section: str | None, tz: str | None) -> Any:
    try:
        return render(rep, fmt, section, tz=tz)
    except KeyError:
        raise StationError(
            f"没有这一节 / no section {section!r}",
            where="--section",
            hint="one of " + ", ".join(s.key for s in rep.sections),
        ) from None


def _write(rep: Report, fmt: str, section: str | None, path: Path, tz: str | None) -> None:
    body = _render(rep, fmt, section, tz)
    write_output(path, body, "报表")
    log.info("report.written", kind=rep.kind, format=fmt, path=str(path))
    click.echo(f"已写入 / written: {path}", err=True)


@report.command("retention")
@click.option(
    "--days",
    type=click.IntRange(1, 3650),
    default=30,
    show_default=True,
    help="到期窗口天数 / expiry window in days",
)
@click.option("--limit", type=int, default=200, show_default=True, help="每节行数 / rows")
@output_options
@pass_app
@handle_errors
def retention_cmd(
    app: App,
    days: int,
    limit: int,
    fmt: str,
    section: str | None,
    output: str | None,
    now_text: str | None,
    as_json: bool,
) -> None:
    """保存期报表 / What expires soon and why, what is held, long-term cases and their discs,
    storage per class, free-space forecast (R9–R12)."""
    now = parse_time(now_text, app, "--now") or utcnow()
    usage = shutil.disk_usage(app.vault.home)
    rep = build_retention(
        app.db, app.settings, now=now, days=days, limit=limit, disk=(usage.total, usage.free)
    )
    emit(rep, fmt, as_json, section, output, app.settings.station.timezone)


@report.command("compliance")
@click.option("--from", "since", help="采集时间起（默认30天前）/ ingested from (default 30 d ago)")
@click.option("--to", "until", help="采集时间止（默认现在）/ ingested before (default now)")
@click.option("--limit", type=int, default=200, show_default=True, help="迟交明细行数 / rows")
@output_options
@pass_app
@handle_errors
def compliance_cmd(
    app: App,
    since: str | None,
    until: str | None,
    limit: int,
    fmt: str,
    section: str | None,
    output: str | None,
    now_text: str | None,
    as_json: bool,
) -> None:
    """合规报表 / Late ingests per officer and unit (R1 24 h, R2 working days) and cases not
    archived within the R13 deadline."""
    now = parse_time(now_text, app, "--now") or utcnow()
    rep = build_compliance(
        app.db,
        app.settings,
        now=now,
        since=parse_time(since, app, "--from"),
        until=parse_time(until, app, "--to"),
        limit=limit,
    )
    emit(rep, fmt, as_json, section, output, app.settings.station.timezone)


@report.command("devices")
@click.option(
    "--days",
    type=click.IntRange(1, 3650),
    default=90,
    show_default=True,
    help="统计天数 / days of sessions",
)
@output_options
@pass_app
@handle_errors
def devices_cmd(
    app: App,
    days: int,
    fmt: str,
    section: str | None,
    output: str | None,
    now_text: str | None,
    as_json: bool,
) -> None:
    """记录仪状况 / Per recorder: battery at dock, drift history, failed sessions, last seen
    (R3, R4)."""
    now = parse_time(now_text, app, "--now") or utcnow()
    rep = build_devices(app.db, app.settings, now=now, days=days)
    emit(rep, fmt, as_json, section, output, app.settings.station.timezone)


COMMANDS: list[click.Command] = []  # the commands live in the shared `report` group
