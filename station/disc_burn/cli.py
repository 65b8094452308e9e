"""``station disc plan|build|verify|burn|mark-burned|list|show|drives`` and ``station report
discs`` (R11–R13, R17)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

import click

from station.access.guard import CLERK, guard
from station.cli_groups import report
from station.cli_util import (
    App,
    human_bytes,
    json_option,
    pass_app,
    print_json,
    print_table,
    resolve_path,
)
from station.disc_burn import jobs, records, reverify
from station.disc_burn.burn import drive_json, find_drives
from station.disc_burn.media import MEDIA
from station.disc_burn.progress import DiscProgress, ProgressFn, StatusFile, fan_out
from station.errors import IntegrityError, StationError
from station.reports.cli import emit, output_options
from station.text import NO, YES, bi, yes_no

PHASES = {
    "build": "写入映像 / writing",
    "hash": "映像哈希 / hashing",
    "verify-xorriso": "xorriso 回读 / reading",
    "verify-7zip": "7-Zip 回读 / reading",
    "burn": "刻录 / burning",
    "readback": "光盘回读 / reading disc",
}


class TerminalProgress:
    """One click progress bar per image and phase, on stderr, only on a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.key: tuple[str, int, str] | None = None
        self.bar: Any = None
        self.shown = 0
        self.parts: dict[tuple[str, str], tuple[int, int]] = {}

    def __call__(self, p: DiscProgress) -> None:
        if not self.enabled:
            return
        key = (p.phase, p.disc_no, p.copy)
        done, total = p.done, p.total
        if p.phase.startswith("verify-"):  # the readers report side by side: one bar for all
            key = ("verify", p.disc_no, "")
            if key != self.key:
                self.parts = {}
            self.parts[(p.phase, p.copy)] = (p.done, p.total)
            done = sum(d for d, _ in self.parts.values())
            total = sum(t for _, t in self.parts.values())
        if key != self.key:
            self.close()
            what = PHASES.get(p.phase, p.phase) if key[2] else "回读校验 / reading back"
            label = f"{what} {p.disc_no}{key[2]}"
            self.bar = click.progressbar(length=max(total, 1), label=label, file=sys.stderr)
            self.bar.__enter__()
            self.key, self.shown = key, 0
        self.bar.length = max(total, 1)
        step = min(done, total) - self.shown
        if step > 0:
            self.bar.update(step)
            self.shown += step

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@contextlib.contextmanager
def _progress(app: App, as_json: bool) -> Iterator[ProgressFn]:
    """Progress to the terminal (a bar, not with --json) and to ``run/disc-status.json``."""
    bar = TerminalProgress(not as_json)
    status = StatusFile(app.vault.run / "disc-status.json")
    try:
        yield fan_out(bar, status)
    except BaseException as exc:
        bar.close()
        message = exc.render() if isinstance(exc, StationError) else type(exc).__name__
        with contextlib.suppress(OSError):
            status.finish("failed", error=message)
        raise
    bar.close()
    with contextlib.suppress(OSError):
        status.finish("done")


media_option = click.option(
    "--media",
    type=click.Choice(sorted(MEDIA)),
    default=None,
    help="光盘类型 / media (default: setting disc.media)",
)
long_term_option = click.option(
    "--not-long-term",
    is_flag=True,
    help="允许未标记长期保存的案件 / allow cases without an R11 long-term mark",
)


@click.group("disc")
def disc() -> None:
    """档案光盘（一式两份）/ Archive discs in two copies for long-term cases (R11–R13)."""


@disc.command("plan")
@click.argument("cases", nargs=-1, required=True)
@media_option
@long_term_option
@json_option
@pass_app
def plan_cmd(
    app: App, cases: tuple[str, ...], media: str | None, not_long_term: bool, as_json: bool
) -> None:
    """规划光盘 / Show which recordings go onto which disc, without writing anything."""
    _, plan, m = jobs.make_plan(
        app.vault,
        app.db,
        list(cases),
        media or app.settings.disc.media,
        require_long_term=not not_long_term,
    )
    if as_json:
        print_json(
            {
                **plan.to_json(),
                "media_label": m.label,
                "capacity": m.capacity,
                "discs_total": len(plan.discs),
                "bytes_total": plan.bytes_total,
            }
        )
        return
    click.echo(f"{m.label}: {len(plan.discs)} 张光盘 / discs, ×2 份 / copies (R12)")
    for line in _plan_notes(app, list(cases), plan):
        click.echo(line)
    print_table(
        ["光盘 / disc", "案件 / cases", "文件 / files", "大小 / size"],
        [
            (
                f"{d.disc_no}/{len(plan.discs)}",
                ", ".join(d.cases),
                len(d.files),
                human_bytes(d.payload_bytes),
            )
            for d in plan.discs
        ],
    )


@disc.command("build")
@click.argument("cases", nargs=-1, required=True)
@media_option
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    help="输出目录 / folder for images and labels (default: <home>/discs/job-N)",
)
@click.option(
    "--no-verify",
    is_flag=True,
    help="不回读校验 / skip the read-back (the images are then not ready)",
)
@click.option(
    "--producer",
    help="制作人姓名（R12，默认 disc.producer）/ the producer's name (R12; default disc.producer)",
)
@long_term_option
@json_option
@pass_app
def build_cmd(
    app: App,
    cases: tuple[str, ...],
    media: str | None,
    out: str | None,
    no_verify: bool,
    producer: str | None,
    not_long_term: bool,
    as_json: bool,
) -> None:
    """制作光盘映像 A、B 并校验 / Build copies A and B of every disc, read back, write labels."""
    guard(app, *CLERK)
    with _progress(app, as_json) as progress:
        job_id, outcomes = jobs.build_job(
            app.vault,
            app.db,
            app.settings,
            list(cases),
            media_key=media or app.settings.disc.media,
            out_dir=resolve_path(out) if out else None,
            actor=app.actor,
            verify=not no_verify,
            require_long_term=not not_long_term,
            progress=progress,
            producer=producer,
        )
    if as_json:
        print_json({"job_id": job_id, "images": [_outcome(o) for o in outcomes]})
        return
    click.echo(f"任务 / job {job_id}:")
    print_table(
        ["光盘 / disc", "份 / copy", "卷标 / volume", "校验 / verified", "映像 / image"],
        [(o.disc_no, o.copy, o.volume_id, yes_no(o.verified), str(o.image)) for o in outcomes],
    )
    click.echo("标签 / labels: " + ", ".join(str(o.label_pdf) for o in outcomes))


def _outcome(o: jobs.DiscOutcome) -> dict[str, Any]:
    return {
        "disc_no": o.disc_no,
        "copy": o.copy,
        "volume_id": o.volume_id,
        "image": str(o.image),
        "image_sha256": o.image_sha256,
        "image_size": o.image_size,
        "verified": o.verified,
        "label_html": str(o.label_html),
        "label_pdf": str(o.label_pdf),
    }


@disc.command("verify")
@click.argument("job", type=int)
@click.option("--copy", type=click.Choice(["A", "B"]), help="只校验一份 / only this copy")
@json_option
@pass_app
def verify_cmd(app: App, job: int, copy: str | None, as_json: bool) -> None:
    """回读校验映像 / Read the images back through xorriso and 7-Zip against the manifest."""
    guard(app, *CLERK)
    with _progress(app, as_json) as progress:
        results = reverify.verify_job(app.db, job, actor=app.actor, copy=copy, progress=progress)
    bad = [r for _, r in results if not r.ok]
    if as_json:
        print_json(
            [
                {
                    "disc_no": row["disc_no"],
                    "copy": row["copy"],
                    "state": row["state"],
                    **res.to_json(),
                }
                for row, res in results
            ]
        )
    else:
        for row, res in results:
            mark = "通过 / OK" if res.ok else "失败 / FAILED"
            click.echo(f"{row['volume_id']}: {mark}  sha256 {res.image_sha256}")
            for p in res.problems():
                click.echo(f"  {p}")
    if bad:
        sys.exit(IntegrityError.exit_code)


@disc.command("burn")
@click.argument("job", type=int)
@click.option("--copy", type=click.Choice(["A", "B"]), required=True)
@click.option("--device", help="光驱 / drive, e.g. /dev/sr0 (default: the one udev finds)")
@click.option("--disc", "disc_no", type=int, help="只刻第 i 张 / only disc i")
@click.option("--location", help="存放位置 / where the disc will be kept")
@json_option
@pass_app
def burn_cmd(
    app: App,
    job: int,
    copy: str,
    device: str | None,
    disc_no: int | None,
    location: str | None,
    as_json: bool,
) -> None:
    """刻录并回读 / Burn a copy with xorrecord and read the disc back against the image hash."""
    guard(app, *CLERK)
    with _progress(app, as_json) as progress:
        rows = records.burn(
            app.db,
            job,
            copy,
            actor=app.actor,
            device=device,
            disc_no=disc_no,
            location=location,
            progress=progress,
        )
    _print_discs(rows, as_json)


@disc.command("mark-burned")
@click.argument("job", type=int)
@click.option("--copy", type=click.Choice(["A", "B"]), required=True)
@click.option("--by", "by", required=True, help="刻录人 / who burned it")
@click.option("--location", required=True, help="存放位置 / where it is kept (shelf)")
@click.option("--disc", "disc_no", type=int, help="只登记第 i 张 / only disc i")
@json_option
@pass_app
def mark_burned_cmd(
    app: App, job: int, copy: str, by: str, location: str, disc_no: int | None, as_json: bool
) -> None:
    """登记在别处刻录的光盘 / Record a burn done elsewhere and where the disc is kept."""
    guard(app, *CLERK)
    rows = records.mark_burned(
        app.db, job, copy, by=by, location=location, actor=app.actor, disc_no=disc_no
    )
    _print_discs(rows, as_json)


_DISC_KEYS = (
    "job_id",
    "disc_no",
    "copy",
    "volume_id",
    "media",
    "state",
    "image_path",
    "image_size",
    "image_sha256",
    "label_html",
    "label_pdf",
    "built_by",
    "built_at",
    "verified_by",
    "verified_at",
    "burned_by",
    "burned_at",
    "burn_device",
    "burn_readback",
    "location",
    "error",
)


def _print_discs(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json([{k: r.get(k) for k in _DISC_KEYS} for r in rows])
        return
    print_table(
        ["光盘 / disc", "份 / copy", "卷标 / volume", "状态 / state", "存放 / location", "SHA-256"],
        [
            (
                r["disc_no"],
                r["copy"],
                r["volume_id"],
                r["state"],
                r.get("location"),
                r.get("image_sha256"),
            )
            for r in rows
        ],
    )


@disc.command("list")
@json_option
@pass_app
def list_cmd(app: App, as_json: bool) -> None:
    """列出刻录任务 / List disc jobs."""
    rows = list(
        app.db.query(
            "select j.id, j.media, j.state, j.discs_total, j.bytes_total, j.created_at,"
            " j.created_by, j.out_dir, (select group_concat(case_number, ', ') from disc_job_cases"
            " where job_id = j.id) as cases from disc_jobs j order by j.id"
        )
    )
    if as_json:
        print_json(rows)
        return
    print_table(
        [
            "任务 / job",
            "案件 / cases",
            "介质 / media",
            "光盘 / discs",
            "大小 / size",
            "状态 / state",
            "时间",
        ],
        [
            (
                r["id"],
                r["cases"],
                r["media"],
                r["discs_total"],
                human_bytes(r["bytes_total"]),
                r["state"],
                r["created_at"],
            )
            for r in rows
        ],
    )


@disc.command("show")
@click.argument("job", type=int)
@json_option
@pass_app
def show_cmd(app: App, job: int, as_json: bool) -> None:
    """查看刻录任务 / Show a disc job: every disc and copy, its image, hash, burn and location."""
    rows = reverify.disc_rows(app.db, job)
    info = dict(next(iter(app.db.query("select * from disc_jobs where id = ?", [job]))))
    info.pop("plan", None)
    info["cases"] = reverify.job_cases(app.db, job)
    if as_json:
        print_json(
            {
                **info,
                "discs": [
                    {k: r.get(k) for k in _DISC_KEYS}
                    | {
                        "verify_result": json.loads(r["verify_result"])
                        if r["verify_result"]
                        else None
                    }
                    for r in rows
                ],
            }
        )
        return
    click.echo(f"任务 / job {job}: {', '.join(info['cases'])}  {info['media']}  {info['state']}")
    click.echo(f"目录 / folder: {info['out_dir']}")
    if info.get("error"):
        click.echo(f"错误 / error: {info['error']}")
    _print_discs(rows, False)


@disc.command("drives")
@json_option
def drives_cmd(as_json: bool) -> None:
    """列出光驱 / List optical drives found through udev."""
    found = find_drives()
    if as_json:
        print_json([drive_json(d) for d in found])
        return
    if not found:
        click.echo("未找到刻录光驱 / no drive found")
        return
    print_table(
        ["设备 / device", "型号 / model", "光盘 / media", "可写 / writes"],
        [(d.devnode, d.model, d.media, " ".join(d.writes)) for d in found],
    )


@report.command("discs")
@click.option("--all", "show_all", is_flag=True, help="也列出已完成的案件 / include complete cases")
@output_options
@pass_app
def report_discs(
    app: App,
    show_all: bool,
    fmt: str,
    section: str | None,
    output: str | None,
    now_text: str | None,
    as_json: bool,
) -> None:
    """长期保存案件的光盘状态 / Long-term cases whose two disc copies are not both done."""
    rows = records.case_disc_status(app.db, only_incomplete=not show_all)
    if as_json or fmt == "json":
        print_json(rows)
        return
    yes = {True: YES, False: NO}
    if fmt != "table":
        emit(_discs_report(rows, yes), fmt, False, section, output, app.settings.station.timezone)
        return
    print_table(
        ["案件 / case", "名称 / name", "任务 / job", "A 校验", "B 校验", "A 刻录", "B 刻录"],
        [
            (
                r["case"],
                r["name"],
                r["job_id"],
                yes[r["verified_A"]],
                yes[r["verified_B"]],
                yes[r["burned_A"]],
                yes[r["burned_B"]],
            )
            for r in rows
        ],
    )


def _plan_notes(app: App, cases: list[str], plan: Any) -> list[str]:
    """What a clerk should know before building: jobs these cases already have, and originals
    whose archival derivative is not done yet (the disc would carry the original only)."""
    marks = ",".join("?" * len(cases))
    notes = [
        f"注意 / note: 案件 {r[0]} 已有光盘任务 / already has disc job {r[1]} ({r[2]})"
        " — `station disc show`"
        for r in app.db.execute(
            "select jc.case_number, j.id, j.state from disc_jobs j join disc_job_cases jc"
            f" on jc.job_id = j.id where jc.case_number in ({marks}) and j.state != 'failed'"
            " order by j.id",
            cases,
        ).fetchall()
    ]
    files = [f for d in plan.discs for _, f in d.files]
    originals = {f.recording_sha256 for f in files if f.role == "original"}
    with_derivative = {f.recording_sha256 for f in files if f.role != "original"}
    missing = sorted(originals - with_derivative)
    if missing:
        shown = ", ".join(sha[:16] for sha in missing[:5]) + (" …" if len(missing) > 5 else "")
        notes.append(
            f"警告 / warning: {len(missing)} 段录像尚无存档转码，光盘将只含原始录像 / recordings"
            f" without an archival derivative yet (disc would hold the original only): {shown}"
            " — `station transcode run-once` first"
        )
    return notes


def _discs_report(rows: list[dict[str, Any]], yes: dict[bool, str]) -> Any:
    from station.reports.model import Report, Section
    from station.timeutil import to_iso, utcnow

    cols = [("case", "案件编号 / case"), ("name", "名称 / name"), ("job_id", "任务 / job")]
    for key, zh, en in (("verified", "校验", "verified"), ("burned", "刻录", "burned")):
        for copy, mark in (("A", "甲"), ("B", "乙")):
            cols.append((f"{key}_{copy}", bi(f"{mark}{zh}", f"{copy} {en}")))
    shown = [{k: yes[v] if isinstance(v, bool) else v for k, v in r.items()} for r in rows]
    return Report(
        kind="discs",
        title="长期保存案件光盘状态 / Disc status of long-term cases (R12)",
        generated_at=to_iso(utcnow()),
        params={},
        summary=[("案件 / cases", len(rows))],
        sections=[Section(key="discs", title="光盘 / discs", columns=cols, rows=shown)],
    )


COMMANDS = [disc]
