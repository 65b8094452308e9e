"""``station departments …``: the 科室 of accounts, officers and recordings (R6, R14)."""

from __future__ import annotations

import click

from station.access import departments
from station.access.guard import ADMIN, CLERK, guard
from station.cli_util import App, handle_errors, json_option, pass_app, print_json, print_table


@click.group("departments")
def departments_group() -> None:
    """科室 / Departments of footage, cases and accounts; search and access follow them (R14).

    A recording belongs to its own department, else its case's, officer's or unit's (R6)."""


@departments_group.command("set-user")
@click.argument("name")
@click.argument("department", required=False)
@json_option
@pass_app
@handle_errors
def set_user(app: App, name: str, department: str | None, as_json: bool) -> None:
    """账号所属科室 / Put an account in a department (none: the whole unit). Admin."""
    guard(app, *ADMIN)
    departments.set_department(app.db, "user", name, department, actor=app.actor)
    if as_json:
        print_json({"user": name, "department": department})
    else:
        click.echo(f"{name} → {department or '全单位 / whole unit'}")


@departments_group.command("set-officer")
@click.argument("officer_id")
@click.argument("department")
@json_option
@pass_app
@handle_errors
def set_officer(app: App, officer_id: str, department: str, as_json: bool) -> None:
    """执法人员所属科室 / Put an officer (执法证号) in a department: their footage belongs to it
    unless a clerk says otherwise. Clerk."""
    guard(app, *CLERK)
    dept = departments.need_department_text(department)
    departments.set_department(app.db, "officer", officer_id, dept, actor=app.actor)
    if as_json:
        print_json({"officer": officer_id, "department": dept})
    else:
        click.echo(f"{officer_id} → {dept}")


@departments_group.command("list")
@json_option
@pass_app
@handle_errors
def list_cmd(app: App, as_json: bool) -> None:
    """科室列表 / Departments with their accounts, officers and cases."""
    rows = departments.list_departments(app.db)
    if as_json:
        print_json(rows)
        return
    print_table(
        ["科室 / department", "账号 / accounts", "执法人员 / officers", "案件 / cases"],
        [(r["department"], r["users"], r["officers"], r["cases"]) for r in rows],
    )


COMMANDS = [departments_group]
