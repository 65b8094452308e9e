"""``station duty …`` (R21) and ``station stops …`` (R18): notes about an officer's work that
change how the station judges their footage."""

from __future__ import annotations

import click

from station.access.guard import CLERK, guard
from station.cases.cli import parse_time
from station.cli_util import App, handle_errors, json_option, pass_app, print_json, print_table
from station.oversight import duty


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
            "#",
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


COMMANDS = [duty_group]
