"""What goes onto the discs of a job, read from the catalog and checked against the vault.

Reads only: ``cases`` (+ the R11 long-term mark), ``case_recordings``, ``recordings`` (R5
metadata), ``derivatives`` in state ``done``, the units/officers tables for names, and the audit
entries about the recordings and cases.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from station.config import Settings
from station.disc_burn.plan import PlanCase, PlanFile, PlanRecording
from station.errors import IntegrityError, NotFoundError, NotLongTermError, StationError
from station.log import get
from station.retention.policy import R11_REASONS as POLICY_REASONS
from station.retention.policy import reason_text
from station.vault import Vault

log = get()

# R11 reasons in the words of seed 000 第十四条 (one table, in station.retention.policy).
R11_REASONS = {code: reason_text(code) for code in POLICY_REASONS}


@dataclass(frozen=True)
class Signed:
    """The station's signed checkpoint for a disc, its key and the audit entries' proofs (R7)."""

    checkpoint: str  # the C2SP signed note
    vkey: str  # the verifier key line ``name+id+base64``
    fingerprint: str  # as printed on the label (``station.audit.note.fingerprint``)
    proofs: list[dict[str, Any]]  # ``station.audit.checkpoint.inclusion_proofs``


class MissingRecordingError(IntegrityError):
    """录像已清除或缺失 / A recording of the case is purged or missing from the vault."""


@dataclass
class CaseInfo:
    number: str
    name: str
    cause: str | None
    party: str | None
    unit_id: str | None
    unit_name: str | None
    long_term_reason: int | None
    long_term_note: str | None
    long_term_reasons: tuple[int, ...] = ()  # R11: every item of 第十四条 the mark rests on
    kind: str = "case"  # case | activity (执法活动, no party)
    # Filled when the job gives the case its archive number (station.archive.numbers).
    archive_number: str | None = None  # 档号
    retention_code: str | None = None
    retention_words: str | None = None  # 保管期限
    retention_rule: str | None = None
    retention_years: int | None = None
    station_decision: str | None = None  # the station's own retention decision, bilingual


@dataclass
class JobContent:
    cases: list[PlanCase]
    info: dict[str, CaseInfo]
    recordings: dict[str, dict[str, Any]]  # sha256 -> R5 metadata for MANIFEST.json


def _case_info(db: sqlite_utils.Database, number: str) -> CaseInfo:
    row = db.execute(
        "select c.number, c.name, c.cause, c.party, c.unit_id, u.name, c.long_term_reason,"
        " c.long_term_note, c.long_term_reasons, c.kind from cases c"
        " left join units u on u.unit_id = c.unit_id where c.number = ?",
        [number],
    ).fetchone()
    if row is None:
        raise NotFoundError(f"找不到案件 / no case {number!r}", where="cases")
    codes = tuple(json.loads(row[8])) if row[8] else ((row[6],) if row[6] else ())
    c = row
    return CaseInfo(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], codes, c[9] or "case")


def _check_file(vault: Vault, rel: str | None, what: str, sha: str, size: int, case: str) -> None:
    path = vault.home / rel if rel else None
    if path is None or not path.is_file():
        raise MissingRecordingError(
            f"录像文件缺失 / {what} {sha} is missing from the vault",
            where=str(path) if path else f"case {case}",
            hint="run `station verify`; the case cannot go onto a disc until it is restored",
        )
    actual = path.stat().st_size
    if actual != size:
        raise IntegrityError(
            f"{what} {sha} has {actual} bytes in the vault, the catalog says {size}",
            where=str(path),
            hint="run `station verify`",
        )


def load_content(
    vault: Vault, db: sqlite_utils.Database, numbers: list[str], *, require_long_term: bool = True
) -> JobContent:
    """Read the cases, check every file they need is in the vault (refusing with its hash)."""
    if not numbers:
        raise StationError("未指定案件 / no case given", hint="name at least one case number")
    infos: dict[str, CaseInfo] = {}
    cases: list[PlanCase] = []
    metas: dict[str, dict[str, Any]] = {}
    for number in dict.fromkeys(numbers):
        info = _case_info(db, number)
        if require_long_term and info.long_term_reason is None:
            raise NotLongTermError(
                f"案件未标记长期保存 / case {number} is not marked long-term (R11)",
                where=f"case {number}",
                hint="mark it long-term with its R11 reason first, or pass --not-long-term",
            )
        infos[number] = info
        rows = list(
            db.query(
                "select r.*, o.name as officer_name, u.name as unit_name, d.model as device_model"
                " from case_recordings cr join recordings r on r.sha256 = cr.sha256"
                " left join officers o on o.officer_id = r.officer_id"
                " left join units u on u.unit_id = r.unit_id"
                " left join devices d on d.device_id = r.device_id"
                " where cr.case_number = ? order by r.recorded_at, r.sha256",
                [number],
            )
        )
        recs: list[PlanRecording] = []
        for r in rows:
            sha = r["sha256"]
            if r["state"] == "purged":
                raise MissingRecordingError(
                    f"录像已被清除 / recording {sha} was purged",
                    where=f"case {number}",
                    hint="a purged recording cannot be burned; unlink it from the case",
                )
            _check_file(vault, r["vault_path"], "recording", sha, r["size"], number)
            files = [PlanFile(sha, sha, "original", r["size"], r["vault_path"], r["original_name"])]
            for d in db.query(
                "select * from derivatives where original_sha256 = ? and state = 'done'"
                " order by profile",
                [sha],
            ):
                _check_file(vault, d["vault_path"], "derivative", d["sha256"], d["size"], number)
                stem = r["original_name"].rsplit(".", 1)[0]
                ext = d["ext"] or Path(d["vault_path"]).suffix.lstrip(".")
                files.append(
                    PlanFile(
                        d["sha256"],
                        sha,
                        "derivative",
                        d["size"],
                        d["vault_path"],
                        f"{stem}.{d['profile']}.{ext}",
                        d["profile"],
                    )
                )
                metas.setdefault(d["sha256"], _derivative_meta(d))
            recs.append(PlanRecording(sha, tuple(files)))
            metas.setdefault(sha, _recording_meta(r))
        cases.append(PlanCase(number, info.name, tuple(recs)))
    return JobContent(cases, infos, metas)


_REC_FIELDS = [
    "sha256",
    "size",
    "ext",
    "media_kind",
    "device_id",
    "device_model",
    "officer_id",
    "officer_name",
    "unit_id",
    "unit_name",
    "method",
    "recorded_at_device",
    "recorded_at",
    "drift_s",
    "time_source",
    "duration_s",
    "end_at",
    "original_name",
    "original_path",
    "important",
    "sequence",
    "ingested_at",
    "ingest_delay_s",
    "damaged",
    "damage_reason",
    "category",
    "proves",
    "producer",
    "sound_content",
]


def _recording_meta(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row.get(k) for k in _REC_FIELDS}


def _derivative_meta(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("sha256", "original_sha256", "profile", "size", "ext", "partial", "ffmpeg_version")
    out = {k: row.get(k) for k in keys}
    out["command"] = json.loads(row["command"]) if row.get("command") else None
    return out


def audit_entries(db: sqlite_utils.Database, subjects: list[str]) -> list[dict[str, Any]]:
    """Audit entries whose subject is one of ``subjects`` (file hashes, case numbers), in order."""
    found: dict[int, dict[str, Any]] = {}
    uniq = list(dict.fromkeys(subjects))
    for i in range(0, len(uniq), 500):
        chunk = uniq[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for row in db.query(f"select * from audit_log where subject in ({marks})", chunk):
            found[row["seq"]] = row
    return [found[k] for k in sorted(found)]


def signed_excerpt(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, subjects: list[str]
) -> tuple[Any, list[dict[str, Any]]]:
    """The audit entries about ``subjects`` and what proves them (R7): a checkpoint signed now
    (so it covers every entry of the excerpt), the station's verifier key and its fingerprint,
    and an RFC 6962 inclusion proof of each entry in the checkpoint — a court checks the disc
    with these alone (verify.py). If the station refuses to sign (a broken chain; ``station
    verify`` says where), the latest stored checkpoint is used and the refusal is logged;
    entries it does not cover get no proof, and verify.py reports them. ``(None, entries)`` when
    the station has no checkpoint at all."""
    from station.audit import checkpoint, note

    try:
        checkpoint.make_checkpoint(vault, db, settings)
    except IntegrityError as exc:
        log.error("disc.checkpoint_refused", error=exc.message)
    entries = audit_entries(db, subjects)
    text = checkpoint.latest_checkpoint_text(vault, db)
    if not text:
        return None, entries
    v = checkpoint.station_verifier(vault, settings)
    size = int(text.split("\n")[1])
    seqs = [int(e["seq"]) for e in entries if int(e["seq"]) <= size]
    signed = Signed(
        str(text),
        note.verifier_key(v.name, v.key),
        note.fingerprint(note.public_bytes(v.key)),
        checkpoint.inclusion_proofs(db, seqs, size),
    )
    return signed, entries


def station_fingerprint(vault: Vault, settings: Settings) -> str | None:
    """The station key's fingerprint (printed on labels), or None before the first checkpoint."""
    from station.audit import checkpoint, note

    try:
        v = checkpoint.station_verifier(vault, settings)
    except StationError:
        return None
    return note.fingerprint(note.public_bytes(v.key))


def assign_archive_numbers(
    db: sqlite_utils.Database, settings: Settings, content: JobContent, actor: str
) -> dict[tuple[str, str], Any]:
    """Give every case of the job its 档号 and each of its recordings an item number (once;
    numbers given before are kept), and note the 保管期限 beside the station's own decision on
    the job's CaseInfo. Returns the recordings' numbers by (case number, recording SHA-256)."""
    from station.archive import numbers
    from station.retention.facts import load_cases
    from station.retention.policy import Policy, case_archival_period

    items: dict[tuple[str, str], Any] = {}
    facts = load_cases(db)
    policy = Policy.from_settings(settings)
    for case in content.cases:
        info = content.info[case.number]
        parent = None
        if case.number in facts:
            number = numbers.assign_case(db, settings, case.number, actor=actor)
            now = case_archival_period(
                facts[case.number], policy, settings.archive.retention_scheme
            ).station
        else:  # not a case (an enforcement activity put on a disc): keyed by its own kind
            number = parent = numbers.assign_other(
                db, settings, "disc-subject", case.number,
                long_term_reason=info.long_term_reason, actor=actor,
            )  # fmt: skip
            now = ""
        info.archive_number = number.number
        info.retention_code = number.retention_code
        info.retention_words = number.retention_words
        info.retention_rule = number.retention_rule
        info.retention_years = number.retention_years
        info.station_decision = now or number.retention_rule
        shas = [r.sha256 for r in case.recordings]
        for sha, item in numbers.assign_case_items(
            db, settings, case.number, shas, actor=actor, parent=parent
        ).items():
            items[(case.number, sha)] = item
    return items
