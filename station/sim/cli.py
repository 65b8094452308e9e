"""``station sim volume``, ``station sim recorder``: the simulators for demos and tests."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click

from station.cli_groups import sim
from station.cli_util import (
    App,
    json_option,
    parse_time_option,
    pass_app,
    print_json,
)
from station.errors import InputError
from station.recorder.simconfig import FAULTS, SimConfig
from station.sim.volume import make_volume

_SIM = SimConfig()  # the simulated recorder's defaults, shown by --help


@sim.command("volume")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--device", required=True, help="记录仪编号 / device id (e.g. 7 chars)")
@click.option("--officer", required=True, help="执法证号 / certificate number")
@click.option(
    "--clips",
    type=click.IntRange(1, 1000),
    default=3,
    show_default=True,
    help="片段数 / number of clips",
)
@click.option(
    "--seconds",
    type=click.FloatRange(0.1, 3600),
    default=10.0,
    show_default=True,
    help="每段时长 / clip length (s)",
)
@click.option("--start", help="首段开始时间 (设备时钟) / first clip start, device clock, ISO")
@click.option(
    "--important",
    type=click.IntRange(0, 1000),
    default=0,
    show_default=True,
    help="标记为重要的片段数 / clips carrying the important (IMP) marker",
)
@click.option("--size", default="640x360", show_default=True, help="画面 / frame size WxH")
@json_option
@pass_app
def sim_volume(
    app: App,
    directory: str,
    device: str,
    officer: str,
    clips: int,
    seconds: float,
    start: str | None,
    important: int,
    size: str,
    as_json: bool,
) -> None:
    """生成模拟记录仪存储卷 / Write a simulated recorder volume with real H.264/AAC clips."""
    tz = app.settings.station.timezone
    first = parse_time_option(start, tz, "--start") if start else None
    paths = make_volume(
        Path(directory),
        device=device,
        officer=officer,
        clips=clips,
        seconds=seconds,
        start=first,
        important=important,
        size=size,
        timezone=tz,
    )
    if as_json:
        print_json({"volume": directory, "files": [str(p) for p in paths]})
    else:
        for p in paths:
            click.echo(str(p))
        click.echo(f"已生成 {len(paths)} 个片段 / wrote {len(paths)} clips to {directory}")


COMMANDS: list[click.Command] = []


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
@click.option(
    "--battery",
    type=click.IntRange(0, 100),
    default=_SIM.battery_pct,
    show_default=True,
    help="电量百分比 / battery %",
)
@click.option("--faults", default="", help="故障 / faults: " + ",".join(FAULTS))
@click.option(
    "--serial", "serial_no", default=_SIM.serial, show_default=True, help="记录仪编号 / device id"
)
@click.option(
    "--officer", default=_SIM.officer_id, show_default=True, help="执法证号 / certificate number"
)
@click.option(
    "--officer-name",
    default=_SIM.officer_name,
    show_default=True,
    help="执法人员姓名 / officer name",
)
@click.option("--unit", default=_SIM.unit_id, show_default=True, help="执法单位代码 / unit id")
@click.option(
    "--unit-name", default=_SIM.unit_name, show_default=True, help="执法单位名称 / unit name"
)
@click.option("--secret-hex", default="", help="设备密钥 / device key (hex)")
@json_option
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
    from station.recorder.simulator import SimRecorder, open_pty, remove_link, serve

    chosen = frozenset(f for f in faults.split(",") if f)
    unknown = chosen - set(FAULTS)
    if unknown:
        raise click.BadParameter(f"unknown faults {sorted(unknown)}", param_hint="--faults")
    try:
        secret = bytes.fromhex(secret_hex)
    except ValueError as exc:
        raise InputError("密钥不是十六进制 / --secret-hex is not hexadecimal") from exc
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
            f"名称过长 / names too long for one ZFY-LINE frame: {exc}",
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
