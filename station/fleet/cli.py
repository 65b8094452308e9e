"""``station fleet status|sync|fetch`` (R19): the unit's central store and catalog."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from station.access.guard import SUPERVISOR, guard
from station.cli_groups import report
from station.cli_util import (
    App,
    human_bytes,
    json_option,
    pass_app,
    print_json,
    print_table,
)
from station.errors import FleetError
from station.reports.cli import emit, output_options


@click.group("fleet")
def fleet_group() -> None:
    """中心存储与中心目录 / Central store (S3 Object Lock) and central catalog (PostgreSQL), R19."""


def _lag_text(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} 秒 / s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} 分钟 / min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} 小时 / h"
    return f"{seconds / 86400:.1f} 天 / days"


@fleet_group.command("status")
@json_option
@pass_app
def status_cmd(app: App, as_json: bool) -> None:
    """中心副本进度 / How far behind the central copy is (objects, outbox, errors)."""
    from station.fleet.status import fleet_status

    st = fleet_status(app.db)
    cfg = app.settings.fleet
    st["configured"] = {
        "s3_endpoint": cfg.s3_endpoint or None,
        "bucket": cfg.bucket or None,
        "postgres": bool(cfg.postgres_dsn),
        "free_local_after_days": cfg.free_local_after_days,
        "bandwidth_mbps": cfg.bandwidth_mbps,
    }
    if as_json:
        print_json(st)
        return
    if not (cfg.s3_endpoint or cfg.postgres_dsn):
        click.echo("未配置中心存储 / no central store configured ([fleet] in station.toml)")
    click.echo(
        f"中心存储 / store: {cfg.s3_endpoint or '—'} bucket {cfg.bucket or '—'}; "
        f"中心数据库 / database: {'已配置 / configured' if cfg.postgres_dsn else '—'}"
    )
    print_table(
        ["状态 / state", "对象 / objects", "大小 / bytes"],
        [(k, v["objects"], human_bytes(v["bytes"])) for k, v in st["objects"].items()],
    )
    click.echo(
        f"待传 / queued {st['queued']} ({human_bytes(st['queued_bytes'])}), "
        f"落后 / lag {_lag_text(st['lag_s'])}, 出错重试 / failing {st['failing']}, "
        f"已释放本地 / freed locally {st['freed_local']}"
    )
    click.echo(
        f"目录待推送 / catalog changes to push {st['outbox']}; 审计 / audit "
        f"{st['central_audit_seq']}/{st['audit_seq']}"
    )
    click.echo(
        f"上次同步 / last sync {st['last_sync_at'] or '—'}, 上次成功 / last ok "
        f"{st['last_ok_at'] or '—'}"
    )
    if st["last_error"]:
        click.echo(f"最近错误 / last error: {st['last_error']}")
    for a in st["alerts"]:
        click.echo(f"告警 / alert #{a['id']} {a['code']}: {a['message']}")


@fleet_group.command("sync")
@json_option
@pass_app
def sync_cmd(app: App, as_json: bool) -> None:
    """立即同步一次 / One replication pass now (the daemon runs the same as a service)."""
    from station.fleet.sync import Fleet

    guard(app, *SUPERVISOR)  # a pass writes audit entries and may free local copies
    report = Fleet(app.vault, app.settings, actor=app.actor).sync(force=True)
    if as_json:
        print_json(report.as_dict())
    else:
        click.echo(
            f"上传 / uploaded {report.uploaded} ({human_bytes(report.bytes_uploaded)}), "
            f"已有 / adopted {report.adopted}, 锁更新 / locks updated {report.locks_updated}, "
            f"中心删除 / central copies removed {report.central_deleted} "
            f"(等待保存期 / waiting {report.central_waiting}), 本地释放 / freed {report.freed}, "
            f"目录行 / catalog rows pushed {report.central_rows}"
        )
        for e in report.errors:
            click.echo(f"错误 / error [{e['code']}]: {e['message']}", err=True)
    if report.errors:
        sys.exit(FleetError.exit_code)


@fleet_group.command("fetch")
@click.argument("sha256")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="写到此文件（否则放回保管库）/ write here (default: back into the vault)",
)
@json_option
@pass_app
def fetch_cmd(app: App, sha256: str, out: str | None, as_json: bool) -> None:
    """从中心存储取回并校验 / Bring a copy back from the central store, verified by SHA-256."""
    from station.cases.model import check_sha
    from station.fleet.fetch import fetch

    guard(app, *SUPERVISOR)
    sha = check_sha(sha256)
    got = fetch(
        app.vault,
        app.db,
        app.settings,
        sha,
        out=Path(out).expanduser().resolve() if out else None,
        actor=app.actor,
    )
    if as_json:
        print_json(got.__dict__)
        return
    where = "放回保管库 / restored to the vault" if got.restored else "已写出 / written"
    click.echo(f"{where}: {got.path} ({human_bytes(got.size)}), SHA-256 校验通过 / verified")


@report.command("central")
@click.option("--from", "since", help="采集时间起（默认30天前）/ ingested from (default 30 d ago)")
@click.option("--limit", type=int, default=200, show_default=True, help="迟交明细行数 / rows")
@output_options
@pass_app
def report_central_cmd(
    app: App,
    since: str | None,
    limit: int,
    fmt: str,
    section: str | None,
    output: str | None,
    now_text: str | None,
    as_json: bool,
) -> None:
    """全单位汇总（中心数据库）/ Every station of the unit from the central database: footage,
    late ingests (R1), retention, central copies (R17, R19)."""
    import datetime as dt

    from station.cases.cli import parse_time
    from station.fleet.report import build_central
    from station.timeutil import utcnow

    dsn = app.settings.fleet.postgres_dsn
    if not dsn:
        raise FleetError(
            "没有配置中心数据库 / no central database configured",
            where=str(app.vault.settings_path),
            hint="set [fleet] postgres_dsn",
        )
    now = parse_time(now_text, app, "--now") or utcnow()
    start = parse_time(since, app, "--from") or now - dt.timedelta(days=30)
    rep = build_central(dsn, app.settings, now=now, since=start, limit=limit)
    emit(rep, fmt, as_json, section, output)


COMMANDS = [fleet_group]
