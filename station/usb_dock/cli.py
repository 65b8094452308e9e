"""``station run``, ``station status``, ``station devices …``, ``station sim recorder``."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from station.access.guard import ADMIN, CLERK, SERVICE, SUPERVISOR, guard
from station.cli_groups import sim
from station.cli_util import (
    App,
    handle_errors,
    human_bytes,
    json_option,
    pass_app,
    print_json,
    print_table,
)
from station.errors import InputError, StationError
from station.status import daemon_alive, read_status
from station.vault import Vault

if TYPE_CHECKING:
    from station.config import Settings
    from station.daemon import Daemon
    from station.diskspace import Space, SpaceWatch


@click.command("run")
@json_option
@pass_app
@handle_errors
def run_cmd(app: App, as_json: bool) -> None:
    """运行采集站守护进程 / Run the dock daemon (udev hotplug, sessions, sd_notify).

    --json: 日志为 JSON 行 / log as JSON lines (as under systemd).
    """
    from station import log

    guard(app, SERVICE)  # the daemon acts as the station's service identity
    # The daemon logs at the settings' level (default info) unless STATION_LOG_LEVEL says more.
    log.configure(
        os.environ.get("STATION_LOG_LEVEL", app.settings.log.level),
        json=as_json or os.environ.get("STATION_LOG_JSON") == "1",
    )
    sys.exit(build_daemon(app.vault, app.settings).run())


def build_daemon(vault: Vault, settings: Settings) -> Daemon:
    """The daemon with its services: archival transcoding, the watched inbox, integrity upkeep
    (checkpoints, periodic verify), the settings file watched for changes, and the screens
    (setting ``web.listen``; empty: none)."""
    import dataclasses

    from station.audit.schedule import IntegrityService
    from station.config import Settings
    from station.daemon import Daemon
    from station.inbox.daemon import daemon_services
    from station.transcode.service import TranscodeService

    transcode = TranscodeService(vault, settings) if settings.transcode.profile != "off" else None
    wakes = [transcode.wake] if transcode is not None else []

    def apply_in_place(new: Settings, old: Settings, keys: list[str]) -> None:
        # every part holding the settings object sees the new values (dock thresholds, …)
        for f in dataclasses.fields(Settings):
            setattr(settings, f.name, getattr(new, f.name))

    inbox, watcher = daemon_services(
        vault, settings, on_settings=[apply_in_place], on_ingested=wakes
    )
    integrity = IntegrityService(vault, settings)
    space = _space_watch(vault, settings)
    services: list[Any] = [inbox, integrity, watcher, space]
    fleet = _fleet_service(vault, settings)
    if fleet is not None:
        services.append(fleet)
    if settings.web.listen:
        # the screens (kiosk, office pages) from the same process; refuses a non-loopback
        # address without TLS before anything starts
        from station.web.server import WebService

        services.append(WebService(vault, settings))
    if transcode is not None:
        services.insert(0, transcode)
    # A dock session has the disks first: transcoding pauses (nested) while any session runs
    # and resumes after, then wakes for the new recordings (ingest keeps >= 90 % of its speed).
    pause: list[Any] = [transcode.pause] if transcode is not None else []
    resume: list[Any] = [transcode.resume] if transcode is not None else []
    wake: list[Any] = [lambda _outcome: transcode.wake()] if transcode is not None else []
    daemon = Daemon(
        vault,
        settings,
        actor="station",
        services=services,
        on_session_start=pause,
        on_session_finally=resume,
        on_session_end=wake,
    )
    # the services' own status beside the slots, for `station status` and a screen
    board = daemon.board
    inbox.status_listeners.append(lambda st: board.set_service("inbox", st))
    if transcode is not None:
        # after each session: the archival queue as it stands (queued, running, done, failed)
        daemon.on_session_end.append(lambda _outcome: _transcode_status(vault, board))
    space.on_check = lambda sp: board.set_service("vault_space", sp.to_dict())
    integrity.listeners.append(
        lambda r: board.set_service(
            "integrity", {"checkpoint_size": r.checkpoint_size, "verify_ok": r.verify_ok}
        )
    )
    if fleet is not None:
        # after each session the new recordings go to the central store (R19)
        daemon.on_session_end.append(lambda _outcome: fleet.wake())
        fleet.listeners.append(lambda st: board.set_service("fleet", st))
    return daemon


def _fleet_service(vault: Vault, settings: Settings) -> Any:
    """The central store's replication (R19), when ``[fleet]`` names a store or database."""
    if not (settings.fleet.s3_endpoint or settings.fleet.postgres_dsn):
        return None
    from station.fleet.service import FleetService

    return FleetService(vault, settings)


def _space_watch(vault: Vault, settings: Settings) -> SpaceWatch:
    """The vault's free space, alerted through the dock's alert table (own connection)."""
    from station.catalog import open_catalog
    from station.diskspace import ALERT_CODE, SpaceWatch
    from station.usb_dock import registry

    def has_open() -> bool:
        db = open_catalog(vault.catalog_path, migrate=False)
        try:
            return any(a["code"] == ALERT_CODE for a in registry.list_alerts(db))
        finally:
            db.close()

    def alert(sp: Space) -> None:
        db = open_catalog(vault.catalog_path, migrate=False)
        try:
            registry.raise_alert(db, ALERT_CODE, sp.message(), data=sp.to_dict())
        finally:
            db.close()

    return SpaceWatch(vault.home, settings, has_open_alert=has_open, raise_alert=alert)


def _transcode_status(vault: Vault, board: Any) -> None:
    from station.catalog import open_catalog
    from station.transcode import jobs

    db = open_catalog(vault.catalog_path, migrate=False)
    try:
        board.set_service("transcode", {"counts": jobs.status(db, limit=0)["counts"]})
    finally:
        db.close()


@click.command("status")
@json_option
@pass_app
@handle_errors
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
            "the daemon has not written a status yet / 守护进程未运行",
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
                "是 / yes" if s.get("safe_to_undock") else "否 / no",
            ]
        )
    print_table(
        [
            "插槽 slot",
            "设备 device",
            "执法证号 certificate no.",
            "阶段 phase",
            "文件 files",
            "字节 bytes",
            "标记 flags",
            "可拔出 safe",
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
@handle_errors
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

    from station.access.guard import guard
    from station.usb_dock import registry

    guard(app, *ADMIN)
    try:
        secret = bytes.fromhex(secret_hex) if secret_hex else None
    except ValueError as exc:
        raise StationError("--secret-hex is not hexadecimal / 密钥不是十六进制") from exc
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
@handle_errors
def devices_revoke(app: App, device_id: str, as_json: bool) -> None:
    """注销设备 / Revoke a device: it is refused (never mounted) from now on."""

    from station.access.guard import guard
    from station.usb_dock import registry

    guard(app, *ADMIN)
    registry.revoke(app.db, device_id, actor=app.actor)
    if as_json:
        print_json({"device_id": device_id, "enrolled": False})
    else:
        click.echo(f"已注销 / revoked: {device_id}")


@devices_group.command("state")
@click.argument("device_id")
@click.argument("state", type=click.Choice(["in-service", "in-repair", "retired"]))
@click.option("--at", "at_text", help="日期时间 ISO（默认现在）/ when (default now)")
@click.option("--note", help="说明 / note (e.g. 送修单号 repair ticket)")
@json_option
@pass_app
@handle_errors
def devices_state(
    app: App, device_id: str, state: str, at_text: str | None, note: str | None, as_json: bool
) -> None:
    """设备状态：在用、送修、报废 / Put a device in service, in repair (送修) or retired (R4).
    A device in repair or retired is refused at the dock."""
    from station.cases.cli import parse_time
    from station.usb_dock import service

    guard(app, *SUPERVISOR)
    row = service.record(
        app.db,
        device_id,
        state.replace("-", "_"),
        actor=app.actor,
        at=parse_time(at_text, app, "--at"),
        note=note,
    )
    if as_json:
        print_json(row)
    else:
        click.echo(f"{device_id}: {service.STATES[row['service_state']]}（{row['at']}）")


@devices_group.command("damaged")
@click.argument("device_id")
@click.option("--at", "at_text", help="发现故障的时间 ISO（默认现在）/ when the fault was found")
@click.option("--note", required=True, help="故障情况 / what is wrong")
@json_option
@pass_app
@handle_errors
def devices_damaged(
    app: App, device_id: str, at_text: str | None, note: str, as_json: bool
) -> None:
    """报告设备故障 / Report a damaged device: it must be handed in for repair within 24 h
    (R4); the device report lists it until it is (`devices state … in-repair`)."""
    from station.cases.cli import parse_time
    from station.usb_dock import service

    guard(app, "officer", *CLERK)
    row = service.record(
        app.db,
        device_id,
        "damaged",
        actor=app.actor,
        at=parse_time(at_text, app, "--at"),
        note=note,
    )
    if as_json:
        print_json(row)
    else:
        click.echo(f"已报告故障 / damage reported: {device_id}（{row['at']}），24 小时内送修")


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
@handle_errors
def devices_inspect(
    app: App, device_id: str, result: str, note: str, at_text: str | None, as_json: bool
) -> None:
    """设备检查 / Record an inspection of a recorder (R4: devices are inspected from time to
    time). A fault found is also reported as damage: the device must be handed in for repair
    within 24 h."""
    from station.cases.cli import parse_time
    from station.timeutil import human_time
    from station.usb_dock import service

    guard(app, *SUPERVISOR)
    at = parse_time(at_text, app, "--at")
    words = "正常 / ok" if result == "ok" else "有故障 / fault"
    row = service.record(
        app.db, device_id, "inspected", actor=app.actor, at=at, note=f"{words}: {note}"
    )
    if result == "fault":
        row = service.record(app.db, device_id, "damaged", actor=app.actor, at=at, note=note)
    if as_json:
        print_json({**row, "result": result})
        return
    when = human_time(row["at"], app.settings.station.timezone)
    click.echo(f"已记录检查 / inspection recorded: {device_id}（{when}）{words}")
    if result == "fault":
        click.echo("有故障：停止使用，24 小时内送修 / fault: stop using it, hand it in within 24 h")


@devices_group.command("list")
@json_option
@pass_app
@handle_errors
def devices_list(app: App, as_json: bool) -> None:
    """列出设备（含未登记）/ List devices, enrolled and seen-but-unknown."""

    from station.usb_dock import registry

    rows = registry.list_devices(app.db)
    if as_json:
        print_json(rows)
        return
    print_table(
        [
            "设备 device",
            "型号 model",
            "驱动 driver",
            "执法证号 certificate no.",
            "姓名 name",
            "单位 unit",
            "已登记 enrolled",
            "状态 state (R4)",
            "最近接入 last seen",
        ],
        [
            [
                r["device_id"],
                r["model"],
                r["driver"],
                r["officer_id"],
                r["officer_name"],
                r["unit_id"],
                "是 yes" if r["enrolled"] else "否 no",
                {"in_repair": "送修 in repair", "retired": "报废 retired"}.get(
                    r.get("service_state") or "", "在用 in service"
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
@handle_errors
def devices_alerts(app: App, show_all: bool, as_json: bool) -> None:
    """设备告警 / Device alerts (unknown device, failed authentication, duplicate id…)."""

    from station.usb_dock import registry

    rows = registry.list_alerts(app.db, open_only=not show_all)
    if as_json:
        print_json(rows)
        return
    print_table(
        ["编号 id", "时间 at", "类型 code", "设备 device", "插槽 slot", "说明 message"],
        [[r["id"], r["at"], r["code"], r["device_id"], r["slot"], r["message"]] for r in rows],
    )


@devices_group.command("ack")
@click.argument("alert_id", type=int)
@json_option
@pass_app
@handle_errors
def devices_ack(app: App, alert_id: int, as_json: bool) -> None:
    """确认告警 / Acknowledge an alert."""

    from station.access.guard import guard
    from station.usb_dock import registry

    guard(app, *SUPERVISOR)
    registry.acknowledge(app.db, alert_id, actor=app.actor)
    if as_json:
        print_json({"alert_id": alert_id, "acknowledged": True})
    else:
        click.echo(f"已确认 / acknowledged: {alert_id}")


@sim.command("recorder")
@click.option("--volume", type=click.Path(exists=True), help="记录仪存储 / the recorder's storage")
@click.option("--pty-link", type=click.Path(dir_okay=False), help="串口链接 / link to the pty")
@click.option(
    "--drift",
    type=click.FloatRange(-1e9, 1e9),
    default=0.0,
    show_default=True,
    help="时钟偏差秒 / clock drift s",
)
@click.option("--battery", type=click.IntRange(0, 100), default=87, show_default=True)
@click.option(
    "--faults",
    default="",
    help="故障 / faults: "
    + ",".join(
        [
            "silent",
            "garbage",
            "garbage-once",
            "partial",
            "oversized",
            "wrong-id",
            "clock-2000",
            "bad-auth",
            "disconnect",
            "no-newline",
            "drip",
        ]
    ),
)
@click.option("--serial", "serial_no", default="ZFY0001", show_default=True)
@click.option("--officer", default="100001", show_default=True)
@click.option("--officer-name", default="张三", show_default=True)
@click.option("--unit", default="110101000001", show_default=True)
@click.option("--unit-name", default="示例市城市管理局", show_default=True)
@click.option("--secret-hex", default="", help="设备密钥 / device key (hex)")
@json_option
@handle_errors
def sim_recorder(
    volume: str | None,
    pty_link: str | None,
    drift: float,
    battery: int,
    faults: str,
    serial_no: str,
    officer: str,
    officer_name: str,
    unit: str,
    unit_name: str,
    secret_hex: str,
    as_json: bool,
) -> None:
    """模拟记录仪（串口协议，伪终端）/ A simulated recorder speaking ZFY-LINE/1 on a pty."""
    from station.recorder import protocol
    from station.recorder.simulator import (
        FAULTS,
        SimConfig,
        SimRecorder,
        open_pty,
        remove_link,
        serve,
    )

    chosen = frozenset(f for f in faults.split(",") if f)
    unknown = chosen - set(FAULTS)
    if unknown:
        raise click.BadParameter(f"unknown faults {sorted(unknown)}", param_hint="--faults")
    try:
        secret = bytes.fromhex(secret_hex)
    except ValueError as exc:
        raise InputError("--secret-hex is not hexadecimal / 密钥不是十六进制") from exc
    cfg = SimConfig(
        serial=serial_no,
        officer_id=officer,
        officer_name=officer_name,
        unit_id=unit,
        unit_name=unit_name,
        secret=secret,
        battery_pct=battery,
        drift_s=drift,
        volume=Path(volume) if volume else None,
        faults=chosen,
    )
    try:  # every reply must fit in one frame: the names are sent in INFO
        for verb in ("HELLO", "INFO"):
            protocol.encode(SimRecorder(cfg).handle(protocol.Frame(1, verb, {"versions": "1"})))
    except ValueError as exc:
        raise InputError(
            f"names too long for one ZFY-LINE frame / 名称过长: {exc}",
            where="--serial/--officer/--officer-name/--unit/--unit-name",
        ) from exc
    master, slave, name = open_pty(Path(pty_link) if pty_link else None)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    info = {"pty": name, "link": pty_link, "serial": serial_no, "pid": os.getpid()}
    click.echo(
        json.dumps(info, ensure_ascii=False)
        if as_json
        else f"模拟记录仪 / simulated recorder {serial_no} on {name}"
    )
    sys.stdout.flush()
    t = threading.Thread(target=serve, args=(SimRecorder(cfg), master, stop), daemon=True)
    t.start()
    while not stop.wait(3600):
        pass
    t.join(5)
    os.close(master)
    os.close(slave)
    if pty_link:
        remove_link(Path(pty_link), name)


COMMANDS = [run_cmd, status_cmd, devices_group]
