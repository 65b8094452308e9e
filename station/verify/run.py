"""``station verify``: re-hash the vault against the catalog, check the audit chain, the catalog
rows against their audit entries, and the log against every signed checkpoint (R7).

Also the daemon's periodic verify (``periodic_verify``): full, at low priority, with progress,
stoppable, its result written to the audit log.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from station.audit import append, checkpoint, head, keys, protect
from station.audit.seal import SEALED_RECORDING_FIELDS, row_differences
from station.audit.tree import Entry, check_chain
from station.catalog import write_txn
from station.config import Settings
from station.custody import freed_paths
from station.log import get
from station.timeutil import parse_iso, to_iso, utcnow
from station.vault import Vault
from station.verify.custody import CustodyIndex
from station.verify.findings import Finding
from station.verify.hashing import HashJob, HashResult, hash_many

log = get()

_CHAIN_CODES = {
    "edited": "audit.entry_edited",
    "removed": "audit.entry_removed",
    "relinked": "audit.entry_relinked",
    "unreadable": "audit.entry_unreadable",
}


@dataclass
class VerifyProgress:
    phase: str  # audit | catalog | files | done
    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0


@dataclass
class VerifyReport:
    mode: str  # full | sample
    started_at: str
    finished_at: str = ""
    files_checked: int = 0
    files_total: int = 0
    bytes_checked: int = 0
    audit_entries: int = 0
    checkpoints: int = 0
    recordings: int = 0
    findings: list[Finding] = field(default_factory=list)
    aborted: str | None = None

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.code] = out.get(f.code, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "mode": self.mode,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "files_checked": self.files_checked,
            "files_total": self.files_total,
            "bytes_checked": self.bytes_checked,
            "audit_entries": self.audit_entries,
            "checkpoints": self.checkpoints,
            "recordings": self.recordings,
            "aborted": self.aborted,
            "counts": self.counts(),
            "findings": [f.to_dict() for f in self.findings],
        }


# Audit events whose data carries a recording row's fields at the top level (the ingest
# engine's); any entry may instead carry them under "row" (station.audit.seal).
RECORDING_EVENTS = frozenset({"recording.ingested", "ingest.file_stored"})
DERIVATIVE_FIELDS = ("sha256", "size", "vault_path")
# Fields other parts change later, each change audited; the audit log tells their value now.
# At ingest: no category, no "proves" note (R5), state stored.
TRACKED_AT_INGEST = {"category": None, "proves": None, "state": "stored"}
RETENTION_STATES = {  # station.retention (R9)
    "retention.pending": "pending_purge",
    "retention.purged": "purged",
    "retention.restored": "stored",
}


class _RowIndex:
    """What the audit log says about each recording, gathered in the chain pass."""

    def __init__(self) -> None:
        self.described: dict[str, tuple[int, dict[str, Any]]] = {}  # sha -> (seq, fields)
        self.removed: set[str] = set()
        self.mentioned: set[str] = set()
        self.tracked: dict[str, dict[str, Any]] = {}  # sha -> {field: value now, per the log}
        # (original sha256, profile) -> (seq, {sha256, size, vault_path})
        self.derivatives: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}

    def visit(self, e: Entry) -> None:
        if not e.subject or e.data is None:
            return
        subject = e.subject.removeprefix("recording:")
        self.mentioned.add(subject)
        data = e.data
        if e.event in RECORDING_EVENTS:
            start = {k: data.get(k, v) for k, v in TRACKED_AT_INGEST.items()}
            if "damaged" in data:
                start["damaged"] = data["damaged"]
            self.tracked[subject] = start
        row = data.get("row")
        if isinstance(row, dict):
            self.described[subject] = (e.seq, row)
            self.removed.discard(subject)
        elif e.event in RECORDING_EVENTS:
            # The ingest engine's ``recording.ingested`` entry carries the row's key fields
            # at the top level of its data; a later such entry supersedes an earlier one.
            fields = {k: data[k] for k in SEALED_RECORDING_FIELDS if k in data}
            self.described[subject] = (e.seq, fields)
            self.removed.discard(subject)
        elif e.event == "recording.tagged" and isinstance(data.get("set"), dict):
            # station.cases: category (R6) and what it proves (R5)
            for k in ("category", "proves"):
                if k in data["set"]:
                    self.tracked.setdefault(subject, {})[k] = data["set"][k]
        elif e.event in RETENTION_STATES:
            self.tracked.setdefault(subject, {})["state"] = RETENTION_STATES[e.event]
        elif e.event == "derivative.failed" and data.get("flagged") is True:
            self.tracked.setdefault(subject, {})["damaged"] = 1  # station.transcode
        elif e.event in ("derivative.created", "derivative.retagged"):
            # station.transcode: the derivative's own hash, size and place (R7), and what it
            # filled in on the recording (duration, end).
            if data.get("profile"):
                fields = {k: data.get(k) for k in DERIVATIVE_FIELDS}
                self.derivatives[(subject, str(data["profile"]))] = (e.seq, fields)
            updates = data.get("recording_updates")
            if isinstance(updates, dict):
                for k in ("duration_s", "end_at"):
                    if k in updates:
                        self.tracked.setdefault(subject, {})[k] = updates[k]
        if data.get("row_removed") is True:
            self.removed.add(subject)


def _key_findings(vault: Vault, db: sqlite_utils.Database) -> list[Finding]:
    """The key files against the key history in the log (station.audit.keys)."""
    events = keys.history(db, vault)
    found = [
        Finding("audit.key_lost", str(e.seq), "audit_log", e.vkey)
        for e in events
        if e.event == "audit.key_replaced"
    ]
    path = vault.keys / keys.VKEY_FILE
    if events and path.exists() and path.read_text().strip() != events[-1].vkey:
        found.append(
            Finding(
                "audit.key_replaced",
                path.read_text().strip()[:60],
                str(path),
                f"the log names {events[-1].vkey[:60]} (entry {events[-1].seq})",
            )
        )
    return found


class _TimeOrder:
    """Audit entry times must not go backwards from one entry to the next (a second of slack
    for concurrent writers): each step back is one finding."""

    LIMIT = 20  # findings at most; the first ones tell where the clock was wrong

    def __init__(self) -> None:
        self.newest: tuple[int, str] | None = None
        self.findings: list[Finding] = []

    def visit(self, e: Entry) -> None:
        try:
            t = parse_iso(e.at)
        except ValueError:
            return
        if self.newest is not None:
            seq, at = self.newest
            back = t < parse_iso(at) - dt.timedelta(seconds=1)
            if back and len(self.findings) < self.LIMIT:
                self.findings.append(
                    Finding(
                        "audit.time_backwards",
                        str(e.seq),
                        "audit_log",
                        f"entry {e.seq} at {e.at} is before entry {seq} at {at}",
                    )
                )
        self.newest = (e.seq, e.at)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b)


def check_rows(rows: list[dict[str, Any]], index: _RowIndex) -> list[Finding]:
    """Catalog rows against the audit log: edited, deleted, unaudited (pure)."""
    found: list[Finding] = []
    present = set()
    for row in rows:
        sha = row["sha256"]
        present.add(sha)
        if sha not in index.mentioned:
            found.append(Finding("catalog.row_unaudited", sha, "recordings"))
            continue
        described = index.described.get(sha)
        if described is None:
            found.append(Finding("catalog.row_unsealed", sha, "recordings"))
            continue
        seq, fields = described
        diff = row_differences(row, fields)
        for k, v in index.tracked.get(sha, {}).items():
            if not _same(v, row.get(k)):
                diff[k] = [v, row.get(k)]
        if diff:
            names = ", ".join(sorted(diff))
            found.append(
                Finding(
                    "catalog.row_edited",
                    sha,
                    "recordings",
                    f"fields differ from the audit log (ingest entry {seq}): {names}",
                    {"fields": diff, "audit_seq": seq},
                )
            )
    for sha, (seq, _) in sorted(index.described.items()):
        if sha not in present and sha not in index.removed:
            found.append(
                Finding("catalog.row_deleted", sha, "recordings", f"stored per audit entry {seq}")
            )
    return found


def check_derivative_rows(rows: list[dict[str, Any]], index: _RowIndex) -> list[Finding]:
    """Finished derivative rows against the transcode's audit entries (pure)."""
    found: list[Finding] = []
    for d in rows:
        audited = index.derivatives.get((d["original_sha256"], d["profile"]))
        subject = f"derivative:{d['id']}"
        if audited is None:
            found.append(Finding("catalog.row_unaudited", subject, "derivatives"))
            continue
        seq, fields = audited
        diff = {k: [v, d.get(k)] for k, v in fields.items() if v != d.get(k)}
        if diff:
            found.append(
                Finding(
                    "catalog.row_edited",
                    subject,
                    "derivatives",
                    f"fields changed since audit entry {seq}: {', '.join(sorted(diff))}",
                    {"fields": diff, "audit_seq": seq},
                )
            )
    return found


def _walk_files(root: Path) -> list[Path]:
    out: list[Path] = []
    if not root.is_dir():
        return out
    for dirpath, _dirs, files in os.walk(root):
        out.extend(Path(dirpath) / f for f in files)
    return out


_TMP = re.compile(r"^\.tmp-(\d+)-(.+)$")


def _being_written(path: Path, known: set[Path]) -> bool:
    """A transcode worker's ``.tmp-<pid>-<final name>`` while that worker is alive and the
    final name belongs to a derivative the catalog knows (a dead worker's leftover is reported:
    the transcode service reaps those at start-up)."""
    m = _TMP.match(path.name)
    if not m or path.with_name(m.group(2)) not in known:
        return False
    try:
        os.kill(int(m.group(1)), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _still_unknown(vault: Vault, db: sqlite_utils.Database, strays: list[Path]) -> list[Finding]:
    """Files seen without a catalog row, asked again after hashing: an ingest or transcode
    batch places its files just before it commits their rows, so a verify running meanwhile
    would otherwise report them."""
    found = []
    for path in strays:
        rel = str(path.relative_to(vault.home))
        known = db.execute(
            "select 1 from recordings where vault_path = ? and state != 'purged' union all"
            " select 1 from derivatives where vault_path = ? and state != 'purged'",
            [rel, rel],
        ).fetchone()
        if known is None and path.exists():
            found.append(
                Finding("file.unknown", path.name, str(path), f"{path.lstat().st_size} bytes")
            )
    return found


def tally_drift(db: sqlite_utils.Database) -> list[tuple[str, str]]:
    """(table, what differs) for each retention tally row that a fresh count of the recordings
    and their case links does not give, or a trigger keeping the tallies that is missing: the
    retention report (R9, R10, R17) must not be read from them as they are."""
    from station.retention import tally

    if not any(t in db.table_names() for t in tally.TABLES):
        return []  # a catalog from before the tallies
    if not tally.usable(db):
        return [("sqlite_master", "a table or trigger keeping the retention tallies is missing")]
    return [(line.split(" ", 1)[0], line) for line in tally.recount(db)[:50]]


def run_verify(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    *,
    sample: int | None = None,
    seed: int | None = None,
    quick: bool = False,
    workers: int | None = None,
    low_priority: bool = False,
    progress: Callable[[VerifyProgress], None] | None = None,
    stop: threading.Event | None = None,
) -> VerifyReport:
    """Check everything; with ``sample`` re-hash only that many randomly chosen files (the
    audit, catalog and checkpoint checks always run in full: they are cheap). With ``quick``
    no file is re-hashed: each one is only checked to exist with its catalog size (after an
    upgrade, where a full re-read of the vault would take hours)."""
    mode = "quick" if quick else ("sample" if sample is not None else "full")
    report = VerifyReport(mode, to_iso(utcnow()))
    say = progress or (lambda _p: None)

    # 1. Audit chain, leaves and the row index in one pass; then every checkpoint.
    say(VerifyProgress("audit"))
    index = _RowIndex()
    replay = protect.Replay()
    times = _TimeOrder()
    custody = CustodyIndex()

    def visit(e: Entry) -> None:
        index.visit(e)
        replay.visit(e.seq, e.data, e.actor, e.event)
        times.visit(e)
        custody.visit(e)

    chain = check_chain(db, visit=visit)
    report.audit_entries = chain.entries
    for p in chain.problems:
        report.findings.append(Finding(_CHAIN_CODES[p.kind], str(p.seq), "audit_log", p.detail))
    report.findings.extend(times.findings)
    for kind, detail in head.check(db, vault.home, chain.entries):
        report.findings.append(
            Finding(
                f"audit.head_{kind}" if kind == "missing" else f"audit.tail_{kind}",
                str(chain.entries),
                str(head.head_path(vault.home)),
                detail,
            )
        )
    n_cp, cp_problems = checkpoint.check_checkpoints(vault, db, settings, chain.leaves)
    report.checkpoints = n_cp
    for cpp in cp_problems:
        report.findings.append(
            Finding(f"checkpoint.{cpp.kind}", str(cpp.size or "?"), cpp.source, cpp.detail)
        )
    report.findings.extend(_key_findings(vault, db))
    if n_cp == 0 and chain.entries:
        report.findings.append(Finding("checkpoint.none", "0", "audit_checkpoints"))
    listed = {r[0] for r in db.execute("select note from audit_checkpoints")}
    for s in checkpoint.stored_checkpoints(vault, db):
        if s.source != "catalog" and s.text not in listed:
            report.findings.append(Finding("checkpoint.unlisted", s.source, "audit_checkpoints"))

    report.findings.extend(custody.findings(vault, db))

    # 2. Catalog rows against the audit log; the protective facts against the replayed log.
    say(VerifyProgress("catalog"))
    for seq, actor, event in replay.unknown_actors[:50]:
        report.findings.append(
            Finding("audit.actor_unknown", str(seq), "audit_log", f"{event} by {actor!r}")
        )
    for rp in protect.compare(db, replay):
        report.findings.append(
            Finding(
                f"protected.row_{rp.kind}",
                rp.key,
                rp.table,
                f"sealed by audit entry {rp.seq}" if rp.seq else "no sealing audit entry",
                {"fields": rp.fields, "audit_seq": rp.seq} if rp.fields else None,
            )
        )
    for table, detail in tally_drift(db):
        report.findings.append(Finding("catalog.tally_drift", table, table, detail))
    rows = [dict(r) for r in db.query("select * from recordings")]
    report.recordings = len(rows)
    report.findings.extend(check_rows(rows, index))
    if "derivatives" in db.table_names():
        done = [
            dict(r)
            for r in db.query(
                "select id, original_sha256, profile, sha256, size, vault_path from derivatives"
                " where state = 'done'"
            )
        ]
        report.findings.extend(check_derivative_rows(done, index))

    # 3. Files: originals and derivatives against their catalog hashes; unknown files.
    jobs: list[HashJob] = []
    expected: dict[str, tuple[str, int, str]] = {}  # key -> (sha256, size, kind)
    known: set[Path] = set()
    freed = freed_paths(db)  # only in the central store now (fleet): checked there, not here
    for r in rows:
        path = vault.home / r["vault_path"]
        if r["state"] == "purged" or r["vault_path"] in freed:
            continue
        # pending_purge: the retention executor leaves the file in place, read-only, through
        # the grace period (R9), so it is checked like any other.
        known.add(path)
        jobs.append(HashJob(path, r["sha256"]))
        expected[r["sha256"]] = (r["sha256"], r["size"], "file")
        try:
            mode = path.stat().st_mode
            if mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
                report.findings.append(
                    Finding("file.writable", r["sha256"], str(path), f"mode {mode & 0o777:o}")
                )
        except OSError:
            pass  # reported by the hash pass
    if "derivatives" in db.table_names():
        for d in db.query(
            "select id, original_sha256, sha256, size, vault_path, state from derivatives"
            " where vault_path is not null and state != 'purged'"
        ):
            path = vault.home / d["vault_path"]
            known.add(path)
            if d["state"] != "done" or d["vault_path"] in freed:
                continue  # being written: known, not yet hashable
            key = f"derivative:{d['id']}"
            jobs.append(HashJob(path, key))
            expected[key] = (d["sha256"], d["size"], "derivative")
    strays = [
        p
        for p in _walk_files(vault.originals) + _walk_files(vault.archival)
        if p not in known and not _being_written(p, known)
    ]
    report.files_total = len(jobs)
    if quick:
        report.findings.extend(_stat_only(jobs, expected))
        report.findings.extend(_still_unknown(vault, db, strays))
        report.finished_at = to_iso(utcnow())
        say(VerifyProgress("done", 0, len(jobs)))
        _log_findings(report)
        return report
    if sample is not None:
        jobs = random.Random(seed).sample(jobs, min(sample, len(jobs)))

    prog = VerifyProgress("files", files_total=len(jobs))
    prog.bytes_total = sum(expected[j.key][1] or 0 for j in jobs)
    say(prog)

    def on_result(res: HashResult) -> None:
        prog.files_done += 1
        prog.bytes_done += res.size
        say(prog)

    for res in hash_many(
        jobs, workers=workers, low_priority=low_priority, stop=stop, on_result=on_result
    ):
        report.files_checked += 1
        report.bytes_checked += res.size
        want_sha, want_size, kind = expected[res.job.key]
        subject = res.job.key.removeprefix("derivative:")
        where = str(res.job.path)
        if res.error == "missing":
            report.findings.append(Finding(f"{kind}.missing", subject, where))
        elif res.error is not None:
            code = "file.unreadable" if kind == "file" else "derivative.changed"
            report.findings.append(Finding(code, subject, where, res.error))
        elif res.sha256 != want_sha or res.size != want_size:
            report.findings.append(
                Finding(
                    f"{kind}.changed",
                    subject,
                    where,
                    f"sha256 now {res.sha256}, size {res.size} (catalog: {want_size})",
                    {"expected": want_sha, "actual": res.sha256},
                )
            )
    if stop is not None and stop.is_set():
        report.aborted = "stopped"
    report.findings.extend(_still_unknown(vault, db, strays))
    report.finished_at = to_iso(utcnow())
    say(VerifyProgress("done", prog.files_done, prog.files_total, prog.bytes_done))
    _log_findings(report)
    return report


def _log_findings(report: VerifyReport) -> None:
    for f in report.findings:
        log.warning(
            "verify.finding", code=f.code, subject=f.subject, where=f.where, detail=f.detail
        )


def _stat_only(jobs: list[HashJob], expected: dict[str, tuple[str, int, str]]) -> list[Finding]:
    """Quick mode: each file present with its catalog size (no content read)."""
    found: list[Finding] = []
    for job in jobs:
        _sha, size, kind = expected[job.key]
        subject = job.key.removeprefix("derivative:")
        try:
            st = job.path.stat()
        except FileNotFoundError:
            found.append(Finding(f"{kind}.missing", subject, str(job.path)))
            continue
        except OSError as exc:
            code = "file.unreadable" if kind == "file" else "derivative.changed"
            found.append(Finding(code, subject, str(job.path), exc.strerror or str(exc)))
            continue
        if size is not None and st.st_size != size:
            found.append(
                Finding(
                    f"{kind}.changed",
                    subject,
                    str(job.path),
                    f"size {st.st_size} (catalog: {size})",
                )
            )
    return found


def record_verify(
    db: sqlite_utils.Database,
    report: VerifyReport,
    *,
    actor: str,
    now: dt.datetime | None = None,
) -> int:
    """Write the verify run to the audit log, so that the checks themselves leave a trace."""
    with write_txn(db):
        return append(
            db,
            "integrity.verified",
            actor=actor,
            subject=None,
            at=to_iso(now) if now else None,
            data={
                "ok": report.ok,
                "mode": report.mode,
                "files_checked": report.files_checked,
                "bytes_checked": report.bytes_checked,
                "audit_entries": report.audit_entries,
                "checkpoints": report.checkpoints,
                "counts": report.counts(),
                "aborted": report.aborted,
                "started_at": report.started_at,
                "finished_at": report.finished_at,
            },
        )


def verify_due(db: sqlite_utils.Database, settings: Settings, now: dt.datetime) -> bool:
    # a quick or sampled verify (after an upgrade, by hand) does not stand in for the full one
    row = db.execute(
        "select at from audit_log where event = 'integrity.verified'"
        " and coalesce(json_extract(data, '$.mode'), 'full') = 'full'"
        " order by seq desc limit 1"
    ).fetchone()
    if row is None:
        return True
    return now - parse_iso(row[0]) >= dt.timedelta(hours=settings.audit.verify_interval_hours)


def periodic_verify(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    *,
    actor: str = "station",
    now: dt.datetime | None = None,
    progress: Callable[[VerifyProgress], None] | None = None,
    stop: threading.Event | None = None,
) -> VerifyReport | None:
    """For the daemon's timer: when ``audit.verify_interval_hours`` have passed since the last
    verify, run a full one at low priority, record it, and log the outcome. None if not due."""
    now = now or utcnow()
    if not verify_due(db, settings, now):
        return None
    report = run_verify(vault, db, settings, low_priority=True, progress=progress, stop=stop)
    if report.aborted is None:
        record_verify(db, report, actor=actor, now=now)
    level = log.info if report.ok else log.error
    level("verify.completed", ok=report.ok, counts=report.counts(), files=report.files_checked)
    return report
