"""``station retention run|restore|tombstones`` (R9, R10, R11)."""

from __future__ import annotations

import json
import sys
from typing import TextIO

import click

from station.access.guard import SERVICE, SUPERVISOR, guard
from station.cases.cli import parse_time
from station.cli_util import (
    App,
    human_bytes,
    json_option,
    pass_app,
    print_json,
    print_table,
    time_header,
)
from station.errors import IntegrityError, RetentionError, VaultFullError
from station.recref import resolve_many, short
from station.retention import approval, executor
from station.retention.policy import RULE_LABELS
from station.retention.runtypes import Item, RunReport
from station.timeutil import human_time, to_iso, utcnow


@click.group("retention")
def retention_group() -> None:
    """保存期：提请、批准、清除与恢复 / Retention: propose, approve, purge, restore (R9–R11)."""


def _exit_code(report: RunReport) -> int:
    if report.clock is not None:
        return RetentionError.exit_code  # proposal only: the clock is not trusted
    if report.aborted and any(p.kind == "disk-full" for p in report.problems):
        return VaultFullError.exit_code
    if report.problems:
        return IntegrityError.exit_code
    return 0


def _print(report: RunReport, limit: int) -> None:
    title = "演练（不做任何改动）/ DRY RUN — nothing changed" if report.dry_run else "执行 / RUN"
    click.echo(f"{title} — as of {report.as_of}")
    for w in report.warnings:
        click.echo(f"警告 / warning: {w}")
    sections = [
        ("到期，提请负责人批准清除 / expired, proposed for a supervisor's approval", report.pend),
        ("宽限期满，删除 / grace over, to purge", report.purge),
        ("规则已变，恢复 / kept again, to restore", report.restore),
    ]
    for heading, items in sections:
        total = sum(i.size for i in items)
        click.echo(f"\n{heading}: {len(items)} ({human_bytes(total)})")
        if items:
            print_table(
                ["SHA-256", "规则 / rule", "保存至 / kept until", "理由 / why"],
                [
                    (i.sha256[:16], " / ".join(RULE_LABELS[i.rule]), i.keep_until or "—", i.reason)
                    for i in items[:limit]
                ],
            )
            if len(items) > limit:
                click.echo(f"… 另有 {len(items) - limit} 条 / {len(items) - limit} more")
    click.echo(f"\n宽限期内 / waiting in grace period: {report.waiting}")
    if not report.dry_run:
        click.echo(
            f"已移入待删 / pended {len(report.pended)}, 已删除 / purged {len(report.purged)}, "
            f"已恢复 / restored {len(report.restored)}, 续做 / recovered {len(report.recovered)}"
        )
    for p in report.problems:
        click.echo(f"问题 / problem [{p.kind}] {p.sha256[:16]} {p.path}: {p.detail}", err=True)
    if report.aborted:
        click.echo(f"中止 / aborted: {report.aborted}", err=True)


class PlanWriter:
    """A dry run's JSON written while the plan is made: the same document as
    ``report.to_json()`` (keys in its order), the newly expired items streamed one a line, so
    memory stays flat at a million recordings. Rule and reason texts repeat: each is encoded
    once."""

    def __init__(self, out: TextIO, as_of: str, batch: int = 2000) -> None:
        self.out, self.batch = out, batch
        self._texts: dict[str | None, str] = {None: "null"}
        self._chunk: list[str] = []
        self._first = True
        out.write(f'{{"as_of": {json.dumps(as_of)}, "dry_run": true, "pend": [')

    def _text(self, value: str | None) -> str:
        encoded = self._texts.get(value)
        if encoded is None:
            encoded = self._texts[value] = json.dumps(value, ensure_ascii=False)
        return encoded

    def item(self, i: Item) -> None:
        # hashes and ISO times need no escaping; the few distinct texts are encoded once
        text = self._text
        until = "null" if i.keep_until is None else f'"{i.keep_until}"'
        after = "null" if i.purge_after is None else f'"{i.purge_after}"'
        self._chunk.append(
            f'{{"sha256": "{i.sha256}", "size": {int(i.size)}, "rule": {text(i.rule)}, '
            f'"reason": {text(i.reason)}, "keep_until": {until}, '
            f'"action": {text(i.action)}, "purge_after": {after}}}'
        )
        if len(self._chunk) >= self.batch:
            self._flush()

    def lines(self, text: str, count: int) -> None:
        """``count`` items already in ``item``'s form, joined by ``",\\n"`` (made by SQLite:
        ``executor.make_plan``), written after the items before them."""
        if count:
            self._chunk.append(text)
            self._flush()

    def _flush(self) -> None:
        if self._chunk:
            self.out.write(("\n" if self._first else ",\n") + ",\n".join(self._chunk))
            self._first, self._chunk = False, []

    def finish(self, report: RunReport) -> None:
        self._flush()
        rest = report.to_json()
        for key in ("as_of", "dry_run", "pend"):
            rest.pop(key)
        tail = json.dumps(rest, ensure_ascii=False, default=str)[1:-1]
        self.out.write(("]" if self._first else "\n]") + (f", {tail}" if tail else "") + "}\n")
        self.out.flush()


@retention_group.command("run")
@click.option("--dry-run", is_flag=True, help="只列出，不做改动 / list only, change nothing")
@click.option("--now", "now_text", help="按此时间决定（ISO）/ decide as of this time")
@click.option("--limit", type=int, default=50, show_default=True, help="表格行数 / rows shown")
@json_option
@pass_app
def run_cmd(app: App, dry_run: bool, now_text: str | None, limit: int, as_json: bool) -> None:
    """执行保存期规则 / Apply the retention rules: expired routine footage is proposed for
    purging; only what a supervisor approves (`retention approve`) goes to pending-purge for the
    grace period, then is deleted with a tombstone naming the approver (R9). Unclassified
    footage, case footage (R10), long-term marks (R11) and legal holds are never touched."""
    if not dry_run:
        guard(app, *SUPERVISOR, SERVICE)
    now = parse_time(now_text, app, "--now") or utcnow()
    if dry_run and as_json:
        writer = PlanWriter(sys.stdout, to_iso(now))
        report = executor.run(
            app.vault,
            app.db,
            app.settings,
            now=now,
            actor=app.actor,
            dry_run=True,
            on_pend=writer.item,
            on_pend_json=writer.lines,
            now_given=now_text is not None,
        )
        writer.finish(report)
        sys.exit(_exit_code(report))
    report = executor.run(
        app.vault,
        app.db,
        app.settings,
        now=now,
        actor=app.actor,
        dry_run=dry_run,
        now_given=now_text is not None,
    )
    if as_json:
        print_json(report.to_json())
    else:
        _print(report, limit)
    sys.exit(_exit_code(report))


@retention_group.command("restore")
@click.argument("sha256", nargs=-1)
@click.option("--all", "all_pending", is_flag=True, help="恢复全部待删 / restore every pending")
@click.option("--note", help="说明 / why")
@json_option
@pass_app
def restore_cmd(
    app: App, sha256: tuple[str, ...], all_pending: bool, note: str | None, as_json: bool
) -> None:
    """恢复待删录像 / Move pending-purge recordings back into the vault. Link them to a case or
    place a hold too, or the next run expires them again."""
    guard(app, *SUPERVISOR)
    sha256 = resolve_many(app.db, sha256)
    report = executor.restore(
        app.vault, app.db, list(sha256), actor=app.actor, note=note, all_pending=all_pending
    )
    if as_json:
        print_json(report.to_json())
    else:
        click.echo(f"已恢复 / restored: {len(report.restored)}")
        for p in report.problems:
            click.echo(f"问题 / problem [{p.kind}] {p.sha256[:16]} {p.path}: {p.detail}", err=True)
    sys.exit(_exit_code(report))


@retention_group.command("tombstones")
@click.option("--limit", type=int, default=100, show_default=True)
@json_option
@pass_app
def tombstones_cmd(app: App, limit: int, as_json: bool) -> None:
    """墓碑记录 / Tombstones of purged recordings (kept forever, R9)."""
    rows = list(
        app.db.query("select * from tombstones order by purged_at desc, sha256 limit ?", [limit])
    )
    if as_json:
        print_json(rows)
        return
    tz = app.settings.station.timezone
    print_table(
        [
            "编号 / id",
            "大小 / size",
            "规则 / rule",
            time_header("删除于", "purged", tz),
            "执行人 / by",
            "批准人 / approved by",
        ],
        [
            (
                short(r["sha256"]),
                human_bytes(r["size"]),
                " / ".join(RULE_LABELS.get(r["rule"], (r["rule"], r["rule"]))),
                human_time(r["purged_at"], tz),
                r["purged_by"],
                r.get("approved_by") or "—",
            )
            for r in rows
        ],
    )


def _decided_out(out: approval.Decided, as_json: bool, tz: str) -> None:
    if as_json:
        print_json(out.to_json())
        return
    if out.approved:
        click.echo(
            f"已批准，移入待删 / approved, pending purge: {len(out.approved)}"
            f"（宽限期至 / grace until {human_time(out.purge_after, tz)}）"
        )
    if out.rejected:
        click.echo(f"已驳回，继续保存 / rejected, kept: {len(out.rejected)}")
    for w in out.withdrawn:
        click.echo(
            f"已撤回（规则已变）/ withdrawn, a rule keeps it now: {short(w['sha256'])} {w['why']}"
        )
    for p in out.problems:
        click.echo(f"问题 / problem [{p['kind']}] {short(p['sha256'])}: {p['detail']}", err=True)


@retention_group.command("proposals")
@click.option("--limit", type=int, default=200, show_default=True, help="表格行数 / rows shown")
@json_option
@pass_app
def proposals_cmd(app: App, limit: int, as_json: bool) -> None:
    """待批准的清除提议 / Purge proposals waiting for a supervisor's decision (R9)."""
    rows = approval.open_proposals(app.db)
    if as_json:
        print_json(rows)
        return
    click.echo(f"待批准 / waiting: {len(rows)}")
    tz = app.settings.station.timezone
    print_table(
        [
            "编号 / id",
            time_header("录制", "recorded", tz),
            "执法证号 / certificate no.",
            "规则 / rule",
            "提请于 / proposed",
        ],
        [
            (
                short(r["sha256"]),
                human_time(r["recorded_at"], tz),
                r["officer_id"] or "—",
                " / ".join(RULE_LABELS.get(r["rule"], (r["rule"], r["rule"]))),
                human_time(r["proposed_at"], tz),
            )
            for r in rows[:limit]
        ],
    )


@retention_group.command("approve")
@click.argument("sha256", nargs=-1)
@click.option("--all", "all_open", is_flag=True, help="批准全部待批 / approve the whole list")
@click.option("--reason", required=True, help="理由 / why (recorded) ")
@json_option
@pass_app
def approve_cmd(
    app: App, sha256: tuple[str, ...], all_open: bool, reason: str, as_json: bool
) -> None:
    """批准清除 / Approve proposed purges (whole list with --all, or per recording), with a
    reason; they go to pending-purge for the grace period, then the next run purges them (R9).
    Needs a supervisor."""
    guard(app, *SUPERVISOR)
    out = approval.approve(
        app.vault,
        app.db,
        app.settings,
        list(sha256),
        actor=app.actor,
        reason=reason,
        all_open=all_open,
    )
    _decided_out(out, as_json, app.settings.station.timezone)
    sys.exit(IntegrityError.exit_code if out.problems else 0)


@retention_group.command("reject")
@click.argument("sha256", nargs=-1)
@click.option("--all", "all_open", is_flag=True, help="驳回全部待批 / reject the whole list")
@click.option("--reason", required=True, help="理由 / why (recorded)")
@click.option("--keep-until", "keep_until", required=True, help="继续保存至（日期）/ keep until")
@json_option
@pass_app
def reject_cmd(
    app: App,
    sha256: tuple[str, ...],
    all_open: bool,
    reason: str,
    keep_until: str,
    as_json: bool,
) -> None:
    """驳回清除 / Reject proposed purges: the recordings are kept until --keep-until, then
    proposed again (R9). Needs a supervisor."""
    guard(app, *SUPERVISOR)
    until = parse_time(keep_until, app, "--keep-until")
    assert until is not None
    out = approval.reject(
        app.db, list(sha256), actor=app.actor, reason=reason, keep_until=until, all_open=all_open
    )
    _decided_out(out, as_json, app.settings.station.timezone)


COMMANDS = [retention_group]
