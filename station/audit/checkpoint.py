"""Signed checkpoints of the audit log (R7): made on demand and on a schedule, kept twice in the
vault (the ``audit_checkpoints`` table and one file each under ``checkpoints/``), exportable.

A checkpoint commits to the first N audit entries. Anyone holding a copy (on a disc, a USB
stick, on paper) can later check that the station's log still starts with exactly those entries:
deleting or editing an old entry, even with the triggers dropped and the chain re-hashed, cannot
keep the signed root (``station verify``, ``station checkpoint verify FILE``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from station.audit import keys, merkle, note
from station.audit.keys import key_name, safe_id, write_durably
from station.audit.log import GENESIS
from station.audit.tree import ChainResult, check_chain
from station.catalog import write_txn
from station.config import Settings
from station.errors import FileAccessError, IntegrityError
from station.log import get
from station.timeutil import parse_iso, to_iso, utcnow
from station.vault import Vault

log = get()

KEY_FILE = keys.KEY_FILE
VKEY_FILE = keys.VKEY_FILE


def checkpoints_dir(vault: Vault) -> Path:
    return vault.home / "checkpoints"


def log_origin(settings: Settings) -> str:
    """The checkpoint origin line: names this station's audit log."""
    return f"bodycam-station/{safe_id(settings.station.id)}/audit"


def signing_key(vault: Vault, settings: Settings, db: sqlite_utils.Database) -> Ed25519PrivateKey:
    """The station's Ed25519 key in ``keys/`` (mode 0600): made only on a fresh station, never
    again silently (``station.audit.keys``)."""
    return keys.signing_key(vault, settings, db)


def station_verifier(vault: Vault, settings: Settings) -> note.Verifier:
    """The current verifier key (``keys/audit-ed25519.vkey``)."""
    path = vault.keys / VKEY_FILE
    if not path.exists():
        raise keys.SigningKeyError(
            "没有验证公钥 / no verifier key: no checkpoint was ever made here, or it was deleted",
            where=str(path),
        )
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
    full: bool = False,
    key: Ed25519PrivateKey | None = None,
) -> Stored:
    """Sign the current log. Without ``force``, an unchanged log returns the last checkpoint.

    Incremental: the last checkpoint's compact range (checked against its signed root) is
    extended by the entries appended since, whose chain must continue from the last signed
    entry — so the new checkpoint is by construction an append-only extension of the last one.
    ``full`` (or no usable range) re-reads the whole log and checks it against the last
    checkpoint. Either way the station refuses (``IntegrityError``) to sign a broken chain or a
    log that no longer extends its last checkpoint: signing would vouch for the tampering. The
    log is read without the write lock (it is append-only); storing takes a short transaction.
    """
    at = to_iso(now or utcnow())
    key = key or signing_key(vault, settings, db)
    last = latest(db)
    frontier: merkle.Frontier | None = None
    if last is not None and not full:
        frontier, last_hash = _last_frontier(vault, db, settings)
    if frontier is not None:
        chain = check_chain(db, after=frontier.size, prev_hash=last_hash)
        _refuse_broken(chain)
        for leaf in chain.leaves:
            frontier.append(leaf)
    else:
        chain = check_chain(db)
        _refuse_broken(chain)
        frontier = merkle.Frontier()
        for leaf in chain.leaves:
            frontier.append(leaf)
        if last is not None and not _extends(vault, settings, db, last, chain.leaves):
            log.error("audit.checkpoint_refused", problem="inconsistent", last_size=last.size)
            raise IntegrityError(
                "审计日志与上一检查点不一致，拒绝签发 / the log no longer extends the last "
                f"checkpoint ({last.size} entries); not signing",
                hint="run `station verify` and report to the supervisor",
            )
    size = frontier.size
    if last is not None and last.size == size and not force:
        return last
    root = frontier.root()
    body = note.checkpoint_body(log_origin(settings), size, root, [f"time {at}"])
    text = note.sign_note(body, key_name(settings), key)
    kid = note.key_id(key_name(settings), note.public_bytes(key.public_key())).hex()
    folder = checkpoints_dir(vault)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{size:012d}-{at.replace(':', '')}.note"
    with write_txn(db):
        db.table("audit_checkpoints").insert(
            {
                "size": size,
                "root_hash": root.hex(),
                "made_at": at,
                "key_id": kid,
                "note": text,
                "frontier": json.dumps(frontier.to_json()),
                "last_entry_hash": chain.last_hash,
            }
        )
        write_durably(path, text.encode(), 0o444)
    log.info("audit.checkpoint_made", size=size, root=root.hex(), file=str(path))
    return Stored(size, root.hex(), at, text, str(path))


def _refuse_broken(chain: ChainResult) -> None:
    if chain.problems:
        first = chain.problems[0]
        log.error("audit.checkpoint_refused", problem=first.kind, seq=first.seq)
        raise IntegrityError(
            f"the audit chain is broken at entry {first.seq} ({first.kind}); not signing / "
            "审计链已断开，拒绝签发检查点",
            hint="run `station verify` and report to the supervisor",
        )


def _extends(
    vault: Vault, settings: Settings, db: sqlite_utils.Database, last: Stored, leaves: list[bytes]
) -> bool:
    try:
        prev, _ = keys.open_any(last.text, keys.verifiers(vault, settings, db))
    except IntegrityError:
        return False
    return prev.size <= len(leaves) and (
        merkle.prefix_roots(leaves, [prev.size])[prev.size] == prev.root
    )


def _last_frontier(
    vault: Vault, db: sqlite_utils.Database, settings: Settings
) -> tuple[merkle.Frontier | None, str]:
    """The last checkpoint's compact range, if it is stored and folds to the signed root."""
    row = db.execute(
        "select note, frontier, last_entry_hash from audit_checkpoints order by id desc limit 1"
    ).fetchone()
    if row is None or row[1] is None or row[2] is None:
        return None, GENESIS
    try:
        cp, _ = keys.open_any(row[0], keys.verifiers(vault, settings, db))
        f = merkle.Frontier.from_json(cp.size, json.loads(row[1]))
        if f.root() == cp.root:
            return f, str(row[2])
    except (IntegrityError, ValueError, TypeError):
        pass
    log.warning("audit.checkpoint_frontier_unusable")  # fall back to reading the whole log
    return None, GENESIS


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
    vkey = station_verifier(vault, settings)
    out = dest / f"checkpoint-{safe_id(settings.station.id)}-{last.size}.note"
    try:
        dest.mkdir(parents=True, exist_ok=True)
        write_durably(out, last.text.encode(), 0o644)
        write_durably(
            dest / f"{key_name(settings)}.vkey",
            (note.verifier_key(vkey.name, vkey.key) + "\n").encode(),
            0o644,
        )
    except OSError as exc:
        raise FileAccessError(
            f"无法写入检查点 / cannot write the checkpoint: {exc.strerror or exc}",
            where=str(dest),
            hint="choose a folder you can write to (a USB stick mounted read-write)",
        ) from exc
    log.info("audit.checkpoint_exported", size=last.size, to=str(out))
    return out


def stored_any(vault: Vault, db: sqlite_utils.Database) -> bool:
    return bool(stored_checkpoints(vault, db))


@dataclass(frozen=True)
class CheckpointProblem:
    kind: str  # forged | wrong_key | foreign | truncated | rewritten
    source: str
    size: int | None
    detail: str


def check_checkpoints(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, leaves: list[bytes]
) -> tuple[int, list[CheckpointProblem]]:
    """Is the log (its leaf hashes) consistent with every checkpoint the station kept?"""
    events = keys.history(db, vault)
    candidates = keys.verifiers(vault, settings, db) if (events or stored_any(vault, db)) else []
    stored = stored_checkpoints(vault, db)
    problems: list[CheckpointProblem] = []
    opened: list[tuple[Stored, note.Checkpoint]] = []
    for s in stored:
        try:
            cp, v = keys.open_any(s.text, candidates)
        except IntegrityError as exc:
            problems.append(CheckpointProblem("forged", s.source, None, exc.message))
            continue
        want = keys.current_for(events, cp.size)
        if want is not None and note.parse_verifier_key(want).key_id != v.key_id:
            problems.append(
                CheckpointProblem(
                    "wrong_key",
                    s.source,
                    cp.size,
                    f"signed by {v.name}+{v.key_id.hex()}, but the key current for "
                    f"{cp.size} entries was {want.split('+')[1]}",
                )
            )
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
    if vkey:
        cp = note.open_checkpoint(text, note.parse_verifier_key(vkey))
    else:  # any key the station has had: the checkpoint may predate a rotation
        cp, _ = keys.open_any(text, keys.verifiers(vault, settings, db))
    leaves = check_chain(db).leaves
    if cp.size > len(leaves):
        return ExternalCheck(cp.size, len(leaves), False, [], merkle.root(leaves).hex())
    proof = merkle.consistency_proof(leaves, cp.size)
    current = merkle.root(leaves)
    ok = merkle.verify_consistency(cp.size, len(leaves), proof, cp.root, current)
    return ExternalCheck(cp.size, len(leaves), ok, [p.hex() for p in proof], current.hex())


def inclusion_proofs(
    db: sqlite_utils.Database, seqs: list[int], size: int
) -> list[dict[str, object]]:
    """RFC 6962 inclusion proofs of audit entries ``seqs`` in the tree of the first ``size``
    entries (a checkpoint's): with the signed checkpoint, anyone can check that these entries
    are in the station's log, without the rest of it."""
    from station.audit.log import canonical_json
    from station.audit.tree import iter_entries

    leaves: list[bytes] = []
    bodies: dict[int, str] = {}
    wanted = set(seqs)
    for e in iter_entries(db):
        if len(leaves) == size:
            break
        if e.seq in wanted:
            bodies[e.seq] = canonical_json(e.body()).decode()
        leaves.append(e.leaf())
    out: list[dict[str, object]] = []
    for seq in seqs:
        index = seq - 1
        if seq not in bodies or index >= len(leaves):
            raise IntegrityError(f"audit entry {seq} is not in the first {size} entries")
        out.append(
            {
                "seq": seq,
                "leaf_index": index,
                "tree_size": len(leaves),
                "entry": bodies[seq],
                "proof": [p.hex() for p in merkle.inclusion_proof(leaves, index)],
            }
        )
    return out
