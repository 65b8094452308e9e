"""``station recordings tag|hold|release|review|mark-long-term|search`` (R5, R6, R11), added to
the shared ``recordings`` group (the ingest part owns ``recordings list|show``)."""

from __future__ import annotations

from typing import Any

import click

from station.access import departments
from station.access.guard import CLERK, SUPERVISOR, guard
from station.cases import search as search_mod
from station.cases import tags
from station.cases.cli import REASON_HELP, parse_time
from station.cases.model import CATEGORIES
from station.cli_groups import recordings
from station.cli_util import (
    App,
    handle_errors,
    json_option,
    pass_app,
    print_json,
    print_table,
    time_header,
)
from station.recref import resolve_many, short
from station.retention.policy import reason_text
from station.timeutil import human_time


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
@handle_errors
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
@handle_errors
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
@handle_errors
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
@handle_errors
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
@handle_errors
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
@handle_errors
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
