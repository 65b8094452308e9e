"""Signed checkpoints of the audit log (R7): made on demand and on a schedule, kept twice in the
vault (the ``audit_checkpoints`` table and one file each under ``checkpoints/``), exportable.

A checkpoint commits to the first N audit entries. Anyone holding a copy (on a disc, a USB
stick, on paper) can later check that the station's log still starts with exactly those entries:
deleting or editing an old entry, even with the triggers dropped and the chain re-hashed, cannot
keep the signed root (``station verify``, ``station checkpoint verify FILE``).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from station.audit import merkle, note
from station.audit.tree import check_chain
from station.catalog import write_txn
from station.config import Settings
from station.errors import IntegrityError
from station.log import get
from station.timeutil import parse_iso, to_iso, utcnow
from station.vault import Vault

log = get()

KEY_FILE = "audit-ed25519.pem"
VKEY_FILE = "audit-ed25519.vkey"


def checkpoints_dir(vault: Vault) -> Path:
    return vault.home / "checkpoints"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text) or "station"


def log_origin(settings: Settings) -> str:
    """The checkpoint origin line: names this station's audit log."""
    return f"bodycam-station/{_safe(settings.station.id)}/audit"


def key_name(settings: Settings) -> str:
    return f"{_safe(settings.station.id)}-audit"


def _write_durably(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def signing_key(vault: Vault, settings: Settings) -> Ed25519PrivateKey:
    """The station's Ed25519 key in ``keys/`` (created on first use, mode 0600)."""
    path = vault.keys / KEY_FILE
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise IntegrityError("the station key is not an Ed25519 key", where=str(path))
        return key
    vault.keys.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_durably(path, pem, 0o600)
    vkey = note.verifier_key(key_name(settings), key.public_key())
    _write_durably(vault.keys / VKEY_FILE, (vkey + "\n").encode(), 0o644)
    log.info("audit.key_created", path=str(path), vkey=vkey)
    return key


def station_verifier(vault: Vault, settings: Settings) -> note.Verifier:
    path = vault.keys / VKEY_FILE
    if not path.exists():
        signing_key(vault, settings)
    return note.parse_verifier_key(path.read_text())


@dataclass(frozen=True)
class Stored:
    size: int
    root_hash: str
    made_at: str
    text: str
    source: str  # "catalog" | file path


def make_checkpoint(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    *,
    now: dt.datetime | None = None,
    force: bool = False,
) -> Stored:
    """Sign the current log. Without ``force``, an unchanged log returns the last checkpoint."""
    at = to_iso(now or utcnow())
    key = signing_key(vault, settings)
    with write_txn(db):  # a consistent snapshot: no entry lands between hashing and storing
        last = latest(db)
        chain = check_chain(db)
        size = chain.entries
        if last is not None and last.size == size and not force:
            return last
        root = merkle.root(chain.leaves)
        body = note.checkpoint_body(log_origin(settings), size, root, [f"time {at}"])
        text = note.sign_note(body, key_name(settings), key)
        kid = note.key_id(key_name(settings), note.public_bytes(key.public_key())).hex()
        db.execute(
            "insert into audit_checkpoints (size, root_hash, made_at, key_id, note)"
            " values (?, ?, ?, ?, ?)",
            [size, root.hex(), at, kid, text],
        )
        folder = checkpoints_dir(vault)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{size:012d}-{at.replace(':', '')}.note"
        _write_durably(path, text.encode(), 0o444)
    log.info("audit.checkpoint_made", size=size, root=root.hex(), file=str(path))
    return Stored(size, root.hex(), at, text, str(path))


def latest(db: sqlite_utils.Database) -> Stored | None:
    row = db.execute(
        "select size, root_hash, made_at, note from audit_checkpoints order by id desc limit 1"
    ).fetchone()
    return Stored(row[0], row[1], row[2], row[3], "catalog") if row else None


def latest_checkpoint_text(vault: Vault, db: sqlite_utils.Database) -> str | None:
    """The newest signed checkpoint as text (for discs, exports, print-outs); None if none yet."""
    last = latest(db)
    return last.text if last else None


def stored_checkpoints(vault: Vault, db: sqlite_utils.Database) -> list[Stored]:
    """Every checkpoint kept by the station: catalog rows and files (the files survive a wiped
    table, the table survives deleted files); duplicates by text removed."""
    seen: dict[str, Stored] = {}
    for size, root_hash, made_at, text in db.execute(
        "select size, root_hash, made_at, note from audit_checkpoints order by id"
    ):
        seen.setdefault(text, Stored(size, root_hash, made_at, text, "catalog"))
    folder = checkpoints_dir(vault)
    if folder.is_dir():
        for path in sorted(folder.glob("*.note")):
            text = path.read_text(encoding="utf-8", errors="replace")
            if text not in seen:
                seen[text] = Stored(-1, "", "", text, str(path))
    return list(seen.values())


def maybe_checkpoint(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, *, now: dt.datetime | None = None
) -> Stored | None:
    """For the daemon's timer: sign a new checkpoint when the last one is older than
    ``audit.checkpoint_interval_minutes`` and the log has grown since. Returns it, or None."""
    now = now or utcnow()
    last = latest(db)
    if last is not None:
        age = now - parse_iso(last.made_at)
        if age < dt.timedelta(minutes=settings.audit.checkpoint_interval_minutes):
            return None
        size = int(db.execute("select count(*) from audit_log").fetchone()[0])
        if size == last.size:
            return None
    return make_checkpoint(vault, db, settings, now=now)


def export_checkpoint(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, dest: Path
) -> Path:
    """Write the newest checkpoint and the station's verifier key into folder ``dest``."""
    last = make_checkpoint(vault, db, settings)  # the newest, signed now if the log grew
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / f"checkpoint-{_safe(settings.station.id)}-{last.size}.note"
    _write_durably(out, last.text.encode(), 0o644)
    vkey = station_verifier(vault, settings)
    _write_durably(
        dest / f"{key_name(settings)}.vkey",
        (note.verifier_key(vkey.name, vkey.key) + "\n").encode(),
        0o644,
    )
    log.info("audit.checkpoint_exported", size=last.size, to=str(out))
    return out


@dataclass(frozen=True)
class CheckpointProblem:
    kind: str  # forged | foreign | truncated | rewritten
    source: str
    size: int | None
    detail: str


def check_checkpoints(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, leaves: list[bytes]
) -> tuple[int, list[CheckpointProblem]]:
    """Is the log (its leaf hashes) consistent with every checkpoint the station kept?"""
    verifier = station_verifier(vault, settings)
    stored = stored_checkpoints(vault, db)
    problems: list[CheckpointProblem] = []
    opened: list[tuple[Stored, note.Checkpoint]] = []
    for s in stored:
        try:
            cp = note.open_checkpoint(s.text, verifier)
        except IntegrityError as exc:
            problems.append(CheckpointProblem("forged", s.source, None, exc.message))
            continue
        if cp.origin != log_origin(settings):
            problems.append(
                CheckpointProblem("foreign", s.source, cp.size, f"origin {cp.origin!r}")
            )
            continue
        opened.append((s, cp))
    roots = merkle.prefix_roots(leaves, [cp.size for _, cp in opened])
    for s, cp in opened:
        if cp.size > len(leaves):
            problems.append(
                CheckpointProblem(
                    "truncated",
                    s.source,
                    cp.size,
                    f"signed {cp.size} entries, the log has only {len(leaves)}",
                )
            )
        elif roots[cp.size] != cp.root:
            problems.append(
                CheckpointProblem(
                    "rewritten",
                    s.source,
                    cp.size,
                    f"the first {cp.size} entries no longer hash to the signed root",
                )
            )
    return len(stored), problems


@dataclass(frozen=True)
class ExternalCheck:
    checkpoint_size: int
    log_size: int
    consistent: bool
    proof: list[str]  # hex, RFC 6962 consistency proof from the checkpoint to the current log
    current_root: str


def verify_external(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    text: str,
    vkey: str | None = None,
) -> ExternalCheck:
    """Check a checkpoint kept off the station (disc, USB stick) against the current log: its
    signature (the station's key, or ``vkey``), then a consistency proof to the current tree."""
    verifier = note.parse_verifier_key(vkey) if vkey else station_verifier(vault, settings)
    cp = note.open_checkpoint(text, verifier)
    leaves = check_chain(db).leaves
    if cp.size > len(leaves):
        return ExternalCheck(cp.size, len(leaves), False, [], merkle.root(leaves).hex())
    proof = merkle.consistency_proof(leaves, cp.size)
    current = merkle.root(leaves)
    ok = merkle.verify_consistency(cp.size, len(leaves), proof, cp.root, current)
    return ExternalCheck(cp.size, len(leaves), ok, [p.hex() for p in proof], current.hex())
