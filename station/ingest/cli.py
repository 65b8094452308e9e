"""``station ingest``: a mounted recorder volume or a folder, from the command line."""

from __future__ import annotations

import math
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import click

from station.cli_util import (
    App,
    human_bytes,
    json_option,
    pass_app,
    print_json,
)
from station.errors import IngestError, IngestIncompleteError, InputError, StationError
from station.ingest.engine import IngestContext, IngestProgress, IngestReport, ingest_volume
from station.text import escape_text


def _print_summary(
    report: IngestReport, as_json: bool, gaps: list[dict[str, str]] | None = None
) -> None:
    s = report.summary()
    if as_json:
        print_json(
            {
                **s,
                "flags": gaps or [],
                "files_detail": [
                    {
                        "path": f.rel,
                        "outcome": f.outcome,
                        "sha256": f.sha256,
                        "size": f.size,
                        "error": f.error,
                        "damaged": f.damaged,
                    }
                    for f in report.files
                ],
            }
        )
        return
    for f in report.files:
        if f.outcome in ("failed", "skipped") or f.damaged:
            why = f.error or f.damaged
            click.echo(f"  {f.outcome:8} {escape_text(f.rel)}: {why}", err=True)
    click.echo(
        f"会话 / session {s['session_id']}: 文件 files {s['files']}, 新增 new {s['new']}, "
        f"已有 held {s['held']}, 失败 failed {s['failed']}, 跳过 skipped {s['skipped']}, "
        f"损坏 damaged {s['damaged']}; {human_bytes(s['bytes'])} in {s['seconds']} s "
        f"({s['mb_per_s']} MB/s)"
    )
    if s["aborted"]:
        click.echo(f"已中止 / aborted: {s['aborted']}", err=True)


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGTERM, SIGINT and SIGHUP only set the run's stop event: the engine stops between
    chunks, removes this run's partial copies, commits what it verified and closes its session
    as interrupted (never left ``running``)."""
    stop = threading.Event()
    wanted = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signals reach the main thread only; a caller there owns them
        return
    before = {sig: signal.getsignal(sig) for sig in wanted}

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in wanted:
        signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, old in before.items():
            signal.signal(sig, old)


def check_drift(drift: float | None, bound_s: float) -> None:
    """R3: a drift given by hand is bounded like the dock's measurement — a finite number of
    seconds, at most ``dock.implausible_drift_s`` either way (beyond that the dock does not
    correct file times, so neither may a person)."""
    if drift is None:
        return
    if not math.isfinite(drift) or abs(drift) > bound_s:
        raise InputError(
            f"时钟偏差不合理 / --drift {drift:g} s is not a plausible clock drift",
            where="--drift",
            hint=f"at most ±{bound_s:g} s (dock.implausible_drift_s); "
            "a clock off by more was reset: ingest without --drift",
        )


@click.command("ingest")
@click.argument("volume", type=click.Path(exists=True, file_okay=False))
@click.option("--device", help="记录仪编号 / device id (default: from file names)")
@click.option("--officer", help="执法证号 / certificate number (default: from file names / device)")
@click.option("--unit", help="单位编号 / unit number")
@click.option("--drift", type=float, help="已测得的时钟偏差 (秒) / measured device clock drift (s)")
@json_option
@pass_app
def ingest_cmd(
    app: App,
    volume: str,
    device: str | None,
    officer: str | None,
    unit: str | None,
    drift: float | None,
    as_json: bool,
) -> None:
    """采集一个已挂载的记录仪存储卷或文件夹 / Ingest a mounted recorder volume or folder.

    每个文件只读一次，边拷贝边计算 SHA-256，落盘后从磁盘重读校验，然后入库 (R7)。
    Every file is read once while hashed, re-read from disk to verify, then catalogued.
    Exit code is non-zero if any file failed.
    """
    from station.access.guard import ANYONE, SERVICE, guard
    from station.ingest.engine import recover_at_startup

    check_drift(drift, app.settings.dock.implausible_drift_s)
    guard(app, *ANYONE, SERVICE)
    recover_at_startup(app.vault, app.db, actor=app.actor)
    ctx = IngestContext(
        kind="cli",
        device_id=device,
        officer_id=officer,
        unit_id=unit,
        drift_s=drift,
        method="folder ingest (station ingest)",
    )
    bar: Any = None
    state = {"done": 0}

    def progress(p: IngestProgress) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(
                length=max(p.bytes_total, 1),
                label="采集 / ingest",
                file=sys.stderr,
                show_pos=False,
                show_percent=True,
            )
            bar.__enter__()
        bar.update(p.bytes_done - state["done"])
        state["done"] = p.bytes_done

    use_bar = not as_json and sys.stderr.isatty()
    try:
        with _stop_on_signals() as stop:
            report = ingest_volume(
                app.vault,
                app.db,
                app.settings,
                Path(volume),
                ctx,
                actor=app.actor,
                progress=progress if use_bar else None,
                stop=stop,
            )
    except StationError as exc:
        if bar is not None:
            bar.__exit__(None, None, None)
        if isinstance(exc, IngestError) and exc.report is not None:
            _print_summary(exc.report, as_json)
        raise
    if bar is not None:
        bar.__exit__(None, None, None)
    from station.usb_dock.gaps import record_all_devices

    # R20: gaps in the devices' file numbers and time line, as for a dock session.
    gaps = [f.as_dict() for f in record_all_devices(app.db, report.session_id, actor=app.actor)]
    _print_summary(report, as_json, gaps)
    if not as_json:
        for g in gaps:
            click.echo(f"警告 / warning: {g['message']}", err=True)
    if not report.ok:
        s = report.summary()
        stopped = f"; 已中止 / stopped: {report.aborted}" if report.aborted else ""
        raise IngestIncompleteError(
            f"有文件未采集 / not every file was stored: 失败 failed {s['failed']}, "
            f"跳过 skipped {s['skipped']}{stopped}",
            where=str(volume),
            hint="see the list above; fix the files or the recorder and ingest again",
            report=report,
        )


COMMANDS = [ingest_cmd]
