"""``station users …``, ``station access …`` and ``station export`` (R8, R14, R15)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import click

from station import recref
from station.access import approvals, departments, tickets
from station.access.export import EXPORT_ROLES, export_request
from station.access.users import (
    ROLES,
    authenticate,
    create_user,
    disable_user,
    require_role,
    set_password,
    user_count,
)
from station.audit import append
from station.catalog import write_txn
from station.cli_util import (
    App,
    handle_errors,
    json_option,
    parse_time_option,
    pass_app,
    print_json,
    print_table,
    write_output,
)
from station.errors import StationError
from station.text import escape_text
from station.timeutil import parse_iso, to_iso, utcnow


def _new_password() -> str:
    env = os.environ.get("STATION_NEW_PASSWORD")
    if env is not None:
        return env
    return str(
        click.prompt("新密码 / new password", hide_input=True, confirmation_prompt=True, err=True)
    )


@click.group("users")
def users_group() -> None:
    """账号与角色 / Station accounts and roles (officer, clerk, supervisor, admin)."""


@users_group.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES), help="角色 / role")
@click.option("--display-name", help="姓名 / full name")
@json_option
@pass_app
@handle_errors
def users_add(app: App, name: str, role: str, display_name: str | None, as_json: bool) -> None:
    """新增账号 / Add an account (admin; the very first account must be an admin).

    新密码从提示输入，或环境变量 STATION_NEW_PASSWORD。The new password is prompted for, or
    taken from env STATION_NEW_PASSWORD.
    """
    if user_count(app.db) == 0:
        if role != "admin":
            raise StationError("the first account must be an admin / 第一个账号必须是管理员")
        actor = app.actor
    else:
        actor = require_role(app, "admin").name
    user = create_user(app.db, name, role, _new_password(), actor=actor, display_name=display_name)
    if as_json:
        print_json({"name": user.name, "role": user.role})
    else:
        click.echo(f"已创建 / created: {user.name} ({user.role})")


@users_group.command("list")
@json_option
@pass_app
@handle_errors
def users_list(app: App, as_json: bool) -> None:
    """列出账号 / List accounts (admin, supervisor)."""
    require_role(app, "admin", "supervisor")
    rows = [
        dict(r)
        for r in app.db.query(
            "select name, display_name, role, created_at, created_by, disabled from users"
            " order by name"
        )
    ]
    if as_json:
        print_json(rows)
    else:
        print_table(
            ["账号 user", "姓名 name", "角色 role", "创建 created", "停用 disabled"],
            [
                (r["name"], r["display_name"], r["role"], r["created_at"][:10], r["disabled"])
                for r in rows
            ],
        )


@users_group.command("passwd")
@click.argument("name", required=False)
@json_option
@pass_app
@handle_errors
def users_passwd(app: App, name: str | None, as_json: bool) -> None:
    """修改密码 / Change your password (or, as admin, someone else's)."""
    me = require_role(app)
    target = name or me.name
    if target != me.name and me.role != "admin":
        require_role(app, "admin")
    set_password(app.db, target, _new_password(), actor=me.name)
    if as_json:
        print_json({"name": target, "changed": True})
    else:
        click.echo(f"密码已修改 / password changed: {target}")


@users_group.command("disable")
@click.argument("name")
@json_option
@pass_app
@handle_errors
def users_disable(app: App, name: str, as_json: bool) -> None:
    """停用账号 / Disable an account (admin). Accounts are never deleted: the log names them."""
    me = require_role(app, "admin")
    disable_user(app.db, name, actor=me.name)
    if as_json:
        print_json({"name": name, "disabled": True})
    else:
        click.echo(f"已停用 / disabled: {name}")


@click.group("access")
def access_group() -> None:
    """调阅申请与审批 / Access requests and approvals for archived footage (R14, R15)."""


def _show(req: approvals.Request, as_json: bool) -> None:
    if as_json:
        print_json(req.to_dict())
        return
    click.echo(
        f"申请 / request {req.id}: {req.purpose}  状态 / state: {req.state}\n"
        f"  申请人 / by: {req.requested_by}  时间 / at: {req.created_at}\n"
        f"  事由 / reason: {req.reason}\n"
        f"  用于 / for: {req.recipient or '-'}\n"
        f"  审批 / decided: {req.decided_by or '-'} {req.decided_at or ''}"
        f"  有效至 / valid until: {req.valid_until or '-'}\n"
        f"  录像 / recordings: {len(req.recordings)}"
    )
    for sha in req.recordings:
        click.echo(f"    {sha}")


@access_group.command("request")
@click.option(
    "--recording",
    "recordings",
    multiple=True,
    help="录像编号（哈希前缀至少 8 位）/ recording id: a SHA-256 prefix of 8+ digits (repeat)",
)
@click.option(
    "--case",
    "case_number",
    help="整个案件的全部录像 / every recording linked to this case",
)
@click.option(
    "--purpose",
    type=click.Choice(approvals.PURPOSES),
    default="view",
    show_default=True,
    help="调阅或导出 / view or export",
)
@click.option("--reason", required=True, help="事由（必填）/ why (required, R14)")
@click.option("--for", "recipient", help="提供给谁（法院、复议机关）/ who the copy is for (R15)")
@json_option
@pass_app
@handle_errors
def access_request(
    app: App,
    recordings: tuple[str, ...],
    case_number: str | None,
    purpose: str,
    reason: str,
    recipient: str | None,
    as_json: bool,
) -> None:
    """提出调阅/导出申请 / Ask to view or export recordings or a whole case (any role)."""
    user = require_role(app, *ROLES)
    if case_number is not None:
        from station.cases import store

        linked = [
            r["sha256"]
            for r in store.get_case(app.db, case_number)["recordings"]
            if r["state"] != "purged"
        ]
        if not linked:
            raise StationError(
                f"案件没有可调阅的录像 / case {case_number!r} has no stored recordings",
                where="--case",
            )
        recordings = (*recordings, *linked)
    # R14: an account with a department asks only for that department's footage.
    departments.check_scope(
        app.db, user.name, recref.resolve_many(app.db, recordings), "access request"
    )
    req = approvals.create_request(
        app.db, user, purpose=purpose, reason=reason, recordings=list(recordings),
        recipient=recipient,
    )  # fmt: skip
    _show(req, as_json)


def _decide(
    app: App,
    request_id: int,
    approve: bool,
    until: dt.datetime | None,
    note: str | None,
    as_json: bool,
) -> None:
    user = require_role(app, "supervisor")
    if approve:  # R14: a department's supervisor approves only that department's footage
        pending = approvals.get_request(app.db, request_id)
        departments.check_scope(app.db, user.name, pending.recordings, "access approve")
    req = approvals.decide(app.db, user, request_id, approve=approve, valid_until=until, note=note)
    _show(req, as_json)


@access_group.command("approve")
@click.argument("request_id", metavar="REQUEST", type=int)
@click.option(
    "--valid-hours",
    type=click.FloatRange(min=0, min_open=True, max=24 * 366),
    default=72.0,
    show_default=True,
    help="有效小时数 / hours the approval lasts",
)
@click.option(
    "--valid-until", help="有效期至（ISO 时间）/ valid until (ISO time, overrides --valid-hours)"
)
@click.option("--note", help="审批意见 / note")
@json_option
@pass_app
@handle_errors
def access_approve(
    app: App,
    request_id: int,
    valid_hours: float,
    valid_until: str | None,
    note: str | None,
    as_json: bool,
) -> None:
    """批准申请 / Approve a request (supervisor; never one's own)."""
    try:
        until = (
            parse_iso(valid_until, app.settings.station.timezone)
            if valid_until
            else utcnow() + dt.timedelta(hours=valid_hours)
        )
    except (ValueError, OverflowError) as exc:
        raise StationError(f"not an ISO time: {valid_until!r}", where="--valid-until") from exc
    _decide(app, request_id, True, until, note, as_json)


@access_group.command("reject")
@click.argument("request_id", metavar="REQUEST", type=int)
@click.option("--note", help="理由 / why")
@json_option
@pass_app
@handle_errors
def access_reject(app: App, request_id: int, note: str | None, as_json: bool) -> None:
    """驳回申请 / Reject a request (supervisor)."""
    _decide(app, request_id, False, None, note, as_json)


@access_group.command("list")
@click.option("--state", type=click.Choice(["pending", "approved", "rejected"]))
@json_option
@pass_app
@handle_errors
def access_list(app: App, state: str | None, as_json: bool) -> None:
    """列出申请 / List requests (clerk, supervisor, admin)."""
    user = require_role(app, "clerk", "supervisor", "admin")
    reqs = approvals.list_requests(app.db, state)
    # R14: an account with a department sees its department's requests only.
    reqs = [r for r in reqs if departments.visible(app.db, user.name, r.recordings)]
    if as_json:
        print_json([r.to_dict() for r in reqs])
        return
    headers = ["#", "用途 purpose", "状态 state", "申请人 by", "录像 n"]
    headers += ["有效至 valid until", "事由 reason"]
    rows = [
        (r.id, r.purpose, r.state, r.requested_by, len(r.recordings), r.valid_until or "")
        for r in reqs
    ]
    print_table(headers, [(*row, r.reason[:30]) for row, r in zip(rows, reqs, strict=True)])


@access_group.command("show")
@click.argument("request_id", metavar="REQUEST", type=int)
@json_option
@pass_app
@handle_errors
def access_show(app: App, request_id: int, as_json: bool) -> None:
    """查看申请 / Show a request and its approval."""
    user = require_role(app, *ROLES)
    req = approvals.get_request(app.db, request_id)
    if user.role == "officer" and req.requested_by != user.name:
        require_role(app, "clerk", "supervisor", "admin")
    _show(req, as_json)


@access_group.command("view")
@click.argument("request_id", metavar="REQUEST", type=int)
@click.option("--recording", "recordings", multiple=True, help="只调阅其中几段 / only these")
@json_option
@pass_app
@handle_errors
def access_view(app: App, request_id: int, recordings: tuple[str, ...], as_json: bool) -> None:
    """调阅录像（记录在案）/ View approved recordings: logs the view, prints the read-only paths.

    只有申请人、在有效期内可调阅。Only the requester, while the approval is valid (R14).
    """
    user = require_role(app, *ROLES)
    shown = approvals.record_views(app.db, user, request_id, list(recordings) or None)
    for item in shown:
        item["path"] = str(app.vault.home / str(item["vault_path"]))
    if as_json:
        print_json(shown)
    else:
        for item in shown:
            click.echo(f"{escape_text(str(item['original_name']))}\t{item['path']}")


@click.command("export")
@click.argument("request_id", metavar="REQUEST", type=int)
@click.option(
    "--to",
    "dest",
    required=True,
    type=click.Path(file_okay=False),
    help="目标目录 / destination folder",
)
@json_option
@pass_app
@handle_errors
def export_cmd(app: App, request_id: int, dest: str, as_json: bool) -> None:
    """导出已批准的录像 / Export approved recordings as a hashed package (R8, R15).

    需要有效的导出批准，由档案管理员或监督负责人执行。Needs an approved, unexpired export
    request; run by a clerk or supervisor. Writes the files, approval.json, manifest.json,
    checkpoint.note and SHA256SUMS; the export is logged.
    """
    user = require_role(app, *EXPORT_ROLES)
    res = export_request(app.vault, app.db, app.settings, user, request_id, Path(dest))
    if as_json:
        print_json(
            {
                "request": res.request_id,
                "package": str(res.package),
                "files": res.files,
                "bytes": res.bytes,
                "manifest_sha256": res.manifest_sha256,
            }
        )
    else:
        click.echo(f"已导出 / exported {res.files} files to {res.package}")
        click.echo("校验 / check with: cd PACKAGE && sha256sum -c SHA256SUMS")


@access_group.command("register")
@click.option("--from", "since", help="申请时间起（ISO）/ requests from")
@click.option("--to", "until", help="申请时间止（ISO）/ requests before")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    help="写入网页文件 / write the page to a file",
)
@json_option
@pass_app
@handle_errors
def access_register(
    app: App, since: str | None, until: str | None, output: str | None, as_json: bool
) -> None:
    """调阅登记簿 / The printable register of every request, approval, view and export (R14,
    000 第十九条). Clerk, supervisor or admin."""
    from zoneinfo import ZoneInfo

    from station.access import register

    require_role(app, "clerk", "supervisor", "admin")
    tz = app.settings.station.timezone
    rows = register.build_register(
        app.db,
        tz,
        since=to_iso(parse_time_option(since, tz, "--from")) if since else None,
        until=to_iso(parse_time_option(until, tz, "--to")) if until else None,
    )
    if as_json:
        print_json(rows)
        return
    printed = dt.datetime.now(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
    page = register.render_html(rows, app.settings.station.unit_name or "", printed)
    if output:
        write_output(output, page, "页面")
        click.echo(f"已写入 / written: {output}（{len(rows)} 条 / entries）")
    else:
        click.echo(page)


@click.command("login")
@click.option(
    "--minutes",
    type=int,
    default=tickets.DEFAULT_MINUTES,
    show_default=True,
    help="登录有效分钟数（按开机计时，重启即失效）/ minutes the login lasts (boot time; ends "
    "at reboot)",
)
@json_option
@pass_app
@handle_errors
def login_cmd(app: App, minutes: int, as_json: bool) -> None:
    """登录 / Prove who you are once (password); your commands then act as you for a while.

    密码从提示输入或环境变量 STATION_PASSWORD。The password is prompted for or taken from env
    STATION_PASSWORD; the ticket is kept 0600 in your runtime folder ($XDG_RUNTIME_DIR).
    """
    password = os.environ.get("STATION_PASSWORD")
    if password is None:
        password = str(click.prompt(f"{app.actor} 的密码 / password", hide_input=True, err=True))
    user = authenticate(app.db, app.actor, password, action="station login")
    pw_hash = app.db.execute(
        "select password_hash from users where name = ?", [user.name]
    ).fetchone()[0]
    path = tickets.issue(app.vault, user.name, pw_hash, minutes)
    with write_txn(app.db):
        append(
            app.db,
            "access.login",
            actor=user.name,
            subject=f"user:{user.name}",
            data={"uid": os.getuid(), "minutes": minutes},
        )
    if as_json:
        print_json({"user": user.name, "role": user.role, "minutes": minutes, "ticket": str(path)})
    else:
        click.echo(f"已登录 / logged in: {user.name} ({user.role}), {minutes} 分钟 / minutes")


@click.command("logout")
@json_option
@pass_app
@handle_errors
def logout_cmd(app: App, as_json: bool) -> None:
    """退出登录 / End your login ticket on this station."""
    ticket, _why = tickets.read(app.vault)
    removed = tickets.remove(app.vault)
    if ticket is not None:
        with write_txn(app.db):
            append(app.db, "access.logout", actor=ticket.user, subject=f"user:{ticket.user}")
    if as_json:
        print_json({"logged_out": removed, "user": ticket.user if ticket else None})
    else:
        click.echo("已退出 / logged out" if removed else "未登录 / not logged in")


COMMANDS = [login_cmd, logout_cmd, users_group, access_group, export_cmd]
