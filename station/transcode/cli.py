"""``station transcode status|retry|run-once``."""

from __future__ import annotations

import sys

import click

from station.access.guard import CLERK, SERVICE, guard
from station.cli_util import App, json_option, pass_app, print_json, print_table
from station.recref import resolve_many
from station.transcode import jobs
from station.transcode.service import PRIORITIES, busy_slots, choose_priority, run_once


@click.group("transcode")
def transcode_group() -> None:
    """归档转码 / Archival derivatives (R7): status, retry, run once."""


@transcode_group.command("status")
@click.option("--limit", default=50, show_default=True, help="最多列出 / rows to list at most")
@json_option
@pass_app
def status_cmd(app: App, limit: int, as_json: bool) -> None:
    """转码任务状态 / Job counts and the jobs not done (failed ones with their error)."""
    data = jobs.status(app.db, limit=limit)
    if as_json:
        print_json(data)
        return
    counts = data["counts"]
    click.echo(
        "任务 / jobs: "
        + ", ".join(f"{k} {counts.get(k, 0)}" for k in ("queued", "running", "done", "failed"))
    )
    rows = data["pending_or_failed"]
    if rows:
        print_table(
            [
                "原始文件 / original",
                "状态 / state",
                "次数 / tries",
                "原因 / failure",
                "错误 / error",
            ],
            [
                [
                    f"{r['original_sha256'][:12]} {r['original_name']}",
                    r["state"] + (" partial" if r["partial"] else ""),
                    r["attempts"],
                    r["failure"] or "",
                    (r["error"] or "")[:80],
                ]
                for r in rows
            ],
        )


@transcode_group.command("retry")
@click.argument("sha256", nargs=-1)
@click.option("--all-failed", is_flag=True, help="重试全部失败任务 / retry every failed job")
@json_option
@pass_app
def retry_cmd(app: App, sha256: tuple[str, ...], all_failed: bool, as_json: bool) -> None:
    """重新排队 / Queue failed jobs again now (by original SHA-256 prefix, or --all-failed)."""
    guard(app, *CLERK)
    if not sha256 and not all_failed:
        raise click.UsageError(
            "请指定哈希前缀或 --all-failed / give SHA256 prefixes or --all-failed"
        )
    sha256 = resolve_many(app.db, sha256)
    done = jobs.retry(app.db, actor=app.actor, shas=list(sha256) or None, all_failed=all_failed)
    if as_json:
        print_json({"requeued": done})
    else:
        click.echo(f"已重新排队 / requeued: {len(done)}")


@transcode_group.command("run-once")
@click.option("--limit", type=int, default=None, help="最多处理 / jobs to run at most")
@click.option(
    "--priority",
    type=click.Choice(PRIORITIES),
    default="auto",
    show_default=True,
    help="ffmpeg 的优先级：auto 在终端前有人等待且无记录仪正在导入时为正常，否则为低 / "
    "ffmpeg's priority: auto = normal when run at a terminal and no recorder is being "
    "ingested, else low (nice transcode.nice, I/O idle, as the daemon)",
)
@json_option
@pass_app
def run_once_cmd(app: App, limit: int | None, priority: str, as_json: bool) -> None:
    """立即处理到期任务 / Queue missing derivatives and run every due job now, in this process."""
    guard(app, *CLERK, SERVICE)
    interactive = sys.stdin.isatty() if sys.stdin is not None else False
    busy = busy_slots(app.vault) if priority == "auto" else 0
    low = choose_priority(priority, interactive=interactive, busy=busy)
    summary = run_once(
        app.vault, app.db, app.settings, actor=app.actor, limit=limit, low_priority=low
    )
    if as_json:
        print_json(summary.as_dict())
        return
    click.echo(f"ffmpeg: {summary.ffmpeg} ({summary.ffmpeg_source}; {summary.ffmpeg_version})")
    click.echo(
        f"新排队 / enqueued {summary.enqueued}, 完成 / done {summary.done}, "
        f"失败 / failed {summary.failed} (部分挽救 / partial salvage {summary.partial}), "
        f"稍后重试 / retry later {summary.retry_later}"
    )


COMMANDS = [transcode_group]
