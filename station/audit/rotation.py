"""Rotating the audit signing key in the open (the steps are in ``station.audit.keys``): the
old key signs a statement naming the new one and one last checkpoint, all as audit entries."""

from __future__ import annotations

import base64

import sqlite_utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from station.audit.checkpoint import Stored, make_checkpoint
from station.audit.keys import (
    KEY_FILE,
    NEXT_FILE,
    SUBJECT,
    SigningKeyError,
    _pem,
    _vkey,
    _write,
    finish_rotation,
    history,
    signing_key,
)
from station.audit.log import append
from station.catalog import write_txn
from station.config import Settings
from station.log import get
from station.timeutil import to_iso, utcnow
from station.vault import Vault

log = get()


def rotate(
    vault: Vault,
    settings: Settings,
    db: sqlite_utils.Database,
    *,
    actor: str,
    old_key_lost: bool = False,
    reason: str | None = None,
) -> tuple[str | None, str, Stored | None]:
    """Replace the signing key, in the open (see the module docstring). Returns the old and new
    verifier keys and the old key's last checkpoint."""
    finish_rotation(vault, settings, db)
    events = history(db, vault)
    lost = events[-1].vkey if events else None
    new = Ed25519PrivateKey.generate()
    new_vkey = _vkey(settings, new)
    if old_key_lost:
        if not reason or not reason.strip():
            raise SigningKeyError("须说明密钥丢失的情况 / say what happened", where="--note")
        if (vault.keys / KEY_FILE).exists():
            raise SigningKeyError(
                "密钥仍在，请用正常轮换 / the key file is still there: rotate normally",
                where=str(vault.keys / KEY_FILE),
            )
        _write(vault.keys / NEXT_FILE, _pem(new), 0o600)
        with write_txn(db):
            append(
                db,
                "audit.key_replaced",
                actor=actor,
                subject=SUBJECT,
                data={"lost_vkey": lost, "new_vkey": new_vkey, "note": reason},
            )
        finish_rotation(vault, settings, db)
        log.warning("audit.key_replaced", lost=lost, new=new_vkey, by=actor)
        return lost, new_vkey, None
    old = signing_key(vault, settings, db)
    old_vkey = _vkey(settings, old)
    at = to_iso(utcnow())
    statement = f"bodycam-station audit key rotation\nold {old_vkey}\nnew {new_vkey}\nat {at}\n"
    _write(vault.keys / NEXT_FILE, _pem(new), 0o600)
    with write_txn(db):
        append(
            db,
            "audit.key_rotated",
            actor=actor,
            subject=SUBJECT,
            data={
                "old_vkey": old_vkey,
                "new_vkey": new_vkey,
                "statement": statement,
                "old_signature": base64.b64encode(old.sign(statement.encode())).decode(),
                "new_signature": base64.b64encode(new.sign(statement.encode())).decode(),
                "reason": reason,
            },
        )
    last = make_checkpoint(vault, db, settings, force=True, key=old)
    finish_rotation(vault, settings, db)
    log.info("audit.key_rotated", old=old_vkey, new=new_vkey, by=actor)
    return old_vkey, new_vkey, last
