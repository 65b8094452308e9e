"""Export packages (R8, R15): copies of archived footage leave the station only here, under an
approved and unexpired export request, as a hashed package, and each export is logged.

Package ``DIR/export-<request>-<time>/``::

    recordings/NNN_<original name>   the originals, bit-exact (hashed while copying, checked
                                     against the catalog; a mismatch aborts the export)
    records/NNN_<original stem>.xml  one metadata record per recording (DA/T 63-2017 elements,
                                     UTF-8 XML with its 档号 and 保管期限), valid against
    station-av-record-1.xsd          the station's schema, shipped beside them
    approval.json                    a copy of the request and its approval
    manifest.json                    what, for whom, by whom, when, each file's SHA-256
    checkpoint.note                  the newest signed audit checkpoint, with the verifier key
    audit-proof.json                 inclusion proofs of the request and approval entries in it
    SHA256SUMS                       `sha256sum -c SHA256SUMS` checks every file above

The package is written under a hidden name and renamed when complete. A copy of manifest.json,
approval.json and SHA256SUMS stays in the vault's ``exports/`` folder (R15: a copy is retained).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from station.access.approvals import approval_document, usable_request
from station.access.users import User
from station.audit import append, checkpoint
from station.audit.note import verifier_key
from station.catalog import write_txn
from station.config import Settings
from station.errors import IntegrityError, StationError
from station.hashing.copy import fsync_dir
from station.log import get
from station.timeutil import to_iso, utcnow
from station.vault import Vault

log = get()

EXPORT_ROLES = ("clerk", "supervisor")


@dataclass(frozen=True)
class ExportResult:
    request_id: int
    package: Path
    files: int
    bytes: int
    manifest_sha256: str


def _copy_hashed(src: Path, dst: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(src, "rb") as fi, open(dst, "xb") as fo:
        while chunk := fi.read(1 << 20):
            h.update(chunk)
            fo.write(chunk)
            size += len(chunk)
        fo.flush()
        os.fsync(fo.fileno())
    return h.hexdigest(), size


HANDOVER = "移交清单 handover.pdf"


def verifier_fingerprint(key: Any) -> str:
    """The station key's fingerprint as printed on paper: SHA-256 of the raw Ed25519 public
    key, first 32 hex digits in groups of four, to compare with the station's published one."""
    from cryptography.hazmat.primitives import serialization

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    digest = hashlib.sha256(raw).hexdigest()
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))


def handover_pdf(manifest: dict[str, Any], tz: str, fingerprint: str) -> bytes:
    """移交清单: who asked, who approved, for whom, and every file with its recording time
    (北京时间), size and full SHA-256; signature lines for the one handing over and the one
    receiving."""
    from station.reports.model import Report, Section
    from station.reports.pdf import render_pdf
    from station.timeutil import human_time, zone_words

    rows = [
        {
            "file": f["file"],
            "recorded_at": human_time(f.get("recorded_at"), tz),
            "officer": f.get("officer_id"),
            "size": f.get("size"),
            "sha256": f["sha256"],
        }
        for f in manifest["files"]
    ]
    report = Report(
        kind="handover",
        title="执法音视频移交清单 / Handover list of enforcement recordings (R15)",
        generated_at=f"{human_time(manifest['exported_at'], tz)}（{zone_words(tz)}）",
        params={},
        summary=[
            ("执法单位 / unit", manifest["unit"]),
            ("采集站 / station", manifest["station"]),
            ("申请编号 / request", manifest["request"]),
            ("事由 / reason", manifest["reason"]),
            ("提供给 / recipient", manifest["recipient"] or "-"),
            ("申请人 / requested by", manifest["requested_by"]),
            ("批准人 / approved by", manifest["approved_by"]),
            ("导出人 / exported by", manifest["exported_by"]),
            ("文件数 / files", len(rows)),
            ("采集站公钥指纹 / station key fingerprint", fingerprint),
            (
                "如何校验 / how to check",
                "Windows: 右键 verify.ps1 →「使用 PowerShell 运行」; "
                "Linux: sha256sum -c SHA256SUMS",
            ),
        ],
        sections=[
            Section(
                key="files",
                title="移交文件 / files handed over",
                columns=[
                    ("file", "文件 / file"),
                    ("recorded_at", f"录制时间 / recorded ({zone_words(tz)})"),
                    ("officer", "执法人员 / officer"),
                    ("size", "字节 / bytes"),
                    ("sha256", "SHA-256"),
                ],
                rows=rows,
            )
        ],
    )
    # times formatted above; the full hash stays: the receiver compares it with Get-FileHash
    return render_pdf(
        report,
        None,
        ("移交人 / handed over by", "接收人签字 / received and signed", "日期 / date"),
    )


def _safe_name(name: str) -> str:
    return re.sub(r"[/\\\x00]", "_", name)[:200] or "recording"


def _archive_records(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    actor: str,
    partial: Path,
    files: list[dict[str, object]],
    now: str,
) -> list[str]:
    """Write one metadata record per exported recording and the schema; note each recording's
    档号 and 保管期限 on its manifest entry. Returns the files written (package paths)."""
    from station.archive import numbers
    from station.archive import records as rec

    (partial / "records").mkdir()
    written = ["station-av-record-1.xsd"]
    (partial / written[0]).write_bytes(rec.schema_bytes())
    for f in files:
        sha = str(f["sha256"])
        number = numbers.number_for_export(db, settings, sha, actor=actor)
        period = numbers.recording_period(db, settings, sha)
        cases = []
        for (case,) in db.execute(
            "select case_number from case_recordings where sha256 = ? order by case_number", [sha]
        ).fetchall():
            found = numbers.lookup(db, numbers.KIND_CASE, case)
            cases.append(rec.case_facts(db, case, found.number if found else None))
        facts = rec.recording_facts(
            vault.home,
            db,
            settings,
            sha,
            archive=number,
            station_decision=period.station,
            cases=cases,
            locations={sha: str(f["file"])},
            generated_at=now,
        )
        stem = str(f["file"]).removeprefix("recordings/").rsplit(".", 1)[0]
        rel = f"records/{stem}.xml"
        (partial / rel).write_bytes(rec.build_record(facts))
        f.update(
            {
                "archive_number": number.number,
                "retention_period": number.retention_words,
                "retention_code": number.retention_code,
                "station_retention": period.station,
                "metadata_record": rel,
            }
        )
        written.append(rel)
    return written


def export_request(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    user: User,
    request_id: int,
    dest: Path,
) -> ExportResult:
    if user.role not in EXPORT_ROLES:
        raise StationError("export needs a clerk or supervisor")  # callers check the role first
    req = usable_request(db, user, request_id, purposes=("export",))
    now = to_iso(utcnow())
    stamp = now[:19].replace("-", "").replace(":", "")
    if not dest.is_dir():
        raise StationError(
            "the destination folder does not exist / 目标目录不存在", where=str(dest)
        )
    final = dest / f"export-{request_id:05d}-{stamp}"
    partial = dest / f".{final.name}.partial"
    if final.exists() or partial.exists():
        raise StationError("an export package of that name exists already", where=str(final))
    cp = checkpoint.make_checkpoint(vault, db, settings)
    files: list[dict[str, object]] = []
    total = 0
    try:
        (partial / "recordings").mkdir(parents=True)
        for n, sha in enumerate(req.recordings, 1):
            row = db.execute("select * from recordings where sha256 = ?", [sha]).fetchone()
            cols = [d[0] for d in db.execute("select * from recordings limit 0").description]
            rec = dict(zip(cols, row, strict=True))
            rel = f"recordings/{n:03d}_{_safe_name(rec['original_name'])}"
            got, size = _copy_hashed(vault.home / rec["vault_path"], partial / rel)
            if got != sha:
                log.error("access.export_integrity", request=request_id, sha256=sha, got=got)
                raise IntegrityError(
                    "a stored original does not match its hash; export stopped / 原始文件校验不符，"
                    "已停止导出",
                    where=str(vault.home / rec["vault_path"]),
                    hint="run `station verify` and report to the supervisor",
                )
            total += size
            files.append(
                {
                    "file": rel,
                    "sha256": sha,
                    "size": size,
                    "original_name": rec["original_name"],
                    "recorded_at": rec["recorded_at"],
                    "officer_id": rec["officer_id"],
                    "device_id": rec["device_id"],
                    "unit_id": rec["unit_id"],
                    "method": rec["method"],
                    # R5: what it proves, and who made it, readable in the manifest
                    "producer": rec["producer"],
                    "proves": rec["proves"],
                    "sound_content": rec.get("sound_content"),
                }
            )
        archive = _archive_records(vault, db, settings, user.name, partial, files, now)
        approval = approval_document(req)
        (partial / "approval.json").write_text(approval + "\n", encoding="utf-8")
        v = checkpoint.station_verifier(vault, settings)
        (partial / "checkpoint.note").write_text(
            cp.text + "\n# verifier key: " + verifier_key(v.name, v.key) + "\n", encoding="utf-8"
        )
        seqs = [
            r[0]
            for r in db.execute(
                "select seq from audit_log where subject = ? and event in"
                " ('access.requested', 'access.approved') order by seq",
                [f"request:{request_id}"],
            )
        ]
        proof = {
            "about": "RFC 6962 inclusion proofs of the request and approval audit entries in "
            "the signed checkpoint (checkpoint.note) / 申请与审批审计记录的包含证明",
            "leaf": "SHA-256(0x00 || entry), node: SHA-256(0x01 || left || right)",
            "entries": checkpoint.inclusion_proofs(db, seqs, cp.size),
        }
        (partial / "audit-proof.json").write_text(
            json.dumps(proof, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        manifest = {
            "title": "执法录像导出清单 / Enforcement footage export manifest (R15)",
            "station": settings.station.id,
            "unit": settings.station.unit_name,
            "request": request_id,
            "purpose": req.purpose,
            "reason": req.reason,
            "recipient": req.recipient,
            "requested_by": req.requested_by,
            "approved_by": req.decided_by,
            "approved_at": req.decided_at,
            "valid_until": req.valid_until,
            "exported_by": user.name,
            "exported_at": now,
            "audit_checkpoint_size": cp.size,
            "files": files,
        }
        manifest_text = json.dumps(manifest, ensure_ascii=False, indent=2) + "\n"
        (partial / "manifest.json").write_text(manifest_text, encoding="utf-8")
        # for the court: the Windows checker and a printable handover list (移交清单)
        from station.disc_burn.manifest import verify_ps1

        (partial / "verify.ps1").write_bytes(verify_ps1())
        (partial / HANDOVER).write_bytes(
            handover_pdf(manifest, settings.station.timezone, verifier_fingerprint(v.key))
        )
        sums = []
        for rel in (
            [str(f["file"]) for f in files]
            + archive
            + [
                "approval.json",
                "manifest.json",
                "checkpoint.note",
                "audit-proof.json",
                "verify.ps1",
                HANDOVER,
            ]
        ):
            digest = hashlib.sha256((partial / rel).read_bytes()).hexdigest()
            sums.append(f"{digest}  {rel}\n")
        (partial / "SHA256SUMS").write_text("".join(sums), encoding="utf-8")
        for p in partial.rglob("*"):
            if p.is_file():
                os.chmod(p, 0o444)
        fsync_dir(partial)
        manifest_sha = hashlib.sha256(manifest_text.encode()).hexdigest()
        # The record and the package appear together: the rename happens inside the
        # transaction that writes the export row and its audit entry (DESIGN invariant 3).
        with write_txn(db):
            db.execute(
                "insert into access_exports (request_id, exported_by, exported_at, destination,"
                " files, bytes, manifest_sha256) values (?, ?, ?, ?, ?, ?, ?)",
                [request_id, user.name, now, str(final), len(files), total, manifest_sha],
            )
            append(
                db,
                "access.exported",
                actor=user.name,
                subject=f"request:{request_id}",
                data={
                    "destination": str(final),
                    "recordings": [f["sha256"] for f in files],
                    "bytes": total,
                    "manifest_sha256": manifest_sha,
                    "recipient": req.recipient,
                },
            )
            os.rename(partial, final)
        fsync_dir(dest)
    except BaseException:
        # Only our own partial copy is removed; nothing in the vault is touched.
        shutil.rmtree(partial, ignore_errors=True)
        raise
    kept = vault.exports / final.name  # R15: a copy is retained
    kept.mkdir(parents=True, exist_ok=True)
    for name in ("manifest.json", "approval.json", "SHA256SUMS"):
        shutil.copyfile(final / name, kept / name)
    log.info("access.exported", request=request_id, to=str(final), files=len(files), bytes=total)
    return ExportResult(request_id, final, len(files), total, manifest_sha)
