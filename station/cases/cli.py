"""``station cases …`` and ``station recordings tag|hold|release|review|mark-long-term|search``.

Other tools script against these forms (issue 5); every command has ``--json``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from station.access.guard import CLERK, guard
from station.cases import store
from station.cli_util import App, handle_errors, json_option, pass_app, print_json, print_table
from station.errors import StationError
from station.retention.policy import R11_REASONS
from station.text import escape_text
from station.timeutil import parse_iso


def parse_time(text: str | None, app: App, where: str) -> dt.datetime | None:
    """An ISO date or time from the command line; without an offset it is station-local."""
    if text is None:
        return None
    try:
        return parse_iso(text, app.settings.station.timezone)
    except (ValueError, OverflowError) as exc:
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
        ("archive_number", "档号 / archive number"),
        ("retention_period", "保管期限 / retention period"),
        ("station_retention", "本站保存决定 / station retention"),
    ]
    for key, label in labels:
        if case.get(key) is not None:
            click.echo(f"{label}: {escape_text(str(case[key]))}")


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
    guard(app, *CLERK)
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
    guard(app, *CLERK)
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
    guard(app, *CLERK)
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
    guard(app, *CLERK)
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
    guard(app, *CLERK)
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
    guard(app, *CLERK)
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
    from station.archive import numbers

    guard(app, *CLERK)
    case = store.set_archive_location(app.db, number, location=location, actor=app.actor)
    # archived now: the case gets its 档号 (once; an earlier one is kept)
    given = numbers.assign_case(app.db, app.settings, number, actor=app.actor)
    case.update(_archive_fields(app, number))
    if as_json:
        print_json(case)
    else:
        click.echo(f"已登记 / recorded: {number} → {location}")
        click.echo(f"档号 / archive number: {given.number}")
        click.echo(f"保管期限 / retention period: {case['retention_period']}"
                   f" — 本站 / station: {case['station_retention']}")  # fmt: skip


def _archive_fields(app: App, number: str) -> dict[str, Any]:
    """档号 (when given) and 保管期限 beside the station's own retention decision."""
    from station.archive import numbers
    from station.retention.facts import load_cases
    from station.retention.policy import Policy, case_archival_period

    facts = load_cases(app.db).get(number)
    given = numbers.lookup(app.db, numbers.KIND_CASE, number)
    out: dict[str, Any] = {"archive_number": given.number if given else None}
    if facts is not None:
        scheme = app.settings.archive.retention_scheme
        period = case_archival_period(facts, Policy.from_settings(app.settings), scheme)
        out.update(
            retention_period=given.retention_words if given else period.words,
            retention_code=given.retention_code if given else period.code,
            station_retention=period.station,
        )
    return out


@cases_group.command("show")
@click.argument("number")
@json_option
@pass_app
@handle_errors
def show_cmd(app: App, number: str, as_json: bool) -> None:
    """查看案件 / Show a case and its recordings."""
    case = store.get_case(app.db, number)
    case.update(_archive_fields(app, number))
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


COMMANDS = [cases_group]
