"""``station demo``: the station's main job on an embedded default.

A simulated recorder volume with generated footage is ingested into a fresh station home, and
the result is shown. (The dock daemon replaces the direct ingest with a real running daemon and a
docked simulated recorder.)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from station.catalog import open_catalog
from station.cli_util import App, handle_errors, pass_app, print_table
from station.ingest import IngestContext, ingest_volume
from station.sim.volume import make_volume
from station.vault import Vault


@click.command("demo")
@click.option(
    "--dir",
    "workdir",
    default=".demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="演示目录 / folder for the demo's files",
)
@click.option("--clips", default=4, show_default=True)
@click.option("--seconds", default=5.0, show_default=True)
@pass_app
@handle_errors
def demo_cmd(app: App, workdir: str, clips: int, seconds: float) -> None:
    """演示：模拟记录仪接入并采集 / Demo: a simulated recorder's footage ingested end to end."""
    root = Path(workdir).resolve()
    if root.exists():
        shutil.rmtree(root)
    vault = Vault(root / "home")
    vault.init()
    volume = root / "recorder"
    click.echo(f"1. 生成模拟记录仪存储 / simulated recorder volume: {volume}")
    make_volume(
        volume,
        device="DSJ0001",
        officer="100001",
        clips=clips,
        seconds=seconds,
        important=1,
        size="1280x720",
    )
    db = open_catalog(vault.catalog_path)
    click.echo(f"2. 采集到 / ingesting into {vault.home}")
    report = ingest_volume(
        vault,
        db,
        vault.settings(),
        volume,
        IngestContext(kind="cli", method="demo"),
        actor=app.actor,
    )
    s = report.summary()
    click.echo(
        f"   新增 new {s['new']}, 已有 held {s['held']}, 失败 failed {s['failed']}, "
        f"{s['bytes'] / 1e6:.1f} MB, {s['mb_per_s']} MB/s"
    )
    rows = db.query(
        "select sha256, device_id, officer_id, recorded_at, important, size,"
        " original_name from recordings order by recorded_at"
    )
    print_table(
        ["SHA-256", "设备 device", "警号 officer", "录制 recorded (UTC)", "IMP", "文件 file"],
        [
            [
                r["sha256"][:16],
                r["device_id"],
                r["officer_id"],
                r["recorded_at"][:19],
                "★" if r["important"] else "",
                r["original_name"],
            ]
            for r in rows
        ],
    )
    click.echo(f"3. 可安全拔出 / safe to undock: {len(report.verified_sources())} files verified")
    db.close()


COMMANDS = [demo_cmd]
