"""``station cases …`` and ``station recordings tag|hold|release|review|mark-long-term|search``.

Other tools script against these forms (issue 5); every command has ``--json``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from station.cases import search as search_mod
from station.cases import store, tags
from station.cases.model import CATEGORIES
from station.cli_groups import recordings
from station.cli_util import App, handle_errors, json_option, pass_app, print_json, print_table
from station.errors import StationError
from station.retention.policy import R11_REASONS
from station.timeutil import parse_iso


def parse_time(text: str | None, app: App, where: str) -> dt.datetime | None:
    """An ISO date or time from the command line; without an offset it is station-local."""
    if text is None:
        return None
    try:
        return parse_iso(text, app.settings.station.timezone)
    except ValueError as exc:
        raise StationError(
            f"不是 ISO 日期时间 / not an ISO date or time: {text!r}",
            where=where,
            hint="e.g. 2026-05-01 or 2026-05-01T14:30:00+08:00",
        ) from exc


REASON_HELP = "R11 理由代码 / reason code: " + "; ".join(
    f"{k} {zh} / {en}" for k, (zh, en) in R11_REASONS.items()
)


def _show_case(case: dict[str, Any]) -> None:
    labels = [
        ("number", "案件编号 / number"),
        ("name", "名称 / name"),
        ("cause", "案由 / cause"),
        ("party", "当事人 / party"),
        ("unit_id", "单位 / unit"),
        ("department", "部门 / department"),
        ("status", "状态 / status"),
        ("opened_at", "立案 / opened"),
        ("closed_at", "结案 / closed"),
        ("retention_years", "保存年限 / retention years"),
        ("long_term_reason", "长期保存理由 / long-term reason (R11)"),
        ("long_term_note", "说明 / note"),
        ("archive_location", "存放位置 / archive location (R13)"),
    ]
    for key, label in labels:
        if case.get(key) is not None:
            click.echo(f"{label}: {case[key]}")


@click.group("cases")
def cases_group() -> None:
    """案件：立案、关联录像、长期保存、结案 / Cases: create, link recordings, mark, close."""


@cases_group.command("create")
@click.argument("number")
@click.option("--name", required=True, help="案件名称 / case name")
@click.option("--cause", help="案由 / cause of action (R6)")
@click.option("--party", help="当事人 / party (R6)")
@click.option("--unit", "unit_id", help="单位编号 / unit number")
@click.option("--department", help="部门 / department")
@click.option("--years", type=int, help="结案后保存年限（默认 5）/ years kept after closing (R10)")
@click.option("--opened", help="立案日期 ISO / opening date (default now)")
@json_option
@pass_app
@handle_errors
def create_cmd(app: App, number: str, as_json: bool, **kw: Any) -> None:
    """立案 / Create a case (number may contain spaces and Chinese)."""
    opened = parse_time(kw.pop("opened"), app, "--opened")
    case = store.create_case(
        app.db,
        number,
        actor=app.actor,
        opened_at=opened,
        retention_years=kw.pop("years"),
        **kw,
    )
    if as_json:
        print_json(case)
    else:
        click.echo(f"已立案 / case created: {number}")


@cases_group.command("link")
@click.argument("number")
@click.argument("sha256", nargs=-1, required=True)
@json_option
@pass_app
@handle_errors
def link_cmd(app: App, number: str, sha256: tuple[str, ...], as_json: bool) -> None:
    """关联录像到案件 / Link recordings to a case (R10)."""
    result = store.link(app.db, number, sha256, actor=app.actor)
    if as_json:
        print_json({"case": number, **result})
    else:
        click.echo(
            f"已关联 / linked: {len(result['linked'])}; 原已关联 / already: "
            f"{len(result['already'])}"
        )


@cases_group.command("unlink")
@click.argument("number")
@click.argument("sha256", nargs=-1, required=True)
@json_option
@pass_app
@handle_errors
def unlink_cmd(app: App, number: str, sha256: tuple[str, ...], as_json: bool) -> None:
    """取消关联 / Unlink recordings from a case."""
    done = store.unlink(app.db, number, sha256, actor=app.actor)
    if as_json:
        print_json({"case": number, "unlinked": done})
    else:
        click.echo(f"已取消关联 / unlinked: {len(done)}")


@cases_group.command("mark-long-term")
@click.argument("number")
@click.option("--reason", type=int, help=REASON_HELP)
@click.option("--note", help="说明 / note")
@json_option
@pass_app
@handle_errors
def mark_cmd(app: App, number: str, reason: int | None, note: str | None, as_json: bool) -> None:
    """标记长期保存 / Mark a case for long-term keeping and disc burning (R11)."""
    case = store.mark_long_term(app.db, number, reason=reason, note=note, actor=app.actor)
    if as_json:
        print_json(case)
    else:
        click.echo(f"已标记长期保存 / marked long-term: {number} (R11 reason {reason})")


@cases_group.command("close")
@click.argument("number")
@click.option("--date", "date_", help="结案日期 ISO（默认现在）/ closing date (default now)")
@json_option
@pass_app
@handle_errors
def close_cmd(app: App, number: str, date_: str | None, as_json: bool) -> None:
    """结案 / Close a case; its footage keeps the case's retention from this date (R10)."""
    case = store.close_case(
        app.db, number, actor=app.actor, closed_at=parse_time(date_, app, "--date")
    )
    if as_json:
        print_json(case)
    else:
        click.echo(f"已结案 / closed: {number} at {case['closed_at']}")


@cases_group.command("reopen")
@click.argument("number")
@click.option("--reason", required=True, help="理由 / why it is reopened")
@json_option
@pass_app
@handle_errors
def reopen_cmd(app: App, number: str, reason: str, as_json: bool) -> None:
    """重新立案 / Reopen a closed case (its footage is kept again, R10)."""
    case = store.reopen_case(app.db, number, actor=app.actor, reason=reason)
    if as_json:
        print_json(case)
    else:
        click.echo(f"已重新立案 / reopened: {number}")


@cases_group.command("archived")
@click.argument("number")
@click.option("--location", required=True, help="存放位置 / where the AV record is filed")
@json_option
@pass_app
@handle_errors
def archived_cmd(app: App, number: str, location: str, as_json: bool) -> None:
    """登记归档存放位置 / Record the case's archive location slip (R13)."""
    case = store.set_archive_location(app.db, number, location=location, actor=app.actor)
    if as_json:
        print_json(case)
    else:
        click.echo(f"已登记 / recorded: {number} → {location}")


@cases_group.command("show")
@click.argument("number")
@json_option
@pass_app
@handle_errors
def show_cmd(app: App, number: str, as_json: bool) -> None:
    """查看案件 / Show a case and its recordings."""
    case = store.get_case(app.db, number)
    if as_json:
        print_json(case)
        return
    _show_case(case)
    print_table(
        ["SHA-256", "录制 / recorded", "警员 / officer", "状态 / state"],
        [
            (r["sha256"][:16], r["recorded_at"], r["officer_id"], r["state"])
            for r in case["recordings"]
        ],
    )


@cases_group.command("list")
@click.option("--status", type=click.Choice(["open", "closed"]))
@click.option("--long-term/--not-long-term", default=None, help="长期保存 / R11 marked")
@click.option("--unit", "unit_id")
@click.option("--party", help="当事人包含 / party contains")
@click.option("--cause", help="案由包含 / cause contains")
@click.option("--limit", type=int, default=1000, show_default=True)
@json_option
@pass_app
@handle_errors
def list_cmd(app: App, as_json: bool, **kw: Any) -> None:
    """列出案件 / List cases."""
    rows = store.list_cases(app.db, **kw)
    if as_json:
        print_json(rows)
        return
    print_table(
        ["编号 / number", "名称 / name", "状态 / status", "结案 / closed", "R11", "录像 / recs"],
        [
            (
                r["number"],
                r["name"],
                r["status"],
                r["closed_at"],
                r["long_term_reason"],
                r["recordings"],
            )
            for r in rows
        ],
    )


# --- recordings: tag, hold, release, review, mark-long-term, search -----------------------


@recordings.command("tag")
@click.argument("sha256", nargs=-1, required=True)
@click.option(
    "--category",
    help="分类 / category: " + ", ".join(f"{k} {zh}" for k, (zh, _) in CATEGORIES.items()),
)
@click.option("--proves", help="证明对象 / what it proves (R5)")
@json_option
@pass_app
@handle_errors
def tag_cmd(
    app: App, sha256: tuple[str, ...], category: str | None, proves: str | None, as_json: bool
) -> None:
    """标注录像 / Tag recordings: category (R6) and what they prove (R5)."""
    done = tags.tag(app.db, sha256, category=category, proves=proves, actor=app.actor)
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
    """解除保全 / Release the legal holds on recordings."""
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
    done = tags.review(app.db, sha256, actor=app.actor)
    if as_json:
        print_json({"reviewed": done})
    else:
        click.echo(f"已审核 / reviewed: {len(done)}")


@recordings.command("mark-long-term")
@click.argument("sha256", nargs=-1, required=True)
@click.option("--reason", type=int, help=REASON_HELP)
@click.option("--note", help="说明 / note")
@json_option
@pass_app
@handle_errors
def rec_mark_cmd(
    app: App, sha256: tuple[str, ...], reason: int | None, note: str | None, as_json: bool
) -> None:
    """录像长期保存 / Mark single recordings for long-term keeping (R11)."""
    done = tags.mark_long_term(app.db, sha256, reason=reason, note=note, actor=app.actor)
    if as_json:
        print_json({"marked": done, "reason": reason})
    else:
        click.echo(f"已标记 / marked: {len(done)}")


@recordings.command("search")
@click.option("--unit", help="单位编号或名称 / unit number or part of its name")
@click.option("--department", help="部门 / department")
@click.option("--device", help="设备编号 / device number")
@click.option("--officer", help="警员编号 / officer number")
@click.option("--from", "since", help="录制时间起 / recorded from (ISO)")
@click.option("--to", "until", help="录制时间止 / recorded before (ISO)")
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
    if as_json:
        print_json(rows)
        return
    print_table(
        [
            "SHA-256",
            "录制 / recorded",
            "单位 / unit",
            "设备 / device",
            "警员 / officer",
            "案件 / cases",
            "分类 / category",
            "状态 / state",
        ],
        [
            (
                r["sha256"][:16],
                r["recorded_at"],
                r["unit_name"] or r["unit_id"],
                r["device_id"],
                r["officer_id"],
                r["cases"],
                r["category"],
                r["state"],
            )
            for r in rows
        ],
    )


COMMANDS = [cases_group]
