"""``station sim volume``."""

from __future__ import annotations

from pathlib import Path

import click

from station.cli_groups import sim
from station.cli_util import (
    App,
    handle_errors,
    json_option,
    parse_time_option,
    pass_app,
    print_json,
)
from station.sim.volume import make_volume


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
@handle_errors
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
