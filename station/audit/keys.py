"""The station's audit signing key and its history (R7).

The key (``keys/audit-ed25519.pem``, 0600) is made once, on the first checkpoint of a fresh
station (no verifier key, no checkpoint yet). It is never made again behind anyone's back: a
missing, unreadable or swapped key file is an alert (``station devices alerts``) and a clear
error, and no checkpoint is signed until an administrator acts:

- put the key back from its backup, or
- ``station checkpoint rotate-key``: the old key signs a statement naming the new one (and the new
  key signs it too), entered in the log as ``audit.key_rotated``; the old key then signs one last
  checkpoint covering that entry, and the new key signs from the next entry on;
- ``station checkpoint rotate-key --old-key-lost --note …``: when the old key is gone for good,
  a new one is entered as ``audit.key_replaced`` with the note (``station verify`` keeps showing
  it as ``audit.key_lost``); checkpoints signed by the old key stay checkable with its verifier
  key, which the log keeps.

Every key change is an audit entry with subject ``audit-key`` naming the new verifier key (and
the old one): ``history`` reads them, so ``station verify`` checks each checkpoint against the key
that was current for its size; the first key is the one the first change replaced, or before
any change the verifier key file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from station.audit import note
from station.config import Settings
from station.errors import IntegrityError
from station.log import get
from station.vault import Vault, hand_to_owner

log = get()

KEY_FILE = "audit-ed25519.pem"
VKEY_FILE = "audit-ed25519.vkey"
NEXT_FILE = "audit-ed25519.pem.next"
SUBJECT = "audit-key"
EVENTS = ("audit.key_rotated", "audit.key_replaced")


class SigningKeyError(IntegrityError):
    """The station's signing key is missing, unreadable or not the one in the log /
    签名密钥缺失、无法读取或与审计记录不符."""


@dataclass(frozen=True)
class KeyEvent:
    seq: int
    event: str
    vkey: str

    @property
    def effective_from(self) -> int:
        """The smallest tree size this key may sign: a rotated-to key signs only trees that
        go past its rotation entry (the old key signs the tree ending with it)."""
        return self.seq + 1 if self.event == "audit.key_rotated" else self.seq


def history(db: sqlite_utils.Database, vault: Vault | None = None) -> list[KeyEvent]:
    """The keys in the order they were current. The first key is the one the first rotation
    replaced (``old_vkey`` / ``lost_vkey``) or, before any rotation, the verifier key file
    (``vault``); it counts from tree size 0."""
    import json

    out: list[KeyEvent] = []
    first: str | None = None
    for seq, event, data in db.execute(
        "select seq, event, data from audit_log where subject = ? order by seq", [SUBJECT]
    ):
        if event not in EVENTS:
            continue
        try:
            body = json.loads(data)
        except ValueError:
            continue
        if not isinstance(body, dict) or not isinstance(body.get("new_vkey"), str):
            continue
        if not out and first is None:
            old = body.get("old_vkey") or body.get("lost_vkey")
            first = old if isinstance(old, str) else None
        out.append(KeyEvent(int(seq), str(event), body["new_vkey"]))
    if not out and vault is not None:
        path = vault.keys / VKEY_FILE
        first = path.read_text().strip() if path.exists() else None
    if first:
        out.insert(0, KeyEvent(0, "genesis", first))
    return out


def current_for(events: list[KeyEvent], size: int) -> str | None:
    """The verifier key that was current when a checkpoint of ``size`` entries was signed."""
    found: str | None = None
    for i, e in enumerate(events):
        if i == 0 or e.effective_from <= size:
            found = e.vkey
    return found


def _vkey(settings: Settings, key: Ed25519PrivateKey) -> str:
    return note.verifier_key(key_name(settings), key.public_key())


def _write(path: Path, data: bytes, mode: int) -> None:
    write_durably(path, data, mode)


def safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text) or "station"


def key_name(settings: Settings) -> str:
    return f"{safe_id(settings.station.id)}-audit"


def write_durably(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)  # a leftover of a crash may be read-only
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        hand_to_owner(tmp)
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


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _alert(db: sqlite_utils.Database, what: str, path: Path, detail: str) -> None:
    from station.audit.alerts import raise_alert

    log.error("audit.key_unusable", problem=what, path=str(path), detail=detail)
    if _open_alert(db, f"audit_key_{what}"):
        return  # one open alert is enough: the timer must not raise one every hour
    zh = {"missing": "缺失", "unreadable": "无法读取", "replaced": "被替换"}[what]
    raise_alert(
        db,
        f"audit_key_{what}",
        f"审计签名密钥{zh}，无法签发检查点 / the audit signing key is {what}: no checkpoint can "
        f"be signed ({detail})",
        data={"path": str(path)},
    )


def _open_alert(db: sqlite_utils.Database, code: str) -> bool:
    return (
        db.execute(
            "select 1 from alerts where code = ? and acknowledged_at is null", [code]
        ).fetchone()
        is not None
    )


def _load_file(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 key")
    return key


def _fresh(vault: Vault, db: sqlite_utils.Database) -> bool:
    """Never signed anything: no key in the log, no verifier key file, no checkpoint."""
    return (
        not history(db)
        and not (vault.keys / VKEY_FILE).exists()
        and db.execute("select count(*) from audit_checkpoints").fetchone()[0] == 0
        and not any((vault.home / "checkpoints").glob("*.note"))
    )


def finish_rotation(vault: Vault, settings: Settings, db: sqlite_utils.Database) -> None:
    """A rotation interrupted after its audit entry: put the new key in place; before it: drop
    the unannounced new key."""
    nxt = vault.keys / NEXT_FILE
    if not nxt.exists():
        return
    try:
        key = _load_file(nxt)
    except (OSError, ValueError):
        nxt.unlink(missing_ok=True)
        return
    events = history(db)
    vkey = _vkey(settings, key)
    if events and events[-1].vkey == vkey:
        _write(vault.keys / VKEY_FILE, (vkey + "\n").encode(), 0o644)
        os.replace(nxt, vault.keys / KEY_FILE)
        log.info("audit.key_rotation_finished", vkey=vkey)
    else:
        nxt.unlink()


def signing_key(vault: Vault, settings: Settings, db: sqlite_utils.Database) -> Ed25519PrivateKey:
    """The key to sign with now; made (and announced) only on a fresh station."""
    finish_rotation(vault, settings, db)
    path = vault.keys / KEY_FILE
    try:
        key = _load_file(path)
    except FileNotFoundError:
        if _fresh(vault, db):
            return _create(vault, settings, db)
        _alert(db, "missing", path, "deleted or moved")
        raise SigningKeyError(
            f"审计签名密钥缺失 / the audit signing key is missing: {path}; not making a new one "
            "over the old verifier key",
            where=str(path),
            hint="restore it from its backup, or (admin) `station checkpoint rotate-key "
            "--old-key-lost --note …`",
        ) from None
    except (OSError, ValueError, TypeError) as exc:
        _alert(db, "unreadable", path, str(exc))
        raise SigningKeyError(
            f"审计签名密钥无法读取 / the audit signing key cannot be read: {exc}",
            where=str(path),
            hint="check its permissions (0600, the station's owner) or restore it from backup",
        ) from exc
    vkey = _vkey(settings, key)
    events = history(db, vault)
    if events:
        if events[-1].vkey != vkey:
            _alert(db, "replaced", path, "not the key the audit log names")
            raise SigningKeyError(
                "审计签名密钥与审计记录不符 / the signing key is not the one the audit log names "
                "as current: replaced outside the station",
                where=str(path),
                hint="restore the right key, or rotate with `station checkpoint rotate-key`",
            )
    else:  # a verifier key file lost while the key stayed: write it again from the key
        _write(vault.keys / VKEY_FILE, (vkey + "\n").encode(), 0o644)
    return key


def _create(vault: Vault, settings: Settings, db: sqlite_utils.Database) -> Ed25519PrivateKey:
    vault.keys.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    _write(vault.keys / KEY_FILE, _pem(key), 0o600)
    vkey = _vkey(settings, key)
    _write(vault.keys / VKEY_FILE, (vkey + "\n").encode(), 0o644)
    log.info("audit.key_created", path=str(vault.keys / KEY_FILE), vkey=vkey)
    return key


def verifiers(vault: Vault, settings: Settings, db: sqlite_utils.Database) -> list[note.Verifier]:
    """Every verifier key the station has had (the log's history, else the vkey file)."""
    seen: dict[str, note.Verifier] = {}
    for e in history(db, vault):
        seen.setdefault(e.vkey, note.parse_verifier_key(e.vkey))
    path = vault.keys / VKEY_FILE
    if path.exists():
        text = path.read_text().strip()
        seen.setdefault(text, note.parse_verifier_key(text))
    return list(seen.values())


def open_any(text: str, candidates: list[note.Verifier]) -> tuple[note.Checkpoint, note.Verifier]:
    first: IntegrityError | None = None
    for v in candidates:
        try:
            return note.open_checkpoint(text, v), v
        except IntegrityError as exc:
            if first is None or "signature is wrong" in exc.message:
                first = exc
    raise first or IntegrityError("没有可用的验证公钥 / no verifier key known")
