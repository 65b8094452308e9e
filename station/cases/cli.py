"""``station cases …`` and ``station recordings tag|hold|release|review|mark-long-term|search``.

Other tools script against these forms; every command has ``--json``.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import click

from station.access.guard import CLERK, guard
from station.cases import store
from station.cli_util import (
    App,
    json_option,
    pass_app,
    print_json,
    print_table,
    time_header,
    write_output,
)
from station.errors import StationError
from station.recref import resolve_many, short
from station.retention.policy import R11_REASONS, reason_text
from station.text import escape_text
from station.timeutil import human_date, human_time, parse_iso, utcnow

KIND_LABELS = {"case": "案件 / case", "activity": "执法活动 / enforcement activity"}
STATUS_LABELS = {"open": "未结 / open", "closed": "已结 / closed"}
ITEMS = {1: "一", 2: "二", 3: "三", 4: "四", 5: "五"}


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


REASON_HELP = (
    "长期保存理由，可多次给出（第十四条第几项）/ R11 reason code, repeatable: "
    + "; ".join(f"{k} {zh}" for k, (zh, _en) in R11_REASONS.items())
)


_DATES = {"opened_at", "closed_at"}

STATE_LABELS = {
    "stored": "在库 / stored",
    "pending_purge": "待删 / pending purge",
    "purged": "已删除 / purged",
}


def _show_case(case: dict[str, Any], tz: str) -> None:
    labels = [
        ("number", "案件编号 / number"),
        ("name", "名称 / name"),
        ("cause", "案由 / cause"),
        ("party", "当事人 / party"),
        ("unit_id", "单位 / unit"),
        ("department", "科室 / department"),
        ("status", "状态 / status"),
        ("opened_at", "立案 / opened"),
        ("closed_at", "结案 / closed"),
        ("retention_years", "保存年限 / retention years"),
        ("long_term_note", "说明 / note"),
        ("archive_location", "存放位置 / archive location (R13)"),
        ("archive_number", "档号 / archive number"),
        ("retention_period", "保管期限 / retention period"),
        ("station_retention", "本站保存决定 / station retention"),
    ]
    kind = case.get("kind") or "case"
    click.echo(f"类型 / kind: {KIND_LABELS[kind]}")
    for key, label in labels:
        if case.get(key) is not None:
            value = case[key]
            if key == "status":
                value = STATUS_LABELS.get(value, value)
            elif key in _DATES:
                value = human_date(value, tz)
            click.echo(f"{label}: {escape_text(str(value))}")
    for code in store.case_reasons(case):
        click.echo(f"长期保存理由 / long-term reason: {reason_text(code)}")


@click.group("cases")
def cases_group() -> None:
    """案件：立案、关联录像、长期保存、结案 / Cases: create, link recordings, mark, close."""


@cases_group.command("create")
@click.argument("number")
@click.option("--name", required=True, help="案件名称 / case name")
@click.option("--cause", help="案由 / cause of action (R6)")
@click.option("--party", help="当事人 / party (R6)")
@click.option("--unit", "unit_id", help="单位编号 / unit number")
@click.option("--department", help="科室 / department (R6, R14)")
@click.option("--years", type=int, help="结案后保存年限（默认 5）/ years kept after closing (R10)")
@click.option(
    "--opened", help="立案日期（北京时间，如 2026-11-20）/ opening date, station time (default now)"
)
@json_option
@pass_app
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
@click.argument("sha256", nargs=-1)
@click.option("--officer", help="执法人员编号 / officer number (with --from/--to)")
@click.option("--device", help="设备编号 / device number (with --from/--to)")
@click.option("--from", "since", help="录制时间起（北京时间）/ recorded from, station time")
@click.option("--to", "until", help="录制时间止（北京时间）/ recorded before, station time")
@click.option("--proves", help="证明对象：这些录像证明什么 / what the recordings prove (R5)")
@json_option
@pass_app
def link_cmd(
    app: App,
    number: str,
    sha256: tuple[str, ...],
    officer: str | None,
    device: str | None,
    since: str | None,
    until: str | None,
    proves: str | None,
    as_json: bool,
) -> None:
    """关联录像到案件 / Link recordings to a case or activity (R10): by id (8+ hex digits), or
    every stored recording of an officer or device within a time span; with what they prove
    (证明对象, R5), asked for at a terminal when --proves is not given."""
    guard(app, *CLERK)
    sha256 = resolve_many(app.db, sha256)
    if officer or device or since or until:
        sha256 = (*sha256, *_span(app, officer, device, since, until))
    if not sha256:
        raise StationError(
            "请指定录像 / name recordings: ids, or --officer/--device with --from and --to",
            where="SHA256",
        )
    if proves is None and sys.stdin.isatty() and not as_json:
        proves = click.prompt(
            "证明对象（可留空）/ what do these recordings prove (may be empty)",
            default="",
            show_default=False,
        )
    result = store.link(app.db, number, sha256, actor=app.actor, proves=proves)
    if as_json:
        print_json({"case": number, **result})
        return
    click.echo(
        f"已关联 / linked: {len(result['linked'])}; 原已关联 / already: {len(result['already'])}"
    )
    if result["no_proves"]:
        click.echo(
            f"提示 / note: {len(result['no_proves'])} 段录像未填写证明对象 / recordings without "
            "证明对象 (R5): `station recordings tag SHA --proves …`",
            err=True,
        )


def _span(
    app: App, officer: str | None, device: str | None, since: str | None, until: str | None
) -> list[str]:
    """Stored recordings of one officer and/or device recorded in [since, until)."""
    from station.timeutil import to_iso

    start, end = parse_time(since, app, "--from"), parse_time(until, app, "--to")
    if not (officer or device) or start is None or end is None:
        raise StationError(
            "按时段关联需要执法人员或设备，以及起止时间 / linking by time span needs --officer or"
            " --device, and both --from and --to",
            where="--from/--to",
        )
    where, args = (
        ["state = 'stored'", "recorded_at >= ?", "recorded_at < ?"],
        [
            to_iso(start),
            to_iso(end),
        ],
    )
    for col, val in (("officer_id", officer), ("device_id", device)):
        if val:
            where.append(f"{col} = ?")
            args.append(val)
    rows = app.db.execute(
        f"select sha256 from recordings where {' and '.join(where)} order by recorded_at", args
    ).fetchall()
    if not rows:
        raise StationError(
            "该时段没有录像 / no stored recordings match that officer/device and time span",
            where="--from/--to",
        )
    return [r[0] for r in rows]


@cases_group.command("unlink")
@click.argument("number")
@click.argument("sha256", nargs=-1, required=True)
@json_option
@pass_app
def unlink_cmd(app: App, number: str, sha256: tuple[str, ...], as_json: bool) -> None:
    """取消关联 / Unlink recordings from a case."""
    guard(app, *CLERK)
    sha256 = resolve_many(app.db, sha256)
    done = store.unlink(app.db, number, sha256, actor=app.actor)
    if as_json:
        print_json({"case": number, "unlinked": done})
    else:
        click.echo(f"已取消关联 / unlinked: {len(done)}")


@cases_group.command("mark-long-term")
@click.argument("number")
@click.option("--reason", "reasons", type=int, multiple=True, help=REASON_HELP)
@click.option("--note", help="说明 / note")
@json_option
@pass_app
def mark_cmd(
    app: App, number: str, reasons: tuple[int, ...], note: str | None, as_json: bool
) -> None:
    """标记长期保存 / Mark a case or enforcement activity for long-term keeping and disc
    burning, with one or more reasons of 第十四条 (R11)."""
    guard(app, *CLERK)
    case = store.mark_long_term(
        app.db, number, reason=list(reasons) or None, note=note, actor=app.actor
    )
    if as_json:
        print_json({**case, "long_term_reasons_text": [reason_text(c) for c in reasons]})
    else:
        click.echo(f"已标记长期保存 / marked long-term: {number}")
        for code in store.case_reasons(case):
            click.echo(f"  {reason_text(code)}")


@cases_group.command("close")
@click.argument("number")
@click.option(
    "--date", "date_", help="结案日期（北京时间）/ closing date, station time (default now)"
)
@json_option
@pass_app
def close_cmd(app: App, number: str, date_: str | None, as_json: bool) -> None:
    """结案 / Close a case; its footage keeps the case's retention from this date (R10)."""
    guard(app, *CLERK)
    case = store.close_case(
        app.db, number, actor=app.actor, closed_at=parse_time(date_, app, "--date")
    )
    if as_json:
        print_json(case)
    else:
        click.echo(
            f"已结案 / closed: {number}, "
            f"{human_date(case['closed_at'], app.settings.station.timezone)}"
        )


@cases_group.command("reopen")
@click.argument("number")
@click.option("--reason", required=True, help="理由 / why it is reopened")
@json_option
@pass_app
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


@cases_group.command("slip")
@click.argument("number")
@click.option("--location", help="存储位置（登记并打印）/ record the storage location and print")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="写入文件 / write the page to a file"
)
@json_option
@pass_app
def slip_cmd(
    app: App, number: str, location: str | None, output: str | None, as_json: bool
) -> None:
    """存储位置及说明 / The printable storage-location slip of a case or activity: location,
    材料目录, and every recording in time order with method, time, producer, 证明对象 and the
    content of sound recordings (R13). With --location the location is recorded first."""
    from station.cases import slip

    guard(app, *CLERK)
    if location is not None:
        store.set_archive_location(app.db, number, location=location, actor=app.actor)
    data = slip.build_slip(app.db, number, app.settings.station.timezone)
    if not data["location"]:
        raise StationError(
            f"未登记存储位置 / no storage location recorded for {number!r}",
            where="--location",
            hint="give --location (where the AV record is filed) to record it and print",
        )
    if as_json:
        print_json(data)
        return
    printed = human_time(utcnow(), app.settings.station.timezone, seconds=False)
    page = slip.render_html(data, printed)
    if output:
        write_output(output, page, "页面")
        click.echo(f"已写入 / written: {output}")
    else:
        click.echo(page)
    if data["missing_proves"] or data["missing_sound"]:
        click.echo(
            f"提示 / note: 证明对象未填 / 证明对象 missing: {data['missing_proves'] or '—'}；"
            f"声音内容未填 / sound content missing: {data['missing_sound'] or '—'}",
            err=True,
        )


@cases_group.command("show")
@click.argument("number")
@json_option
@pass_app
def show_cmd(app: App, number: str, as_json: bool) -> None:
    """查看案件 / Show a case and its recordings."""
    case = store.get_case(app.db, number)
    case.update(_archive_fields(app, number))
    if as_json:
        print_json(case)
        return
    tz = app.settings.station.timezone
    _show_case(case, tz)
    print_table(
        [
            "编号 / id",
            time_header("录制", "recorded", tz),
            "执法证号 / certificate no.",
            "状态 / state",
        ],
        [
            (
                short(r["sha256"]),
                human_time(r["recorded_at"], tz),
                r["officer_id"],
                STATE_LABELS.get(r["state"], r["state"]),
            )
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
@click.option(
    "--kind", type=click.Choice(["case", "activity"]), help="案件或执法活动 / case or activity"
)
@json_option
@pass_app
def list_cmd(app: App, as_json: bool, **kw: Any) -> None:
    """列出案件和执法活动 / List cases and enforcement activities."""
    rows = store.list_cases(app.db, **kw)
    if as_json:
        print_json(rows)
        return
    print_table(
        [
            "编号 / number",
            "类型 / kind",
            "名称 / name",
            "状态 / status",
            "结案 / closed",
            "长期保存（第十四条）/ long-term",
            "录像 / recs",
        ],
        [
            (
                r["number"],
                KIND_LABELS[r.get("kind") or "case"].split(" / ")[0],
                r["name"],
                STATUS_LABELS.get(r["status"], r["status"]),
                human_date(r["closed_at"], app.settings.station.timezone),
                "、".join(f"第（{ITEMS[c]}）项" for c in store.case_reasons(r)) or "—",
                r["recordings"],
            )
            for r in rows
        ],
    )


@click.group("activities")
def activities_group() -> None:
    """执法活动 / Enforcement activities without a party, marked and burned like cases (R11).

    Footage grouped without a party — a mass incident, an emergency, a campaign — is linked,
    marked long-term and burned to disc exactly like a case."""


@activities_group.command("create")
@click.argument("number")
@click.option("--name", required=True, help="活动名称 / activity name")
@click.option("--unit", "unit_id", help="单位编号 / unit number")
@click.option("--department", help="科室 / department")
@click.option("--started", help="开始时间 ISO / when it started (default now)")
@click.option("--recording", "recordings", multiple=True, help="关联录像 SHA-256，可多次 / link")
@click.option("--reason", "reasons", type=int, multiple=True, help=REASON_HELP)
@click.option("--note", help="说明 / note")
@json_option
@pass_app
def activity_create_cmd(
    app: App,
    number: str,
    name: str,
    unit_id: str | None,
    department: str | None,
    started: str | None,
    recordings: tuple[str, ...],
    reasons: tuple[int, ...],
    note: str | None,
    as_json: bool,
) -> None:
    """登记执法活动 / Create an enforcement activity; optionally link recordings and mark it
    long-term at once (then `station disc build NUMBER` burns it in two copies)."""
    guard(app, *CLERK)
    row = store.create_case(
        app.db,
        number,
        name=name,
        actor=app.actor,
        unit_id=unit_id,
        department=department,
        opened_at=parse_time(started, app, "--started"),
        kind="activity",
    )
    if recordings:
        store.link(app.db, number, resolve_many(app.db, recordings), actor=app.actor)
    if reasons:
        row = store.mark_long_term(app.db, number, reason=list(reasons), note=note, actor=app.actor)
    if as_json:
        print_json(store.get_case(app.db, number))
        return
    click.echo(
        f"已登记执法活动 / activity created: {number}（录像 / recordings {len(recordings)}）"
    )
    for code in store.case_reasons(row):
        click.echo(f"  {reason_text(code)}")


@activities_group.command("list")
@json_option
@pass_app
def activity_list_cmd(app: App, as_json: bool) -> None:
    """列出执法活动 / List enforcement activities."""
    rows = store.list_cases(app.db, kind="activity")
    if as_json:
        print_json(rows)
        return
    print_table(
        ["编号 / number", "名称 / name", "开始 / started", "长期保存理由 / reasons", "录像 / recs"],
        [
            (
                r["number"],
                r["name"],
                human_time(r["opened_at"], app.settings.station.timezone),
                "；".join(reason_text(c).split(" / ")[0] for c in store.case_reasons(r)) or "—",
                r["recordings"],
            )
            for r in rows
        ],
    )


COMMANDS = [cases_group, activities_group]
