"""``station duty …`` (R21) and ``station stops …`` (R18): notes about an officer's work that
change how the station judges their footage."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import click

from station.access.guard import CLERK, SUPERVISOR, guard
from station.cases.cli import parse_time
from station.cli_util import App, handle_errors, json_option, pass_app, print_json, print_table
from station.oversight import duty, stops

OFFICER = ("officer", *CLERK)


@click.group("duty")
def duty_group() -> None:
    """异地/连续执勤 / Remote or continuous duty notes: footage is due 24 h after return (R21)."""


@duty_group.command("add")
@click.option("--officer", "officer_id", help="执法证号 / certificate number of the officer")
@click.option("--session", "session_id", type=int, help="会话 / dock or inbox session id")
@click.option("--from", "since", help="开始 / from (ISO; default: open)")
@click.option("--until", required=True, help="返回时间 / returned at (ISO)")
@click.option(
    "--kind",
    type=click.Choice(sorted(duty.KINDS)),
    default="remote",
    show_default=True,
    help="类型 / remote: 异地或偏远地区执勤; continuous: 连续执勤",
)
@click.option("--note", required=True, help="情况说明 / what the duty was")
@json_option
@pass_app
@handle_errors
def duty_add(
    app: App,
    officer_id: str | None,
    session_id: int | None,
    since: str | None,
    until: str,
    kind: str,
    note: str,
    as_json: bool,
) -> None:
    """登记异地/连续执勤 / Record remote or continuous duty: the compliance report counts the
    footage of that officer (or session) as due 24 h after --until (R21)."""
    guard(app, *CLERK)
    back = parse_time(until, app, "--until")
    assert back is not None
    row = duty.add_note(
        app.db,
        actor=app.actor,
        until=back,
        note=note,
        kind=kind,
        officer_id=officer_id,
        session_id=session_id,
        since=parse_time(since, app, "--from"),
    )
    if as_json:
        print_json(row)
    else:
        click.echo(f"已登记 / recorded: #{row['id']}，截止 / due {row['until_at']} + 24 h")


@duty_group.command("list")
@json_option
@pass_app
@handle_errors
def duty_list(app: App, as_json: bool) -> None:
    """异地/连续执勤记录 / List duty notes (R21)."""
    rows = duty.list_notes(app.db)
    if as_json:
        print_json(rows)
        return
    print_table(
        [
            "编号 / no.",
            "执法人员 / officer",
            "会话 / session",
            "类型 / kind",
            "自 / from",
            "返回 / until",
            "说明 / note",
        ],
        [
            (
                r["id"],
                r["officer_id"] or "—",
                r["session_id"] or "—",
                duty.KINDS[r["kind"]][0],
                r["from_at"] or "—",
                r["until_at"],
                r["note"],
            )
            for r in rows
        ],
    )


@click.group("stops")
def stops_group() -> None:
    """停止记录说明 / Stop-recording notes (002 附件1 第十六条) the head reviews (R18)."""


@stops_group.command("add")
@click.option("--officer", "officer_id", required=True, help="执法证号 / certificate number")
@click.option("--device", "device_id", help="记录仪编号 / recorder")
@click.option("--session", "session_id", type=int, help="会话 / dock session id")
@click.option("--stopped", required=True, help="停止时间 ISO / when it was stopped")
@click.option("--resumed", help="恢复时间 ISO / when recording resumed")
@click.option(
    "--situation",
    type=int,
    required=True,
    help="第十六条情形 / situation: "
    + "; ".join(f"{k} {zh}" for k, (zh, _) in stops.SITUATIONS.items()),
)
@click.option("--reason", required=True, help="无法使用的原因和依据 / reason and basis")
@json_option
@pass_app
@handle_errors
def stops_add(
    app: App,
    officer_id: str,
    device_id: str | None,
    session_id: int | None,
    stopped: str,
    resumed: str | None,
    situation: int,
    reason: str,
    as_json: bool,
) -> None:
    """登记停止记录 / Record why a recorder was stopped (工作记录); the head then reviews it."""
    guard(app, *OFFICER)
    at = parse_time(stopped, app, "--stopped")
    assert at is not None
    row = stops.add(
        app.db,
        actor=app.actor,
        officer_id=officer_id,
        stopped_at=at,
        resumed_at=parse_time(resumed, app, "--resumed"),
        situation=situation,
        reason=reason,
        device_id=device_id,
        session_id=session_id,
    )
    if as_json:
        print_json(row)
    else:
        click.echo(
            f"已登记 / recorded: #{row['id']} {row['situation_text']}（{row['state_text']}）"
        )


@stops_group.command("approve")
@click.argument("note_id", type=int)
@click.option("--reject", is_flag=True, help="不同意 / reject")
@click.option("--note", help="审核意见 / the head's note")
@json_option
@pass_app
@handle_errors
def stops_approve(app: App, note_id: int, reject: bool, note: str | None, as_json: bool) -> None:
    """审核停止记录说明 / The head approves (or with --reject refuses) a stop note (R18).
    Needs a supervisor."""
    guard(app, *SUPERVISOR)
    row = stops.decide(app.db, note_id, actor=app.actor, approve=not reject, note=note)
    if as_json:
        print_json(row)
    else:
        click.echo(f"#{note_id}: {row['state_text']}")


def _local(app: App, iso: str | None) -> str:
    """Beijing time (the station's zone) for people."""
    if not iso:
        return "—"
    tz = ZoneInfo(app.settings.station.timezone)
    return dt.datetime.fromisoformat(iso).astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _show(app: App, rows: list[dict[str, Any]]) -> None:
    print_table(
        [
            "编号 / no.",
            "执法证号 / officer",
            "记录仪 / device",
            "停止 / stopped",
            "恢复 / resumed",
            "情形 / situation",
            "原因 / reason",
            "审核 / state",
            "审核人 / by",
        ],
        [
            (
                r["id"],
                r["officer_id"],
                r["device_id"] or "—",
                _local(app, r["stopped_at"]),
                _local(app, r["resumed_at"]),
                r["situation_text"].split(" / ")[0],
                r["reason"],
                r["state_text"],
                r["decided_by"] or "—",
            )
            for r in rows
        ],
    )


@stops_group.command("list")
@click.option("--officer", "officer_id", help="执法证号 / certificate number")
@click.option("--state", type=click.Choice(sorted(stops.STATES)), help="状态 / state")
@json_option
@pass_app
@handle_errors
def stops_list(app: App, officer_id: str | None, state: str | None, as_json: bool) -> None:
    """停止记录说明列表 / List stop notes (R18)."""
    rows = stops.list_notes(app.db, officer_id=officer_id, state=state)
    if as_json:
        print_json(rows)
    else:
        _show(app, rows)


@stops_group.command("show")
@click.argument("note_id", type=int)
@json_option
@pass_app
@handle_errors
def stops_show(app: App, note_id: int, as_json: bool) -> None:
    """查看一条停止记录说明 / Show one stop note (R18)."""
    row = stops.get_note(app.db, note_id)
    if as_json:
        print_json(row)
        return
    labels = {
        "officer_id": "执法证号 / officer",
        "device_id": "记录仪 / device",
        "session_id": "会话 / session",
        "stopped_at": "停止 / stopped",
        "resumed_at": "恢复 / resumed",
        "situation_text": "情形 / situation",
        "reason": "原因和依据 / reason and basis",
        "recorded_by": "记录人 / written by",
        "recorded_at": "记录时间 / written at",
        "state_text": "审核 / state",
        "decided_by": "审核人 / reviewed by",
        "decided_at": "审核时间 / reviewed at",
        "decision_note": "审核意见 / note",
    }
    for key, label in labels.items():
        if row.get(key) is not None:
            value = _local(app, row[key]) if key.endswith("_at") else row[key]
            click.echo(f"{label}: {value}")


COMMANDS = [duty_group, stops_group]
