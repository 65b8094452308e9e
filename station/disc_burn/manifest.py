"""The metadata files every disc carries (R5, R7, R12): MANIFEST.json, MANIFEST.SHA256,
README.txt, verify.py, verify.ps1, AUDIT.jsonl and, with the station's signed audit checkpoint,
CHECKPOINT.txt, STATION-KEY.txt (the station's public key and its fingerprint) and
AUDIT-PROOF.json (RFC 6962 inclusion proofs of AUDIT.jsonl's entries in that checkpoint), so a
court can check the disc alone with verify.py.

Pure: everything comes in as arguments; the texts are the same for copy A and copy B, so both
copies hold the same files (only the volume id differs).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from station.disc_burn.content import R11_REASONS, CaseInfo, Signed
from station.disc_burn.layout import SIGNED_FILES, Entry, Layout
from station.timeutil import human_time, zone_short, zone_words


@dataclass(frozen=True)
class DiscIdentity:
    job_id: int
    disc_no: int
    discs_total: int
    media: str
    station_id: str
    unit_name: str
    producer: str  # R12: who made the disc
    created_at: str  # R12: production time (UTC ISO 8601; people see it in ``tz``)
    tz: str = "Asia/Shanghai"  # the station's zone (station.timezone)
    fingerprint: str | None = None  # the station key's, as printed on the label


def station_key_text(vkey: str, fingerprint: str) -> str:
    """STATION-KEY.txt: comment lines for people, then the verifier key line verify.py reads."""
    return (
        "# 采集站审计公钥 / the station's audit verifier key (Ed25519, C2SP signed-note format)\n"
        f"# 指纹 / fingerprint: {fingerprint}\n"
        "# 须与光盘标签、移交清单上印的指纹一致 / must equal the one printed on the label and\n"
        "# the handover list; verify.py prints the fingerprint it checked against.\n"
        f"{vkey}\n"
    )


def proof_document(proofs: list[dict[str, Any]]) -> str:
    doc = {
        "about": "RFC 6962 inclusion proofs of the audit entries in the signed checkpoint / "
        "审计记录在签名检查点中的包含证明",
        "leaf": "SHA-256(0x00 || entry), node: SHA-256(0x01 || left || right)",
        "entries": proofs,
    }
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def verify_script() -> bytes:
    return resources.files("station.disc_burn").joinpath("disc_verify.py").read_bytes()


def verify_ps1() -> bytes:
    """The Windows checker (PowerShell 5.1 + Get-FileHash, nothing to install). Written as
    UTF-8 with a BOM and CRLF: without the BOM Windows PowerShell reads the script in the
    ANSI code page and garbles its Chinese text."""
    text = resources.files("station.disc_burn").joinpath("verify_ps1.txt").read_text("utf-8")
    return b"\xef\xbb\xbf" + text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _entry_json(e: Entry) -> dict[str, Any]:
    assert e.file is not None
    return {
        "path": e.path,
        "joliet_path": e.joliet_path,
        "iso_path": e.iso_path,
        "case": e.case,
        "role": e.file.role,
        "sha256": e.file.sha256,
        "size": e.file.size,
        "recording_sha256": e.file.recording_sha256,
        "profile": e.file.profile,
    }


def _support(e: Entry, data: bytes) -> dict[str, Any]:
    return {
        "path": e.path,
        "joliet_path": e.joliet_path,
        "iso_path": e.iso_path,
        "sha256": _sha(data),
        "size": len(data),
    }


def _recording_lines(recordings: list[dict[str, Any]], tz: str) -> list[str]:
    """R5: each original in time order with its producer and 证明对象, readable as text."""
    lines = ["", "录像及证明对象 / Recordings and what they prove (R5):"]
    ordered = sorted(recordings, key=lambda r: (r.get("recorded_at") or "", r["sha256"]))
    for i, r in enumerate(ordered, 1):
        when = f"{human_time(r.get('recorded_at'), tz)} {zone_short(tz, r.get('recorded_at'))}"
        lines.append(f"  {i}. {r.get('original_name')}  录制 / recorded {when}")
        lines.append(
            f"     制作人 / producer: {r.get('producer') or r.get('officer_id') or '—'}；"
            f"制作方法 / method: {r.get('method') or '—'}"
        )
        lines.append(f"     证明对象 / proves: {r.get('proves') or '（未填写 / not filled in）'}")
        if r.get("sound_content"):
            lines.append(f"     声音内容 / sound: {r['sound_content']}")
    return lines


def readme(
    ident: DiscIdentity, cases: list[CaseInfo], recordings: list[dict[str, Any]] | None = None
) -> str:
    lines = [
        "执法音视频档案光盘 / Enforcement audio-video archive disc",
        "=" * 56,
        f"制作单位 / Producing unit: {ident.unit_name}",
        f"制作人 / Producer: {ident.producer}",
        f"制作时间 / Production time: {human_time(ident.created_at, ident.tz)}"
        f"（{zone_words(ident.tz)}）",
        f"光盘 / Disc: 第 {ident.disc_no} 张，共 {ident.discs_total} 张 / disc {ident.disc_no} "
        f"of {ident.discs_total}   (job {ident.job_id}, {ident.station_id})",
        "",
        "执法活动或案件 / Enforcement activities or cases:",
    ]
    for c in cases:
        kind = "执法活动 / activity" if c.kind == "activity" else "案件 / case"
        lines.append(f"  {c.number}  {c.name}  ({kind})")
        for code in c.long_term_reasons or ((c.long_term_reason,) if c.long_term_reason else ()):
            lines.append(f"    长期保存原因 / long-term reason: {R11_REASONS.get(code, '-')}")
        if c.archive_number:
            lines.append(f"    档号 / archive number: {c.archive_number}")
            lines.append(
                f"    保管期限 / retention period: {c.retention_words}（{c.retention_code}）"
                f" — 本站 / station: {c.station_decision}"
            )
    if recordings:
        lines += _recording_lines(recordings, ident.tz)
    lines += [
        "",
        "本光盘一式两份（甲/A、乙/B），内容相同。原始录像逐位保存，未经任何修改。",
        "This disc is made in two copies (A and B) with the same content. Original recordings",
        "are stored bit-exact, never modified; archival copies are separate files (R7, R12).",
        "",
        "内容 / Contents:",
        "  MANIFEST.json    每个文件的案件、执法人员、设备、单位、校正时间、原名、大小、SHA-256",
        "                   case, officer, device, unit, corrected times, names, sizes, SHA-256",
        "  MANIFEST.SHA256  SHA-256 校验清单 / checksum list (sha256sum format)",
        "  AUDIT.jsonl      这些录像的审计日志 / audit-log entries of these recordings",
        "  CHECKPOINT.txt   采集站签名的审计检查点 / the station's signed audit checkpoint",
        "  STATION-KEY.txt  采集站公钥及其指纹 / the station's public key and its fingerprint",
        f"                   指纹 / fingerprint: {ident.fingerprint or '-'}",
        "  AUDIT-PROOF.json 审计记录包含在检查点中的证明 / proofs: the entries are signed",
        "  verify.py        校验程序（仅用 Python 标准库）：文件、签名、审计记录",
        "                   checker (Python standard library only): files, signature, audit",
        "  verify.ps1       Windows 校验程序（系统自带 PowerShell，无需安装）",
        "                   Windows checker (built-in PowerShell, nothing to install)",
        "  DISC.xml         本光盘的元数据记录（档号、保管期限、文件摘要）",
        "                   the disc's metadata record (archive numbers, retention, digests)",
        "  <案件>/档案元数据 metadata/*.xml  每段录像的元数据记录（DA/T 63-2017 元素）",
        "                   one metadata record per recording (DA/T 63-2017 elements), UTF-8 XML",
        "  station-av-record-1.xsd  上述 XML 的模式 / schema the records validate against",
        "",
        "如何校验 / How to verify:",
        "  Linux:   cd <光盘目录 disc folder> && sha256sum -c MANIFEST.SHA256",
        "           或 or: python3 verify.py",
        "  macOS:   cd <disc folder> && shasum -a 256 -c MANIFEST.SHA256",
        "           或 or: python3 verify.py",
        "  签名 / signature: verify.py 打印所用公钥的指纹，须与光盘标签上印的一致",
        "           verify.py prints the key fingerprint it checked against: it must equal",
        "           the one printed on the disc label (and published by the station).",
        '           python3 verify.py --fingerprint "<标签上的指纹 printed fingerprint>"',
        "  Windows: 右键 verify.ps1 →「使用 PowerShell 运行」，无需安装任何软件",
        "           right-click verify.ps1 → Run with PowerShell (nothing to install)",
        "           或 or: powershell -ExecutionPolicy Bypass -File verify.ps1",
        "           已装 Python 时 / with Python: py verify.py",
        "           单个文件 / one file:  certutil -hashfile <文件 file> SHA256",
        "           PowerShell:  Get-FileHash -Algorithm SHA256 <文件 file>",
        "           然后与 MANIFEST.SHA256 中的值比较 / compare with MANIFEST.SHA256.",
        "",
        "长文件名在 Joliet 下可能被缩短；MANIFEST.json 的 path / joliet_path / iso_path 给出对应。",
        "Long names may be shortened under Joliet; MANIFEST.json maps path, joliet_path, iso_path.",
        "",
    ]
    return "\n".join(lines)


def build_files(
    layout: Layout,
    ident: DiscIdentity,
    cases: list[CaseInfo],
    recordings: dict[str, dict[str, Any]],
    audit: list[dict[str, Any]],
    volume_set: list[dict[str, Any]],
    signed: Signed | None,
    records: dict[str, bytes] | None = None,
    archive_numbers: dict[str, str] | None = None,
) -> dict[str, bytes]:
    """The support files' bytes, by full path. ``records`` are the archive metadata records
    (DISC.xml, the schema, one XML per recording) by path; ``archive_numbers`` the 档号 of each
    recording on the disc (by its SHA-256)."""
    by_path = {e.path: e for e in layout.entries}
    out: dict[str, bytes] = dict(records or {})
    used = {e.file.sha256 for e in layout.payload if e.file is not None}
    originals = [
        v for k, v in recordings.items() if k in used and "original_name" in v and "sha256" in v
    ]
    out["README.txt"] = readme(ident, cases, originals).encode("utf-8")
    out["verify.py"] = verify_script()
    out["verify.ps1"] = verify_ps1()
    out["AUDIT.jsonl"] = "".join(
        json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in audit
    ).encode("utf-8")
    if signed is not None:
        out["CHECKPOINT.txt"] = signed.checkpoint.encode("utf-8")
        out["STATION-KEY.txt"] = station_key_text(signed.vkey, signed.fingerprint).encode()
        out["AUDIT-PROOF.json"] = proof_document(signed.proofs).encode("utf-8")
    payload = layout.payload
    used = {e.file.sha256 for e in payload if e.file is not None}
    manifest = {
        "format": "station-disc/1",
        "disc": {
            "job_id": ident.job_id,
            "disc_no": ident.disc_no,
            "discs_total": ident.discs_total,
            "media": ident.media,
            "station_id": ident.station_id,
            "producing_unit": ident.unit_name,
            "producer": ident.producer,
            "created_at": ident.created_at,
            "station_key_fingerprint": ident.fingerprint,
        },
        "cases": [
            {
                "number": c.number,
                "name": c.name,
                "cause": c.cause,
                "party": c.party,
                "unit_id": c.unit_id,
                "unit_name": c.unit_name,
                "long_term_reason": c.long_term_reason,
                "long_term_reason_text": R11_REASONS.get(c.long_term_reason or 0),
                "long_term_reasons": list(c.long_term_reasons),
                "long_term_reasons_text": [R11_REASONS.get(x) for x in c.long_term_reasons],
                "kind": c.kind,
                "long_term_note": c.long_term_note,
                "archive_number": c.archive_number,
                "retention_period": c.retention_words,
                "retention_code": c.retention_code,
                "retention_rule": c.retention_rule,
                "retention_years": c.retention_years,
                "station_retention": c.station_decision,
            }
            for c in cases
        ],
        "archive_numbers": dict(archive_numbers or {}),
        "volume_set": volume_set,
        "files": [_entry_json(e) for e in payload],
        "metadata": {k: v for k, v in recordings.items() if k in used},
        "support_files": [
            _support(by_path[name], out[name])
            for name in (
                "README.txt",
                "verify.py",
                "verify.ps1",
                "AUDIT.jsonl",
                *SIGNED_FILES,
                *sorted(records or {}),
            )
            if name in out
        ],
    }
    out["MANIFEST.json"] = json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8")
    lines = [f"{e.file.sha256}  {e.path}\n" for e in payload if e.file is not None]
    lines += [
        f"{_sha(out[name])}  {name}\n"
        for name in (
            "README.txt",
            "verify.py",
            "verify.ps1",
            "AUDIT.jsonl",
            *SIGNED_FILES,
            *sorted(records or {}),
            "MANIFEST.json",
        )
        if name in out
    ]
    out["MANIFEST.SHA256"] = "".join(lines).encode("utf-8")
    return out
