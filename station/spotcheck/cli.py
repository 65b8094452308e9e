"""``station spotcheck draw|record|show|replay`` and ``station report spotchecks`` (R16)."""

from __future__ import annotations

from typing import Any

import click

from station.access.users import require_role
from station.cli_groups import report
from station.cli_util import App, json_option, pass_app, print_json, print_table
from station.reports.cli import emit, output_options
from station.spotcheck.ledger import (
    RESULT_NAMES,
    RESULTS,
    ledger,
    make_draw,
    record_result,
    replay_draw,
)
from station.timeutil import human_time


@click.group("spotcheck")
def spotcheck_group() -> None:
    """抽查 / Supervisors' spot checks of recordings and the inspection ledger (R16)."""


def _print_ledger(rows: list[dict[str, Any]], as_json: bool, tz: str = "Asia/Shanghai") -> None:
    if as_json:
        print_json(rows)
        return
    print_table(
        ["项 / item", "批 / draw", "录像 / recording", "执法人员 / officer", "录制 / recorded",
         "结论 / result", "说明 / note", "检查人 / by"],
        [
            (r["item"], r["draw"], r["sha256"][:16], r["officer_id"],
             human_time(r["recorded_at"], tz),
             RESULT_NAMES.get(r["result"] or "", "未查 / pending"), r["note"] or "",
             r["checked_by"] or "")
            for r in rows
        ],
    )  # fmt: skip


@spotcheck_group.command("draw")
@click.option("--n", "n", type=click.IntRange(min=1), required=True, help="抽取数量 / how many")
@click.option("--seed", help="随机种子（默认随机生成并记录）/ seed (default: random, recorded)")
@click.option("--officer", help="只抽该执法人员 / only this officer's recordings")
@click.option("--unit", help="只抽该单位 / only this unit")
@click.option("--device", help="只抽该记录仪 / only this recorder")
@click.option("--since", help="录制时间起（UTC ISO）/ recorded from (UTC ISO)")
@click.option("--until", help="录制时间止 / recorded before")
@json_option
@pass_app
def sc_draw(
    app: App,
    n: int,
    seed: str | None,
    officer: str | None,
    unit: str | None,
    device: str | None,
    since: str | None,
    until: str | None,
    as_json: bool,
) -> None:
    """随机抽取录像供回放检查 / Draw recordings at random for playback review (supervisor).

    种子与抽取结果写入审计日志，可复核。The seed and the result go into the audit log, so
    anyone can repeat the draw (`station spotcheck replay`).
    """
    user = require_role(app, "supervisor")
    filters = {"officer_id": officer, "unit_id": unit, "device_id": device,
               "since": since, "until": until}  # fmt: skip
    d = make_draw(app.db, user, n, seed=seed, filters={k: v for k, v in filters.items() if v})
    if as_json:
        print_json({"draw": d.id, "seed": d.seed, "population": d.population,
                    "population_sha256": d.population_sha256,
                    "items": [{"item": i, "sha256": s} for i, s in d.items]})  # fmt: skip
        return
    click.echo(f"抽查 / draw {d.id}: {len(d.items)} of {d.population}, seed {d.seed}")
    _print_ledger(ledger(app.db, d.id), False, app.settings.station.timezone)


@spotcheck_group.command("record")
@click.argument("item", type=int)
@click.option("--result", type=click.Choice(RESULTS), required=True, help="结论 / result")
@click.option("--note", help="说明（有问题时必填）/ what was found (required unless ok)")
@json_option
@pass_app
def sc_record(app: App, item: int, result: str, note: str | None, as_json: bool) -> None:
    """登记抽查结论 / Record the result of checking one drawn recording (supervisor)."""
    user = require_role(app, "supervisor")
    out = record_result(app.db, user, item, result, note)
    if as_json:
        print_json(out)
    else:
        click.echo(f"已登记 / recorded: item {item} {RESULT_NAMES[result]}")


@spotcheck_group.command("show")
@click.argument("draw", type=int)
@json_option
@pass_app
def sc_show(app: App, draw: int, as_json: bool) -> None:
    """查看一次抽查 / Show one draw and its results."""
    require_role(app, "supervisor", "admin")
    _print_ledger(ledger(app.db, draw), as_json, app.settings.station.timezone)


@spotcheck_group.command("replay")
@click.argument("draw", type=int)
@json_option
@pass_app
def sc_replay(app: App, draw: int, as_json: bool) -> None:
    """复核抽取是否随机 / Repeat a draw from its seed and compare (anyone may check)."""
    out = replay_draw(app.db, draw)
    if as_json:
        print_json(out)
    elif out["reproduced"]:
        click.echo(f"一致 / reproduced: draw {draw} follows from its seed.")
    elif not out["same_population"]:
        click.echo("录像总体已变化（如已清除），无法复核 / the population changed since the draw")
    else:
        click.echo(f"不一致 / NOT reproduced: draw {draw} does not follow from its seed.")


def _ledger_report(rows: list[dict[str, Any]], draw: int | None) -> Any:
    """The ledger as a report (table, CSV, XLSX, HTML, PDF) a supervisor prints and signs."""
    from station.reports.model import Report, Section
    from station.timeutil import to_iso, utcnow

    shown = [
        {**r, "result_words": RESULT_NAMES.get(r["result"] or "", "未查 / pending")} for r in rows
    ]
    checked = sum(1 for r in rows if r["result"])
    return Report(
        kind="spotchecks",
        title="录像抽查台账 / Spot-check ledger (R16)",
        generated_at=to_iso(utcnow()),
        params={"draw": draw},
        summary=[("抽取 / drawn", len(rows)), ("已查 / checked", checked)],
        sections=[
            Section(
                key="ledger",
                title="抽查明细 / items",
                columns=[
                    ("item", "项 / item"),
                    ("draw", "批 / draw"),
                    ("sha256", "录像编号 / recording id"),
                    ("officer_id", "执法人员 / officer"),
                    ("recorded_at", "录制时间 / recorded"),
                    ("result_words", "结论 / result"),
                    ("note", "说明 / note"),
                    ("checked_by", "检查人 / checked by"),
                    ("checked_at", "检查时间 / checked at"),
                ],
                rows=shown,
            )
        ],
    )


@report.command("spotchecks")
@click.option("--draw", type=int, help="只看该批 / only this draw")
@output_options
@pass_app
def report_spotchecks(
    app: App,
    draw: int | None,
    fmt: str,
    section: str | None,
    output: str | None,
    now_text: str | None,
    as_json: bool,
) -> None:
    """抽查台账 / The inspection ledger: every drawn recording and its result (R16)."""
    require_role(app, "supervisor", "admin")
    rows = ledger(app.db, draw)
    if as_json or fmt == "json":
        print_json(rows)
        return
    emit(_ledger_report(rows, draw), fmt, False, section, output, app.settings.station.timezone)


COMMANDS = [spotcheck_group]
