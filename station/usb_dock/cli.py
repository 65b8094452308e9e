"""``station status``, ``station devices …``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from station.access.guard import ADMIN, CLERK, SUPERVISOR, guard
from station.cli_util import (
    App,
    human_bytes,
    json_option,
    pass_app,
    print_json,
    print_table,
)
from station.errors import StationError
from station.status import daemon_alive, read_status
from station.text import yes_no

if TYPE_CHECKING:
    from station.diskspace import Space


@click.command("status")
@json_option
@pass_app
def status_cmd(app: App, as_json: bool) -> None:
    """插槽状态 / What each dock slot is doing, and whether it is safe to undock."""
    from station.clock_view import clock_state, print_clock

    clock = clock_state(app)  # may footage be destroyed by this clock (R9)
    space = _space_line(app)
    st = read_status(app.vault.run / "status.json")
    if st is None:
        if not as_json:
            print_clock(clock)
        raise StationError(
            "守护进程未运行 / the daemon has not written a status yet",
            where=str(app.vault.run),
            hint="start it: station run",
        )
    st["running"] = daemon_alive(st) and st.get("state") not in ("stopped",)
    st["clock"] = clock
    if space is not None:
        st["vault_space"] = space.to_dict()
    if as_json:
        print_json(st)
        return
    print_clock(clock)
    click.echo(
        f"守护进程 / daemon: {st.get('state')} (pid {st.get('pid')}, "
        f"{'运行中 / running' if st['running'] else '未运行 / not running'})"
    )
    rows = []
    for s in st.get("slots", []):
        done = f"{s.get('files_done', 0)}/{s.get('files_total', '?')}"
        size = f"{human_bytes(s.get('bytes_done'))}/{human_bytes(s.get('bytes_total'))}"
        rows.append(
            [
                s.get("slot"),
                s.get("device_id") or "",
                s.get("officer_id") or "",
                s.get("phase_text", s.get("phase")),
                done,
                size,
                ",".join(f["code"] for f in s.get("flags", [])),
                yes_no(s.get("safe_to_undock")),
            ]
        )
    print_table(
        [
            "插槽 / slot",
            "设备 / device",
            "执法证号 / certificate no.",
            "阶段 / phase",
            "文件 / files",
            "字节 / bytes",
            "标记 / flags",
            "可拔出 / safe",
        ],
        rows,
    )
    _print_services(st.get("services", {}), app.vault.run / "disc-status.json")
    if space is not None:
        click.echo(
            f"存储空间 / vault disk: {human_bytes(space.free_bytes)} 可用 free of "
            f"{human_bytes(space.total_bytes)} ({space.free_percent:.1f}%)"
        )


def _space_line(app: App) -> Space | None:
    """The vault disk's free space; a warning on stderr below ``vault.low_space_percent``
    (printed even when the daemon is not running)."""
    from station.diskspace import vault_space

    try:
        space = vault_space(app.vault.home, app.settings)
    except OSError:
        return None
    if space.low:
        click.echo(f"警告 / warning: {space.message()}", err=True)
    return space


def _print_services(services: dict[str, Any], disc_status: Path) -> None:
    """The daemon's other work: inbox drops, integrity timer, a disc being built."""
    inbox = services.get("inbox")
    if inbox:
        drops = inbox.get("drops") or inbox.get("counts") or {}
        folders = ", ".join(f.get("path", "?") for f in inbox.get("folders", [])) or "—"
        click.echo(f"收件箱 / inbox: {folders}; {json.dumps(drops, ensure_ascii=False)}")
    transcode = services.get("transcode")
    if transcode:
        counts = transcode.get("counts", {})
        click.echo(
            "归档转码 / transcode: "
            + ", ".join(f"{k} {counts.get(k, 0)}" for k in ("queued", "running", "done", "failed"))
        )
    integrity = services.get("integrity")
    if integrity:
        ok = integrity.get("verify_ok")
        verdict = "—" if ok is None else ("通过 / ok" if ok else "有发现 / findings")
        click.echo(
            f"完整性 / integrity: 检查点 checkpoint {integrity.get('checkpoint_size') or '—'}, "
            f"校验 verify {verdict} ({integrity.get('updated_at')})"
        )
    fleet = services.get("fleet")
    if fleet:
        click.echo(
            f"中心存储 / central store: 待传 queued {fleet.get('queued', 0)} "
            f"({human_bytes(fleet.get('queued_bytes'))}), 落后 lag {fleet.get('lag_s', 0):.0f} s, "
            f"目录待推送 catalog outbox {fleet.get('outbox', 0)}, 审计差 audit behind "
            f"{fleet.get('central_audit_lag', 0)}"
            + (f"; 错误 / error: {fleet['last_error']}" if fleet.get("last_error") else "")
        )
    disc = read_status(disc_status)
    if disc:
        click.echo(f"光盘 / disc: {json.dumps(disc, ensure_ascii=False)}")


@click.group("devices")
def devices_group() -> None:
    """记录仪登记与告警 / Recorders: enrol, list, revoke; alerts (R4)."""


@devices_group.command("enrol")
@click.argument("device_id")
@click.option(
    "--officer", "officer_id", required=True, help="执法证号 / enforcement certificate number"
)
@click.option("--unit", "unit_id", required=True, help="单位编号（12位）/ unit number (12 digits)")
@click.option("--officer-name", help="执法人员姓名 / officer name")
@click.option("--unit-name", help="单位名称 / unit name")
@click.option("--model", help="型号 / recorder model")
@click.option(
    "--driver",
    type=click.Choice(["serial", "mass-storage"]),
    default="serial",
    show_default=True,
    help="驱动 / driver",
)
@click.option("--usb-serial", help="USB 序列号（仅存储设备）/ USB serial (mass-storage recorders)")
@click.option(
    "--secret-hex",
    help="设备密钥（十六进制，缺省自动生成）/ device key in hex "
    "(default: keep the enrolled one or generate one)",
)
@json_option
@pass_app
def devices_enrol(
    app: App,
    device_id: str,
    officer_id: str,
    unit_id: str,
    officer_name: str | None,
    unit_name: str | None,
    model: str | None,
    driver: str,
    usb_serial: str | None,
    secret_hex: str | None,
    as_json: bool,
) -> None:
    """登记设备并绑定执法人员、单位 / Bind a device to an officer and unit; prints its key once."""

    from station.usb_dock import registry

    guard(app, *ADMIN)
    try:
        secret = bytes.fromhex(secret_hex) if secret_hex else None
    except ValueError as exc:
        raise StationError("密钥不是十六进制 / --secret-hex is not hexadecimal") from exc
    key = registry.enrol(
        app.db,
        device_id,
        officer_id=officer_id,
        unit_id=unit_id,
        actor=app.actor,
        officer_name=officer_name,
        unit_name=unit_name,
        model=model,
        driver=driver,
        usb_serial=usb_serial,
        secret=secret,
    )
    out = {
        "device_id": device_id,
        "officer_id": officer_id,
        "unit_id": unit_id,
        "driver": driver,
        "secret_hex": key.hex(),
    }
    if as_json:
        print_json(out)
    else:
        click.echo(f"已登记 / enrolled: {device_id} → {officer_id} / {unit_id}")
        click.echo(f"设备密钥（写入记录仪）/ device key (provision into the recorder): {key.hex()}")


@devices_group.command("revoke")
@click.argument("device_id")
@json_option
@pass_app
def devices_revoke(app: App, device_id: str, as_json: bool) -> None:
    """注销设备 / Revoke a device: it is refused (never mounted) from now on."""

    from station.usb_dock import registry

    guard(app, *ADMIN)
    registry.revoke(app.db, device_id, actor=app.actor)
    if as_json:
        print_json({"device_id": device_id, "enrolled": False})
    else:
        click.echo(f"已注销 / revoked: {device_id}")


def _record_service(
    app: App, device_id: str, event: str, at_text: str | None, note: str | None
) -> tuple[dict[str, Any], str]:
    """Record one service event (R4) at ``--at`` (default now); the row and its Beijing time."""
    from station.cases.cli import parse_time
    from station.timeutil import human_time
    from station.usb_dock import service

    at = parse_time(at_text, app, "--at")
    row = service.record(app.db, device_id, event, actor=app.actor, at=at, note=note)
    return row, human_time(row["at"], app.settings.station.timezone)


@devices_group.command("state")
@click.argument("device_id")
@click.argument("state", type=click.Choice(["in-service", "in-repair", "retired"]))
@click.option("--at", "at_text", help="日期时间 ISO（默认现在）/ when (default now)")
@click.option("--note", help="说明 / note (e.g. 送修单号 repair ticket)")
@json_option
@pass_app
def devices_state(
    app: App, device_id: str, state: str, at_text: str | None, note: str | None, as_json: bool
) -> None:
    """设备状态：在用、送修、报废 / Put a device in service, in repair (送修) or retired (R4).
    A device in repair or retired is refused at the dock."""
    from station.usb_dock import service

    guard(app, *SUPERVISOR)
    row, when = _record_service(app, device_id, state.replace("-", "_"), at_text, note)
    if as_json:
        print_json(row)
    else:
        click.echo(f"{device_id}: {service.STATES[row['service_state']]}（{when}）")


@devices_group.command("damaged")
@click.argument("device_id")
@click.option("--at", "at_text", help="发现故障的时间 ISO（默认现在）/ when the fault was found")
@click.option("--note", required=True, help="故障情况 / what is wrong")
@json_option
@pass_app
def devices_damaged(
    app: App, device_id: str, at_text: str | None, note: str, as_json: bool
) -> None:
    """报告设备故障 / Report a damaged device: it must be handed in for repair within 24 h
    (R4); the device report lists it until it is (`devices state … in-repair`)."""
    guard(app, "officer", *CLERK)
    row, when = _record_service(app, device_id, "damaged", at_text, note)
    if as_json:
        print_json(row)
    else:
        click.echo(f"已报告故障 / damage reported: {device_id}（{when}），24 小时内送修")


@devices_group.command("inspect")
@click.argument("device_id")
@click.option(
    "--result",
    type=click.Choice(["ok", "fault"]),
    required=True,
    help="检查结果：正常或有故障 / the result: ok, or a fault found",
)
@click.option("--note", required=True, help="检查情况 / what was checked and found")
@click.option("--at", "at_text", help="检查时间（北京时间，默认现在）/ when (station time)")
@json_option
@pass_app
def devices_inspect(
    app: App, device_id: str, result: str, note: str, at_text: str | None, as_json: bool
) -> None:
    """设备检查 / Record an inspection of a recorder (R4: devices are inspected from time to
    time). A fault found is also reported as damage: the device must be handed in for repair
    within 24 h."""
    guard(app, *SUPERVISOR)
    words = "正常 / ok" if result == "ok" else "有故障 / fault"
    row, when = _record_service(app, device_id, "inspected", at_text, f"{words}: {note}")
    if result == "fault":  # the same moment: a fault found is damage (R4)
        row, when = _record_service(app, device_id, "damaged", row["at"], note)
    if as_json:
        print_json({**row, "result": result})
        return
    click.echo(f"已记录检查 / inspection recorded: {device_id}（{when}）{words}")
    if result == "fault":
        click.echo("有故障：停止使用，24 小时内送修 / fault: stop using it, hand it in within 24 h")


@devices_group.command("list")
@json_option
@pass_app
def devices_list(app: App, as_json: bool) -> None:
    """列出设备（含未登记）/ List devices, enrolled and seen-but-unknown."""

    from station.usb_dock import registry

    rows = registry.list_devices(app.db)
    if as_json:
        print_json(rows)
        return
    print_table(
        [
            "设备 / device",
            "型号 / model",
            "驱动 / driver",
            "执法证号 / certificate no.",
            "姓名 / name",
            "单位 / unit",
            "已登记 / enrolled",
            "状态 state (R4)",
            "最近接入 / last seen",
        ],
        [
            [
                r["device_id"],
                r["model"],
                r["driver"],
                r["officer_id"],
                r["officer_name"],
                r["unit_id"],
                yes_no(r["enrolled"]),
                {"in_repair": "送修 / in repair", "retired": "报废 / retired"}.get(
                    r.get("service_state") or "", "在用 / in service"
                ),
                r["last_seen_at"],
            ]
            for r in rows
        ],
    )


@devices_group.command("alerts")
@click.option("--all", "show_all", is_flag=True, help="包括已处理的 / include acknowledged ones")
@json_option
@pass_app
def devices_alerts(app: App, show_all: bool, as_json: bool) -> None:
    """设备告警 / Device alerts (unknown device, failed authentication, duplicate id…)."""

    from station.usb_dock import registry

    rows = registry.list_alerts(app.db, open_only=not show_all)
    if as_json:
        print_json(rows)
        return
    print_table(
        ["编号 / id", "时间 / at", "类型 / code", "设备 / device", "插槽 / slot", "说明 / message"],
        [[r["id"], r["at"], r["code"], r["device_id"], r["slot"], r["message"]] for r in rows],
    )


@devices_group.command("ack")
@click.argument("alert_id", type=int)
@json_option
@pass_app
def devices_ack(app: App, alert_id: int, as_json: bool) -> None:
    """确认告警 / Acknowledge an alert."""

    from station.usb_dock import registry

    guard(app, *SUPERVISOR)
    registry.acknowledge(app.db, alert_id, actor=app.actor)
    if as_json:
        print_json({"alert_id": alert_id, "acknowledged": True})
    else:
        click.echo(f"已确认 / acknowledged: {alert_id}")


COMMANDS = [status_cmd, devices_group]
