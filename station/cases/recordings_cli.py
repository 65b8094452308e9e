"""``station recordings list|show|tag|hold|release|review|mark-long-term|search`` (R5, R6, R11,
R14, R18): every command of the shared ``recordings`` group lives here."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import click

from station.access import departments
from station.access.guard import CLERK, SUPERVISOR, guard
from station.cases import search as search_mod
from station.cases import tags
from station.cases.cli import REASON_HELP, parse_time
from station.cases.model import CATEGORIES
from station.catalog.where import Where
from station.cli_groups import recordings
from station.cli_util import (
    App,
    human_bytes,
    json_option,
    parse_time_option,
    pass_app,
    print_json,
    print_table,
    stream_json,
    time_header,
)
from station.recref import resolve, resolve_many, short
from station.retention.policy import reason_text
from station.text import escape_text
from station.timeutil import human_time, to_iso, zone_words


@recordings.command("tag")
@click.argument("sha256", nargs=-1, required=True)
@click.option(
    "--category",
    help="分类 / category: " + ", ".join(f"{k} {zh}" for k, (zh, _) in CATEGORIES.items()),
)
@click.option("--proves", help="证明对象 / what it proves (R5)")
@click.option("--sound-content", help="录音内容 / content of the sound recording (R13 slip)")
@click.option("--department", help="科室 / department (R6)")
@json_option
@pass_app
def tag_cmd(
    app: App,
    sha256: tuple[str, ...],
    category: str | None,
    proves: str | None,
    sound_content: str | None,
    department: str | None,
    as_json: bool,
) -> None:
    """标注录像 / Tag recordings: category (R6), what they prove (R5), the content of sound
    recordings (R13)."""
    guard(app, *CLERK)
    sha256 = resolve_many(app.db, sha256)
    done = tags.tag(
        app.db,
        sha256,
        category=category,
        proves=proves,
        sound_content=sound_content,
        department=department,
        actor=app.actor,
    )
    if as_json:
        print_json({"tagged": done})
    else:
        click.echo(f"已标注 / tagged: {len(done)}")


@recordings.command("hold")
@click.argument("sha256", nargs=-1, required=True)
@click.option("--reason", required=True, help="保全理由 / why it is held")
@json_option
@pass_app
def hold_cmd(app: App, sha256: tuple[str, ...], reason: str, as_json: bool) -> None:
    """法律保全 / Place a legal hold: never purged until released."""
    guard(app, *CLERK)
    sha256 = resolve_many(app.db, sha256)
    ids = tags.hold(app.db, sha256, reason=reason, actor=app.actor)
    if as_json:
        print_json({"holds": ids})
    else:
        click.echo(f"已保全 / held: {len(ids)}")


@recordings.command("release")
@click.argument("sha256", nargs=-1, required=True)
@click.option("--note", help="说明 / note")
@json_option
@pass_app
def release_cmd(app: App, sha256: tuple[str, ...], note: str | None, as_json: bool) -> None:
    """解除保全 / Release the legal holds on recordings (a supervisor: it may let footage
    expire)."""
    guard(app, *SUPERVISOR)
    sha256 = resolve_many(app.db, sha256)
    ids = tags.release(app.db, sha256, note=note, actor=app.actor)
    if as_json:
        print_json({"released": ids})
    else:
        click.echo(f"已解除 / released holds: {len(ids)}")


@recordings.command("review")
@click.argument("sha256", nargs=-1, required=True)
@json_option
@pass_app
def review_cmd(app: App, sha256: tuple[str, ...], as_json: bool) -> None:
    """审核重要标记 / Record that a clerk reviewed recordings with the important marker."""
    guard(app, *CLERK)
    sha256 = resolve_many(app.db, sha256)
    done = tags.review(app.db, sha256, actor=app.actor)
    if as_json:
        print_json({"reviewed": done})
    else:
        click.echo(f"已审核 / reviewed: {len(done)}")


@recordings.command("mark-long-term")
@click.argument("sha256", nargs=-1, required=True)
@click.option("--reason", "reasons", type=int, multiple=True, help=REASON_HELP)
@click.option("--note", help="说明 / note")
@json_option
@pass_app
def rec_mark_cmd(
    app: App, sha256: tuple[str, ...], reasons: tuple[int, ...], note: str | None, as_json: bool
) -> None:
    """录像长期保存 / Mark single recordings for long-term keeping (R11), one or more reasons
    of 第十四条. To burn them without a case, group them in an enforcement activity
    (`station activities create`)."""
    guard(app, *CLERK)
    sha256 = resolve_many(app.db, sha256)
    done = tags.mark_long_term(
        app.db, sha256, reason=list(reasons) or None, note=note, actor=app.actor
    )
    if as_json:
        print_json(
            {
                "marked": done,
                "reason": reasons[0] if reasons else None,
                "reasons": list(reasons),
                "reasons_text": [reason_text(c) for c in reasons],
            }
        )
    else:
        click.echo(f"已标记 / marked: {len(done)}")
        for code in dict.fromkeys(reasons):
            click.echo(f"  {reason_text(code)}")


@recordings.command("search")
@click.option("--unit", help="单位编号或名称 / unit number or part of its name")
@click.option("--department", help="科室 / department")
@click.option("--device", help="设备编号 / device number")
@click.option("--officer", help="执法证号 / certificate number")
@click.option("--from", "since", help="录制时间起（北京时间）/ recorded from, station time")
@click.option("--to", "until", help="录制时间止（北京时间）/ recorded before, station time")
@click.option("--case", help="案件编号 / case number")
@click.option("--party", help="当事人 / case party")
@click.option("--cause", help="案由 / case cause")
@click.option("--category", help="分类 / category")
@click.option("--held/--not-held", default=None, help="法律保全 / legal hold")
@click.option("--long-term/--not-long-term", default=None, help="长期保存 / R11")
@click.option("--state", type=click.Choice(["stored", "pending_purge", "purged"]))
@click.option("--limit", type=int, default=1000, show_default=True)
@json_option
@pass_app
def search_cmd(app: App, as_json: bool, limit: int, **kw: Any) -> None:
    """按 R6 标签检索录像 / Search recordings by unit, department, device, officer, time,
    case, party, cause (R6)."""
    kw["since"] = parse_time(kw["since"], app, "--from")
    kw["until"] = parse_time(kw["until"], app, "--to")
    rows = search_mod.search(app.db, search_mod.Filters(**kw), limit=limit)
    # R14: an account with a department finds only that department's footage.
    rows = departments.scope_rows(app.db, app.actor, rows)
    if as_json:
        print_json(rows)
        return
    tz = app.settings.station.timezone
    print_table(
        [
            "编号 / id",
            time_header("录制", "recorded", tz),
            "单位 / unit",
            "设备 / device",
            "执法人员 / officer",
            "科室 / department",
            "案件 / cases",
            "分类 / category",
            "状态 / state",
        ],
        [
            (
                short(r["sha256"]),
                human_time(r["recorded_at"], tz),
                r["unit_name"] or r["unit_id"],
                r["device_id"],
                r["officer_id"],
                r["department"],
                r["cases"],
                CATEGORIES.get(r["category"] or "", (r["category"], ""))[0],
                STATE_LABELS.get(r["state"], r["state"]),
            )
            for r in rows
        ],
    )


STATE_LABELS = {
    "stored": "在库 / stored",
    "pending_purge": "待删 / pending purge",
    "purged": "已删除 / purged",
}

COMMANDS: list[click.Command] = []  # the commands live in the shared `recordings` group


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
    tz = app.settings.station.timezone
    w = Where()
    for col, val in (("officer_id", officer), ("device_id", device), ("unit_id", unit)):
        w.given(val, f"{col} = ?")
    if since:
        w.add("recorded_at >= ?", to_iso(parse_time_option(since, tz, "--since")))
    if until:
        w.add("recorded_at < ?", to_iso(parse_time_option(until, tz, "--until")))
    if state != "all":
        w.add("state = ?", state)
    from station.access import departments

    mine = departments.user_department(app.db, app.actor)
    if mine is not None:  # R14: a department's account lists its footage and unassigned footage
        w.add(f"coalesce({departments.DEPARTMENT_SQL}, ?) = ?", mine, mine)
    sql = f"select {', '.join(_COLUMNS)} from recordings r" + w.sql
    sql += " order by recorded_at desc limit ?"
    if as_json:
        # streamed: a million rows go out as they are read, in constant memory
        stream_json(_COLUMNS, app.db.execute(sql, [*w.args, limit]))
        return
    rows = list(app.db.query(sql, [*w.args, limit]))
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
