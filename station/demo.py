"""``station demo``: the station's main job, for real, on an embedded default.

A fresh station home; one recorder enrolled. The dock daemon (``station run``) starts as a real
subprocess under ``umockdev-wrapper``. Two simulated recorders speak ZFY-LINE/1 on real ptys,
their storage an exFAT image on a loop device (as root; a folder otherwise). Synthetic udev
``add`` events dock them: the enrolled one (clock 12 s fast, 64 % battery) is checked, its clock
corrected, its storage mounted read-only, ingested, verified and cleared; the unenrolled one is
refused and never mounted. The result is shown: files, flags, corrected times, "safe to undock".
While it runs, the daemon serves the screens (kiosk and office pages) at ``--web``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from station.catalog import open_catalog
from station.cli_util import App, json_option, pass_app, print_json, print_table
from station.errors import FileAccessError, InputError, StationError
from station.recorder.simconfig import SimConfig
from station.sim.volume import make_volume
from station.text import signed_seconds, yes_no
from station.timeutil import parse_iso
from station.usb_dock import registry
from station.vault import Vault

ENROLLED = ("ZFY0001", "100001", "张三")
STRANGER = ("ZFY0777", "100777", "王五")
SECRET = bytes.fromhex("5a46592d4c494e452f312064656d6f206b6579202d206e6f7420666f72207573")


_QUIET: list[bool] = [False]


def _say(text: str) -> None:
    if not _QUIET[0]:
        click.echo(text)


DEMO_MARK = ".station-demo"


def _demo_root(workdir: Path) -> Path:
    """The demo's folder, emptied: only a folder an earlier demo made (it holds DEMO_MARK) is
    removed; an empty folder is used; any other existing path is refused, never deleted."""
    try:
        root = workdir.resolve()
        if root.exists() or root.is_symlink():
            if not root.is_dir():
                raise InputError("--dir 不是文件夹 / --dir is not a folder", where=str(root))
            if (root / DEMO_MARK).is_file():
                shutil.rmtree(root)
            elif any(root.iterdir()):
                raise InputError(
                    "演示目录中已有其他文件 / --dir holds files the demo did not make",
                    where=str(root),
                    hint="give a new or empty folder; the demo only clears its own folders",
                )
        root.mkdir(parents=True, exist_ok=True)
        (root / DEMO_MARK).write_text("station demo\n", encoding="utf-8")
    except OSError as exc:
        raise FileAccessError(
            f"无法使用演示目录 / cannot use the demo folder: {exc.strerror or exc}",
            where=str(workdir),
        ) from exc
    return root


@click.command("demo")
@click.option(
    "--dir",
    "workdir",
    default=".demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="演示目录 / folder for the demo's files",
)
@click.option(
    "--clips",
    type=click.IntRange(1, 50),
    default=4,
    show_default=True,
    help="录像数 / clips on the recorder",
)
@click.option(
    "--seconds",
    type=click.FloatRange(0.5, 60),
    default=3.0,
    show_default=True,
    help="每段秒数 / seconds per clip",
)
@click.option(
    "--web",
    "web_listen",
    default="127.0.0.1:8470",
    show_default=True,
    help="屏幕地址（被占用时换一个空闲端口；空则不提供）/ where the screens are served "
    "(a free port if taken; empty: none)",
)
@click.option(
    "--hold",
    type=click.FloatRange(0, 86400),
    default=0.0,
    show_default=True,
    help="结束前保持运行的秒数（查看屏幕）/ seconds to keep the daemon and its screens up at the "
    "end",
)
@json_option
@pass_app
def demo_cmd(
    app: App,
    workdir: str,
    clips: int,
    seconds: float,
    web_listen: str,
    hold: float,
    as_json: bool,
) -> None:
    """演示：守护进程与模拟记录仪 / Demo: the dock daemon with simulated recorders docked."""
    from station_testbed.dockbed import (
        DockBed,
        exfat_loop,
        files_of,
        is_root,
        read_loop,
        sim_recorder,
    )

    if not shutil.which("umockdev-wrapper"):
        raise StationError(
            "未找到 umockdev / umockdev-wrapper not found", hint="run scripts/setup.sh as root"
        )
    _QUIET[0] = as_json
    root = _demo_root(Path(workdir))
    vault = Vault(root / "home")
    vault.init()
    db = open_catalog(vault.catalog_path)
    registry.enrol(
        db,
        ENROLLED[0],
        officer_id=ENROLLED[1],
        unit_id="110101000001",
        officer_name=ENROLLED[2],
        unit_name="示例市城市管理局",
        model="DSJ-SIM1",
        actor=app.actor,
        secret=SECRET,
    )
    _say(f"1. 采集站 / station home: {vault.home}")
    _say(f"   已登记 / enrolled: {ENROLLED[0]} → {ENROLLED[2]} ({ENROLLED[1]})")
    tz = ZoneInfo("Asia/Shanghai")
    drift = 12.0
    volumes = {}
    for dev, officer, _name in (ENROLLED, STRANGER):
        n = clips if dev == ENROLLED[0] else 1
        start = dt.datetime.now(tz).replace(tzinfo=None) - dt.timedelta(hours=3)
        folder = root / f"recorder-{dev}"
        # The recorder names its files by its own clock, 12 s fast.
        make_volume(
            folder,
            device=dev,
            officer=officer,
            clips=n,
            seconds=seconds,
            important=1 if n > 1 else 0,
            size="640x360",
            start=start + dt.timedelta(seconds=drift),
        )
        volumes[dev] = folder
    with ExitStack() as stack:
        storage = {}
        for dev, folder in volumes.items():
            if is_root():
                storage[dev] = stack.enter_context(exfat_loop(root, folder, size_mb=64))
            else:
                storage[dev] = str(folder)
        sims = {
            ENROLLED[0]: stack.enter_context(
                sim_recorder(
                    SimConfig(
                        serial=ENROLLED[0],
                        officer_id=ENROLLED[1],
                        officer_name=ENROLLED[2],
                        secret=SECRET,
                        drift_s=drift,
                        battery_pct=64,
                        volume=volumes[ENROLLED[0]],
                    )
                )
            ),
            STRANGER[0]: stack.enter_context(
                sim_recorder(
                    SimConfig(
                        serial=STRANGER[0],
                        officer_id=STRANGER[1],
                        officer_name=STRANGER[2],
                        secret=b"unknown",
                        volume=volumes[STRANGER[0]],
                    )
                )
            ),
        }
        for dev, (_rec, pty) in sims.items():
            _say(
                f"2. 模拟记录仪 / simulated recorder {dev}: serial port {pty}, storage "
                f"{storage[dev]}"
            )
        web_listen = _free_listen(web_listen) if web_listen else ""
        bed = DockBed(
            vault.home, root, transcode=True, web_listen=web_listen, low_space_percent=None
        )
        stack.callback(bed.close)
        bed.start()
        bed.notifications("READY=1")
        _say(
            f"3. 守护进程已就绪 / daemon ready (station run, pid {bed.status().get('pid')}, "
            "under umockdev-wrapper; sd_notify READY=1 received)"
        )
        if web_listen:
            _say(
                f"   屏幕 / kiosk: http://{web_listen}/  办公 / office: http://{web_listen}/office/"
                "  (演示运行期间可用 / up while the demo runs)"
            )
        for port, dev in enumerate(sims, start=1):
            bed.dock(port, sims[dev][1], storage[dev], usb_serial=dev)
            _say(f"4. 接入 / docked {dev} in slot 1-{port} (udev add: usb, ttyACM{port}, storage)")
        last: dict[str, str] = {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            st = bed.status()
            slots: list[dict[str, Any]] = list(st.get("slots", []))  # type: ignore[call-overload]
            for s in slots:
                if last.get(s["slot"]) != s.get("phase"):
                    last[s["slot"]] = s.get("phase", "")
                    _say(f"   [{s['slot']}] {s.get('device_id') or '—'}: {s.get('phase_text')}")
            if len(slots) == 2 and all(s.get("safe_to_undock") for s in slots):
                break
            time.sleep(0.2)
        else:
            raise StationError(
                "the demo's sessions did not finish in 120 s",
                where=str(bed.log),
                hint="see the daemon log",
            )
        final = bed.status()
        if not as_json:
            _show(db, final, tz)
        _wait_derivatives(db, timeout=120)
        if hold and web_listen:
            _say(f"   屏幕保持 {hold:g} 秒 / the kiosk stays up {hold:g} s: http://{web_listen}/")
            time.sleep(hold)
        for port in (1, 2):
            bed.undock(f"/sys/devices/usb1/1-{port}")
        for dev, src in storage.items():
            left = read_loop(src, root) if is_root() else files_of(Path(src))
            n = len(left)
            _say(f"   记录仪 / recorder {dev}: 剩余 {n} 个文件 / {n} file(s) left on the recorder")
        left_on = {
            dev: sorted(read_loop(src, root) if is_root() else files_of(Path(src)))
            for dev, src in storage.items()
        }
        rc = bed.stop_daemon()
        _say(f"8. 拔出，守护进程停止 / undocked; daemon stopped (exit {rc})")
        _verify(vault, db)
    if as_json:
        print_json(
            {
                "home": str(vault.home),
                "kiosk": f"http://{web_listen}/" if web_listen else None,
                "slots": final.get("slots", []),
                "daemon_exit": rc,
                "recordings": [dict(r) for r in db.query("select * from recordings")],
                "alerts": registry.list_alerts(db),
                "left_on_recorders": left_on,
            }
        )
    db.close()
    _say(f"   日志 / daemon log: {root / 'daemon.log'}")
    _say(f"   查看 / look around: station --home {vault.home} recordings list | devices alerts")
    os.sync()


def _free_listen(listen: str) -> str:
    """``listen`` if its port is free here, else the same host on a free port."""
    import socket

    from station.web.server import parse_listen

    host, port = parse_listen(listen)
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            s.bind((host, 0))
        return f"{host}:{s.getsockname()[1]}"


def _show(db: Any, status: dict[str, Any], tz: ZoneInfo) -> None:
    _say("5. 插槽状态 / slots (station status):")
    print_table(
        [
            "插槽 / slot",
            "设备 / device",
            "阶段 / phase",
            "文件 / files",
            "电量 / battery",
            "时钟偏差 / drift",
            "已清除 / cleared",
            "可拔出 / safe",
        ],
        [
            [
                s["slot"],
                s.get("device_id"),
                s.get("phase"),
                f"{s.get('files_done', 0)}/{s.get('files_total', 0)}",
                f"{s.get('battery_pct')}%",
                signed_seconds(s.get("drift_s"), "?"),
                s.get("cleared", 0),
                yes_no(s.get("safe_to_undock")),
            ]
            for s in status.get("slots", [])
        ],
    )
    _say("6. 标记 / flags:")
    for s in status.get("slots", []):
        for f in s.get("flags", []):
            _say(f"   [{s['slot']}] {f['code']}: {f['message']}")
    _say("7. 已入库录像（设备时间 → 校正后北京时间）/ stored recordings (device time → corrected):")
    rows = db.query(
        "select sha256, device_id, officer_id, recorded_at_device, recorded_at, drift_s,"
        " important, original_name from recordings order by recorded_at"
    )
    print_table(
        [
            "SHA-256",
            "设备 / device",
            "执法证号 / certificate no.",
            "设备时间 / device clock",
            "校正 / corrected",
            "偏差 / drift",
            "IMP",
            "文件 / file",
        ],
        [
            [
                r["sha256"][:12],
                r["device_id"],
                r["officer_id"],
                (r["recorded_at_device"] or "")[:19].replace("T", " "),
                parse_iso(r["recorded_at"]).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
                if r["recorded_at"]
                else "?",
                signed_seconds(r["drift_s"]),
                "★" if r["important"] else "",
                r["original_name"],
            ]
            for r in rows
        ],
    )
    alerts = registry.list_alerts(db)
    for a in alerts:
        _say(f"   告警 / alert #{a['id']} {a['code']}: {a['message']}")


COMMANDS = [demo_cmd]


def _wait_derivatives(db: Any, timeout: float) -> None:
    """Let the daemon's transcode workers make the archival copies (R7: new linked files with
    their own hash), then show them."""
    deadline = time.monotonic() + timeout
    query = (
        "select count(*) from recordings r where r.state = 'stored' and not exists"
        " (select 1 from derivatives d where d.original_sha256 = r.sha256"
        " and d.state in ('done', 'failed'))"
    )
    while db.execute(query).fetchone()[0] and time.monotonic() < deadline:
        time.sleep(0.5)
    rows = list(
        db.query(
            "select d.original_sha256, d.profile, d.state, d.sha256, d.size, d.partial,"
            " json_extract(d.verification, '$.method') as method from derivatives d"
            " order by d.id"
        )
    )
    _say(f"7b. 归档副本 / archival derivatives ({len(rows)}):")
    for r in rows:
        what = r["method"] or r["state"]
        digest = (r["sha256"] or "")[:12]
        _say(f"   {r['original_sha256'][:12]} → {r['profile']} {r['state']} {digest} ({what})")


def _verify(vault: Vault, db: Any) -> None:
    """What a supervisor runs next: every original and derivative re-hashed, the audit chain
    and its signed checkpoint checked (R7)."""
    from station.audit.checkpoint import make_checkpoint
    from station.verify.run import run_verify

    settings = vault.settings()
    cp = make_checkpoint(vault, db, settings)
    report = run_verify(vault, db, settings)
    verdict = "无异常 / nothing found" if report.ok else f"发现 / findings: {report.counts()}"
    _say(
        f"9. 校验 / station verify: {report.files_checked} 个文件 files re-hashed, "
        f"审计链 audit chain of {cp.size} entries signed and checked — {verdict}"
    )
