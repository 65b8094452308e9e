"""``station verify`` and ``station checkpoint …`` (R7)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from station.access.guard import ADMIN, CLERK, SERVICE, guard
from station.audit import checkpoint, keys, rotation
from station.cli_util import App, json_option, pass_app, print_json, print_table
from station.errors import FileAccessError, InputError, IntegrityError
from station.verify.run import VerifyProgress, record_verify, run_verify


def _progress(p: VerifyProgress) -> None:
    if p.phase == "files" and p.files_total:
        click.echo(f"\r  {p.files_done}/{p.files_total} files", nl=False, err=True)
    elif p.phase == "done":
        click.echo("", err=True)


@click.command("verify")
@click.option(
    "--full",
    "mode",
    flag_value="full",
    default=True,
    help="重新校验全部文件 / re-hash every file (default)",
)
@click.option(
    "--quick",
    "mode",
    flag_value="quick",
    help="快速：审计链、目录与文件存在及大小，不重算哈希 / catalog, audit chain, each file's "
    "presence and size; no re-hashing (after an upgrade)",
)
@click.option(
    "--sample", type=click.IntRange(min=1), help="随机抽查 N 个文件 / re-hash N random files"
)
@click.option("--seed", type=int, help="抽查的随机种子 / seed of the sample (to repeat it)")
@click.option("--progress", is_flag=True, help="显示进度 / show progress on stderr")
@json_option
@pass_app
def verify_cmd(
    app: App, mode: str, sample: int | None, seed: int | None, progress: bool, as_json: bool
) -> None:
    """校验存储、目录与审计日志 / Verify the vault, the catalog and the audit log (R7).

    重新计算原始录像与转码副本的哈希，检查审计链、目录记录，以及与每个已签名检查点的一致性。
    Re-hashes originals and derivatives against the catalog, checks the audit chain, the catalog
    rows against their audit entries, and the log against every signed checkpoint. Exit code 9
    when anything was found.
    """
    report = run_verify(
        app.vault,
        app.db,
        app.settings,
        sample=sample,
        seed=seed,
        quick=mode == "quick",
        progress=_progress if progress else None,
    )
    # verify changes nothing but its own audit entry; the name there is only as proven as it is
    record_verify(app.db, report, actor=app.actor if app.proven else f"unproven:{app.actor}")
    if as_json:
        print_json(report.to_dict())
    else:
        click.echo(
            f"审计记录 / audit entries: {report.audit_entries}   检查点 / checkpoints: "
            f"{report.checkpoints}   文件 / files: {report.files_checked}/{report.files_total}"
        )
        if report.findings:
            print_table(
                [
                    "级别 / severity",
                    "问题 / code",
                    "对象 / subject",
                    "位置 / where",
                    "说明 / detail",
                ],
                [
                    (f.severity, f.code, f.subject[:16], f.where, f.detail[:70])
                    for f in report.findings
                ],
            )
            for code in sorted(report.counts()):
                f = next(x for x in report.findings if x.code == code)
                click.echo(f"\n{code} ×{report.counts()[code]}\n  {f.meaning_zh}\n  {f.meaning_en}")
        else:
            click.echo("未发现问题 / no findings: everything matches.")
    if not report.ok:
        sys.exit(IntegrityError.exit_code)


@click.group("checkpoint")
def checkpoint_group() -> None:
    """审计检查点 / Signed checkpoints of the audit log (R7)."""


@checkpoint_group.command("make")
@json_option
@pass_app
def cp_make(app: App, as_json: bool) -> None:
    """立即签发检查点 / Sign a checkpoint of the audit log now."""
    guard(app, *CLERK, SERVICE)
    cp = checkpoint.make_checkpoint(app.vault, app.db, app.settings)
    if as_json:
        print_json(
            {"size": cp.size, "root_hash": cp.root_hash, "made_at": cp.made_at, "note": cp.text}
        )
    else:
        click.echo(cp.text, nl=False)


@checkpoint_group.command("rotate-key")
@click.option(
    "--old-key-lost",
    is_flag=True,
    help="旧密钥已丢失（无法由旧密钥签署）/ the old key is gone: replace it without its signature",
)
@click.option("--note", help="原因 / why (required with --old-key-lost)")
@json_option
@pass_app
def cp_rotate(app: App, old_key_lost: bool, note: str | None, as_json: bool) -> None:
    """更换签名密钥 / Replace the audit signing key in the open (admin).

    旧密钥签署新公钥并签发最后一个检查点，记录在审计日志中。The old key signs a statement
    naming the new one and one last checkpoint; the change is an audit entry, and verify checks
    every checkpoint against the key current for it."""
    guard(app, *ADMIN)
    old, new, last = rotation.rotate(
        app.vault, app.settings, app.db, actor=app.actor, old_key_lost=old_key_lost, reason=note
    )
    out = {"old_vkey": old, "new_vkey": new, "last_old_checkpoint": last.size if last else None}
    if as_json:
        print_json(out)
    else:
        click.echo(f"旧公钥 / old verifier key: {old or '—'}")
        click.echo(f"新公钥 / new verifier key: {new}")


@checkpoint_group.command("list")
@json_option
@pass_app
def cp_list(app: App, as_json: bool) -> None:
    """列出检查点 / List the stored checkpoints."""
    rows = [
        dict(r)
        for r in app.db.query(
            "select id, size, root_hash, made_at, key_id from audit_checkpoints order by id"
        )
    ]
    if as_json:
        print_json(rows)
    else:
        print_table(
            ["#", "条数 / size", "根哈希 / root", "时间 made (UTC)", "密钥 / key"],
            [(r["id"], r["size"], r["root_hash"][:16], r["made_at"], r["key_id"]) for r in rows],
        )


@checkpoint_group.command("show")
@json_option
@pass_app
def cp_show(app: App, as_json: bool) -> None:
    """显示最新检查点与验证公钥 / Print the newest checkpoint and the station's verifier key."""
    text = checkpoint.latest_checkpoint_text(app.vault, app.db)
    from station.audit.note import fingerprint, public_bytes, verifier_key

    try:
        v = checkpoint.station_verifier(app.vault, app.settings)
        vkey: str | None = verifier_key(v.name, v.key)
        # the fingerprint printed on disc labels and handover lists, for the station to publish
        fp: str | None = fingerprint(public_bytes(v.key))
    except keys.SigningKeyError:
        vkey = fp = None
    if as_json:
        print_json({"note": text, "vkey": vkey, "fingerprint": fp})
    else:
        click.echo(text or "尚无检查点 / no checkpoint yet\n", nl=False)
        click.echo(f"\n验证公钥 / verifier key: {vkey or '— (尚无 / none yet)'}")
        if fp:
            click.echo(f"公钥指纹 / key fingerprint: {fp}（印在光盘标签和移交清单上 / as printed)")


@checkpoint_group.command("export")
@click.option(
    "--to",
    "dest",
    required=True,
    type=click.Path(file_okay=False),
    help="目标目录 / folder (USB stick, disc staging)",
)
@json_option
@pass_app
def cp_export(app: App, dest: str, as_json: bool) -> None:
    """导出最新检查点和公钥 / Export the newest checkpoint and the verifier key to a folder."""
    guard(app, *CLERK)
    out = checkpoint.export_checkpoint(app.vault, app.db, app.settings, Path(dest))
    if as_json:
        print_json({"file": str(out)})
    else:
        click.echo(f"已导出 / exported: {out}")


def _read_checkpoint_file(path: Path) -> str:
    """A checkpoint kept elsewhere: a small UTF-8 text file (a binary or huge file is refused)."""
    from station.safeload import LoadError, read_bounded

    try:
        return read_bounded(path, 1 << 20).decode("utf-8")
    except (LoadError, UnicodeDecodeError) as exc:
        why = str(exc) if isinstance(exc, LoadError) else "不是 UTF-8 文本 / not UTF-8 text"
        raise InputError(
            f"不是检查点文件 / not a checkpoint file: {why}",
            where=str(path),
            hint="give the .note file written by `station checkpoint export`",
        ) from exc
    except OSError as exc:
        raise FileAccessError(
            f"无法读取 / cannot read: {exc.strerror or exc}", where=str(path)
        ) from exc


@checkpoint_group.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--vkey", help="验证公钥（默认本站）/ verifier key (default: this station's)")
@json_option
@pass_app
def cp_verify(app: App, file: str, vkey: str | None, as_json: bool) -> None:
    """用外部保存的检查点核对审计日志 / Check the log against a checkpoint kept elsewhere.

    签名无效或日志与检查点不一致时退出码 9。Exit code 9 if the signature is wrong or the log
    is no longer an append-only extension of that checkpoint.
    """
    text = _read_checkpoint_file(Path(file))
    ext = checkpoint.verify_external(app.vault, app.db, app.settings, text, vkey)
    if as_json:
        print_json(ext.__dict__)
    elif ext.consistent:
        click.echo(
            f"一致 / consistent: the log ({ext.log_size} entries) extends the checkpoint "
            f"({ext.checkpoint_size} entries)."
        )
    else:
        click.echo(
            f"不一致 / NOT consistent: the first {ext.checkpoint_size} entries were changed or "
            f"removed since this checkpoint (log now {ext.log_size}).",
            err=True,
        )
    if not ext.consistent:
        sys.exit(IntegrityError.exit_code)


@checkpoint_group.command("prove")
@click.argument("seqs", nargs=-1, type=int, required=True)
@json_option
@pass_app
def cp_prove(app: App, seqs: tuple[int, ...], as_json: bool) -> None:
    """审计记录的包含证明 / Inclusion proofs of audit entries in the newest checkpoint (JSON).

    与检查点一起，可证明这些记录在本站日志中。With the checkpoint, proves those entries are in
    the station's log without handing over the rest of it. Signs a new checkpoint when the
    log grew (a records clerk or above).
    """
    guard(app, *CLERK)
    cp = checkpoint.make_checkpoint(app.vault, app.db, app.settings)
    proofs = checkpoint.inclusion_proofs(app.db, list(seqs), cp.size)
    print_json({"checkpoint": cp.text, "entries": proofs})


COMMANDS = [verify_cmd, checkpoint_group]
