"""``station inbox status|assign|rescan``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from station import audit
from station.access.guard import CLERK, SERVICE, guard
from station.catalog import write_txn
from station.cli_util import App, json_option, pass_app, print_json, print_table
from station.errors import NotFoundError, StationError
from station.inbox import store
from station.inbox.oneshot import inbox_lock, poke, run_once, service_running
from station.inbox.sidecar import details_from_mapping
from station.inbox.store import drop_summary
from station.inbox.watch import watch_mode
from station.log import get
from station.text import escape_text, yes_no
from station.timeutil import to_iso, utcnow

log = get()

STATE_LABELS = {
    "settling": "等待完成 / settling",
    "needs_details": "待补充信息 / needs details",
    "held": "说明文件有误 / held (sidecar error)",
    "ingesting": "采集中 / ingesting",
    "done": "已完成 / done",
    "partial": "部分失败 / partial",
    "gone": "已消失 / gone",
    "refused": "已拒绝 / refused",
}


@click.group("inbox")
def inbox_group() -> None:
    """收件箱：无底座设备的投递文件夹 / Watched inbox folders for devices without a dock."""


@inbox_group.command("status")
@click.option("--all", "show_all", is_flag=True, help="列出最近的全部投递 / list all recent drops")
@json_option
@pass_app
def status_cmd(app: App, show_all: bool, as_json: bool) -> None:
    """收件箱状态 / Inbox folders, the service, and drops that need a person."""
    app.vault.check()
    app.db  # noqa: B018 — opens and migrates the catalog
    settings = app.settings
    folders = [
        {
            "path": f,
            "present": Path(f).is_dir() and not Path(f).is_symlink(),
            "mode": watch_mode(Path(f), settings.inbox.watch_mode) if Path(f).exists() else None,
        }
        for f in settings.inbox.folders
    ]
    summary = drop_summary(app.vault)
    data: dict[str, Any] = {
        "service_running": service_running(app.vault),
        "folders": folders,
        "settle_seconds": settings.inbox.settle_seconds,
        "after_verify": settings.inbox.after_verify,
        **summary,
    }
    if show_all:
        data["recent"] = [r.as_dict() for r in store.list_drops(app.db, limit=100)]
    if as_json:
        print_json(data)
        return
    running = "运行中 / running" if data["service_running"] else "未运行 / not running"
    click.echo(f"收件箱服务 / inbox service: {running}")
    print_table(
        ["文件夹 / folder", "存在 / present", "方式 / mode"],
        [[f["path"], yes_no(f["present"]), f["mode"] or "-"] for f in folders],
    )
    counts = ", ".join(
        f"{STATE_LABELS.get(k, k)}: {v}" for k, v in sorted(summary["drops"].items())
    )
    click.echo(f"投递 / drops: {counts or '-'}")
    rows = data["recent"] if show_all else summary["attention"]
    if rows:
        click.echo("需要处理 / needs attention:" if not show_all else "最近投递 / recent drops:")
        print_table(
            ["编号 / id", "投递 / drop", "状态 / state", "原因 / reason"],
            [
                [r["id"], r["name"], STATE_LABELS.get(r["state"], r["state"]), r["error"] or ""]
                for r in rows
            ],
        )


@inbox_group.command("assign")
@click.argument("drop_id", type=int)
@click.option("--officer", required=True, help="执法人员编号 / officer number (producer, R5)")
@click.option("--device", help="设备编号 / device (camera) id")
@click.option("--unit", help="单位编号 / unit number")
@click.option("--case", "case", help="案件编号 / case number")
@click.option("--method", help="制作方式 / production method, e.g. camera model (R5)")
@json_option
@pass_app
def assign_cmd(
    app: App,
    drop_id: int,
    officer: str,
    device: str | None,
    unit: str | None,
    case: str | None,
    method: str | None,
    as_json: bool,
) -> None:
    """补充投递信息 / Supply the details of a drop held in "needs details"."""
    guard(app, *CLERK)
    raw = {"officer": officer, "device": device, "unit": unit, "case": case, "method": method}
    details = details_from_mapping({k: v for k, v in raw.items() if v}, where="assign")
    db = app.db
    row = store.get_drop(db, drop_id)
    if row is None:
        raise NotFoundError(
            f"无此投递 / no inbox drop {drop_id}", hint="see `station inbox status`"
        )
    if row.state not in store.ASSIGNABLE:
        raise StationError(
            f"drop {drop_id} is {row.state}: details can no longer be assigned"
            " / 该投递不可再补充信息",
            where=f"{row.folder}/{row.name}",
        )
    with write_txn(db):
        store.update_drop(
            db,
            drop_id,
            officer_id=details.officer,
            device_id=details.device,
            unit_id=details.unit,
            case_number=details.case,
            method=details.method,
            details_source="assigned",
            assigned_by=app.actor,
            assigned_at=to_iso(utcnow()),
            state="settling",
            error=None,
        )
        audit.append(
            db,
            "inbox.drop_assigned",
            actor=app.actor,
            subject=f"inbox_drop:{drop_id}",
            data={"folder": row.folder, "name": row.name, "was": row.state, **details.as_dict()},
        )
    log.info("inbox.drop_assigned", drop_id=drop_id, actor=app.actor, **details.as_dict())
    result: dict[str, Any] = {"drop_id": drop_id, "details": details.as_dict()}
    with inbox_lock(app.vault) as mine:
        if mine:
            result.update(
                run_once(app.vault, app.settings, actor=app.actor, only=(row.folder, row.name))
            )
        else:
            result["poked"] = str(poke(app.vault, retry=False))
    _report(result, as_json, f"已补充 / assigned: drop {drop_id}")


@inbox_group.command("rescan")
@click.option("--retry", is_flag=True, help="重试失败的文件 / retry files that failed before")
@json_option
@pass_app
def rescan_cmd(app: App, retry: bool, as_json: bool) -> None:
    """重新扫描收件箱 / Scan the inbox folders now (asks the running service, else does it)."""
    app.vault.check()
    guard(app, *CLERK, SERVICE)
    with inbox_lock(app.vault) as mine:
        if not mine:
            path = poke(app.vault, retry=retry)
            _report({"poked": str(path)}, as_json, "已通知收件箱服务 / asked the inbox service")
            return
        result = run_once(app.vault, app.settings, actor=app.actor, retry_failed=retry)
    _report(result, as_json, "扫描完成 / rescan done")


def _report(result: dict[str, Any], as_json: bool, headline: str) -> None:
    if as_json:
        print_json(result)
        return
    click.echo(headline)
    processed = result.get("processed", [])
    if processed:
        print_table(
            [
                "投递 / drop",
                "状态 / state",
                "新 / new",
                "重复 / held",
                "失败 / failed",
                "已移除 / removed",
            ],
            [
                [
                    o["name"],
                    STATE_LABELS.get(o["state"], o["state"]),
                    o["new"],
                    o["held"],
                    o["failed"],
                    o["removed"],
                ]
                for o in processed
            ],
        )
    for w in result.get("waiting", []):
        click.echo(f"等待 / waiting: {escape_text(w['drop'])} — {escape_text(w['reason'])}")
    for f in result.get("missing_folders", []):
        click.echo(f"文件夹不存在 / folder missing: {f}", err=True)
    if "poked" in result:
        click.echo(f"收件箱服务将处理 / the running inbox service will act ({result['poked']})")


COMMANDS = [inbox_group]
