"""``station ingest``, ``station recordings list|show``."""

from __future__ import annotations

import datetime as dt
import math
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

import click

from station.cli_groups import recordings
from station.cli_util import (
    App,
    handle_errors,
    human_bytes,
    json_option,
    parse_time_option,
    pass_app,
    print_json,
    print_table,
    stream_json,
    time_header,
)
from station.errors import InputError, StationError
from station.ingest.engine import IngestContext, IngestProgress, IngestReport, ingest_volume
from station.recref import resolve, short
from station.text import escape_text
from station.timeutil import human_time, to_iso, zone_words


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
@handle_errors
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
        partial = getattr(exc, "report", None)
        if partial is not None:
            _print_summary(partial, as_json)
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
        sys.exit(2)


_COLUMNS = (
    "sha256",
    "recorded_at",
    "device_id",
    "officer_id",
    "unit_id",
    "media_kind",
    "size",
    "duration_s",
    "important",
    "damaged",
    "state",
    "original_name",
)


@recordings.command("list")
@click.option("--officer", help="执法证号 / certificate number")
@click.option("--device", help="记录仪编号 / device id")
@click.option("--unit", help="单位编号 / unit number")
@click.option("--since", help="录制时间起 / recorded at or after (ISO, station time zone)")
@click.option("--until", help="录制时间止 / recorded before (ISO, station time zone)")
@click.option(
    "--state",
    default="stored",
    show_default=True,
    type=click.Choice(["stored", "pending_purge", "purged", "all"]),
)
@click.option("--limit", default=1000, show_default=True)
@json_option
@pass_app
@handle_errors
def recordings_list(
    app: App,
    officer: str | None,
    device: str | None,
    unit: str | None,
    since: str | None,
    until: str | None,
    state: str,
    limit: int,
    as_json: bool,
) -> None:
    """列出录像 / List recordings, newest first (R6)."""
    where, args = [], []
    tz = app.settings.station.timezone
    for col, val in (("officer_id", officer), ("device_id", device), ("unit_id", unit)):
        if val:
            where.append(f"{col} = ?")
            args.append(val)
    if since:
        where.append("recorded_at >= ?")
        args.append(to_iso(parse_time_option(since, tz, "--since")))
    if until:
        where.append("recorded_at < ?")
        args.append(to_iso(parse_time_option(until, tz, "--until")))
    if state != "all":
        where.append("state = ?")
        args.append(state)
    from station.access import departments

    mine = departments.user_department(app.db, app.actor)
    if mine is not None:  # R14: a department's account lists its footage and unassigned footage
        where.append(f"coalesce({departments.DEPARTMENT_SQL}, ?) = ?")
        args += [mine, mine]
    sql = f"select {', '.join(_COLUMNS)} from recordings r"
    if where:
        sql += " where " + " and ".join(where)
    sql += " order by recorded_at desc limit ?"
    if as_json:
        # streamed: a million rows go out as they are read, in constant memory
        stream_json(_COLUMNS, app.db.execute(sql, [*args, limit]))
        return
    rows = list(app.db.query(sql, [*args, limit]))
    print_table(
        [
            "编号 / id",
            time_header("录制", "recorded", tz),
            "设备 / device",
            "执法证号 / cert. no.",
            "类型 / kind",
            "大小 / size",
            "重要 / IMP",
            "损坏 / dmg",
            "文件名 / name",
        ],
        [
            [
                short(r["sha256"]),
                human_time(r["recorded_at"], tz),
                r["device_id"],
                r["officer_id"],
                MEDIA_KINDS.get(r["media_kind"], r["media_kind"]),
                human_bytes(r["size"]),
                "★" if r["important"] else "",
                "!" if r["damaged"] else "",
                r["original_name"],
            ]
            for r in rows
        ],
    )
    click.echo(f"共 {len(rows)} 条 / {len(rows)} recordings")


def find_recording(app: App, sha: str) -> dict[str, Any]:
    full = resolve(app.db, sha)
    return dict(next(app.db.query("select * from recordings where sha256 = ?", [full])))


def _stops_beside(app: App, row: dict[str, Any]) -> list[dict[str, Any]]:
    """R18: the officer's stop notes on the local day the recording was made."""
    from station.oversight.stops import near

    when = row.get("recorded_at")
    if not when:
        return []
    tz = ZoneInfo(app.settings.station.timezone)
    day = dt.datetime.fromisoformat(when).astimezone(tz).date()
    start = dt.datetime.combine(day, dt.time(), tz)
    return near(app.db, row.get("officer_id"), to_iso(start), to_iso(start + dt.timedelta(days=1)))


MEDIA_KINDS = {"video": "视频", "audio": "录音", "image": "照片", "other": "其他"}


@recordings.command("show")
@click.argument("sha256")
@json_option
@pass_app
@handle_errors
def recordings_show(app: App, sha256: str, as_json: bool) -> None:
    """显示一条录像的全部信息 / Show one recording: metadata, sightings, audit trail."""
    from station.access import departments

    row = find_recording(app, sha256)
    # R14: another department's footage is not shown to a department's account (audited)
    departments.check_scope(app.db, app.actor, [row["sha256"]], "recordings show")
    sightings = list(
        app.db.query(
            "select session_id, source_path, outcome, at from sightings"
            " where sha256 = ? order by id",
            [row["sha256"]],
        )
    )
    trail = list(
        app.db.query(
            "select seq, at, actor, event from audit_log where subject = ? order by seq",
            [row["sha256"]],
        )
    )
    stops = _stops_beside(app, row)
    if as_json:
        print_json({**row, "sightings": sightings, "audit": trail, "stop_notes": stops})
        return
    tz = app.settings.station.timezone
    click.echo(f"时间为{zone_words(tz)}")
    for k, v in row.items():
        shown = human_time(v, tz) if k.endswith("_at") and v else v
        click.echo(f"{k:20} {'' if shown is None else escape_text(str(shown))}")
    if stops:
        click.echo("\n同日停止记录说明 / stop-recording notes that day (R18):")
        print_table(
            ["编号 / no.", time_header("停止", "stopped", tz), "恢复 / resumed", "情形 / situation",
             "审核 / state"],
            [
                [
                    n["id"],
                    human_time(n["stopped_at"], tz),
                    human_time(n["resumed_at"], tz) if n["resumed_at"] else "—",
                    n["situation_text"],
                    n["state_text"],
                ]
                for n in stops
            ],
        )  # fmt: skip
    click.echo("\n接入记录 / sightings:")
    print_table(
        ["session", "path", "outcome", time_header("时间", "at", tz)],
        [
            [s["session_id"], s["source_path"], s["outcome"], human_time(s["at"], tz)]
            for s in sightings
        ],
    )
    click.echo("\n审计 / audit trail:")
    print_table(
        ["seq", time_header("时间", "at", tz), "actor", "event"],
        [[a["seq"], human_time(a["at"], tz), a["actor"], a["event"]] for a in trail],
    )


COMMANDS = [ingest_cmd]
