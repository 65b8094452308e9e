"""The audit signing key (R7): never replaced silently; rotated only in the open, the old key
signing the new; each checkpoint checked against the key current for it."""

from __future__ import annotations

import base64
import shutil

import sqlite_utils
from click.testing import CliRunner

from station.audit import checkpoint, keys, note
from station.catalog import open_catalog
from station.cli import main
from station.config import Settings
from station.vault import Vault
from station.verify.run import run_verify
from tests.integrity_support import store_recording

S = Settings()


def cli(vault: Vault, *args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["--home", str(vault.home), *args])
    return res.exit_code, res.output


def findings(vault: Vault) -> dict[str, str]:
    db = open_catalog(vault.catalog_path)
    try:
        return {f.code: f.severity for f in run_verify(vault, db, S).findings}
    finally:
        db.close()


def alerts(db: sqlite_utils.Database) -> list[str]:
    return [r[0] for r in db.execute("select code from alerts order by id")]


def test_deleted_key_is_an_alert_not_a_new_key(vault: Vault, db: sqlite_utils.Database) -> None:
    store_recording(vault, db, b"one")
    checkpoint.make_checkpoint(vault, db, S)
    vkey = (vault.keys / keys.VKEY_FILE).read_text()
    (vault.keys / keys.KEY_FILE).unlink()
    store_recording(vault, db, b"two", seq=2)
    code, out = cli(vault, "checkpoint", "make")
    assert code == 9 and "missing" in out and "rotate-key" in out
    assert not (vault.keys / keys.KEY_FILE).exists()  # no new key made
    assert (vault.keys / keys.VKEY_FILE).read_text() == vkey  # the verifier key untouched
    assert "audit_key_missing" in alerts(db)
    # the same again and again: still refused, still no key; the log stays checkable
    assert cli(vault, "checkpoint", "make")[0] == 9
    assert "checkpoint.forged" not in findings(vault)


def test_unreadable_key_is_an_alert(vault: Vault, db: sqlite_utils.Database) -> None:
    store_recording(vault, db, b"one")
    checkpoint.make_checkpoint(vault, db, S)
    vkey = (vault.keys / keys.VKEY_FILE).read_text()
    (vault.keys / keys.KEY_FILE).chmod(0o600)
    (vault.keys / keys.KEY_FILE).write_text("garbage")
    code, out = cli(vault, "checkpoint", "make")
    assert code == 9 and "cannot be read" in out
    assert (vault.keys / keys.VKEY_FILE).read_text() == vkey
    assert "audit_key_unreadable" in alerts(db)


def test_rotation_old_key_signs_the_new(vault: Vault, db: sqlite_utils.Database) -> None:
    store_recording(vault, db, b"one")
    first = checkpoint.make_checkpoint(vault, db, S)
    old_pem = (vault.keys / keys.KEY_FILE).read_bytes()
    old_vkey = (vault.keys / keys.VKEY_FILE).read_text().strip()
    code, out = cli(vault, "checkpoint", "rotate-key", "--json")
    assert code == 0, out
    new_vkey = (vault.keys / keys.VKEY_FILE).read_text().strip()
    assert new_vkey != old_vkey and (vault.keys / keys.KEY_FILE).read_bytes() != old_pem
    # the rotation entry: the old key's signature over a statement naming the new key
    entry = db.execute(
        "select seq, data from audit_log where event = 'audit.key_rotated'"
    ).fetchone()
    import json

    data = json.loads(entry[1])
    assert data["old_vkey"] == old_vkey and data["new_vkey"] == new_vkey
    old_v = note.parse_verifier_key(old_vkey)
    old_v.key.verify(base64.b64decode(data["old_signature"]), data["statement"].encode())
    # the old key signed one last checkpoint covering the rotation entry
    sizes = [r[0] for r in db.execute("select size from audit_checkpoints order by id")]
    assert sizes == [first.size, entry[0]]
    store_recording(vault, db, b"two", seq=2)
    later = checkpoint.make_checkpoint(vault, db, S)
    cp, v = keys.open_any(later.text, keys.verifiers(vault, S, db))
    assert v.key_id == note.parse_verifier_key(new_vkey).key_id and cp.size > entry[0]
    assert [e.vkey for e in keys.history(db, vault)] == [old_vkey, new_vkey]
    got = findings(vault)
    assert not [c for c, sev in got.items() if sev == "error"], got


def test_checkpoint_by_a_retired_key_is_a_finding(
    vault: Vault, db: sqlite_utils.Database, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    store_recording(vault, db, b"one")
    checkpoint.make_checkpoint(vault, db, S)
    shutil.copy(vault.keys / keys.KEY_FILE, tmp_path / "old.pem")
    assert cli(vault, "checkpoint", "rotate-key")[0] == 0
    store_recording(vault, db, b"two", seq=2)
    stolen = keys._load_file(tmp_path / "old.pem")
    checkpoint.make_checkpoint(vault, db, S, key=stolen, force=True)
    assert findings(vault).get("checkpoint.wrong_key") == "error"


def test_lost_key_replaced_in_the_open(vault: Vault, db: sqlite_utils.Database) -> None:
    store_recording(vault, db, b"one")
    checkpoint.make_checkpoint(vault, db, S)
    (vault.keys / keys.KEY_FILE).unlink()
    code, out = cli(vault, "checkpoint", "rotate-key", "--old-key-lost")
    assert code == 9 and "--note" in out
    code, out = cli(
        vault, "checkpoint", "rotate-key", "--old-key-lost", "--note", "硬盘故障 / disk died"
    )
    assert code == 0, out
    store_recording(vault, db, b"two", seq=2)
    assert cli(vault, "checkpoint", "make")[0] == 0
    got = findings(vault)
    assert got.get("audit.key_lost") == "warning"
    assert not [c for c, sev in got.items() if sev == "error"], got  # old checkpoints still hold


def test_swapped_key_pair_is_not_signed_over(vault: Vault, db: sqlite_utils.Database) -> None:
    """Someone replaces both key files: the station refuses to sign (the old checkpoints do not
    open with the new key) and verify calls the old checkpoints forged."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    store_recording(vault, db, b"one")
    checkpoint.make_checkpoint(vault, db, S)
    other = Ed25519PrivateKey.generate()
    (vault.keys / keys.KEY_FILE).write_bytes(keys._pem(other))
    (vault.keys / keys.VKEY_FILE).write_text(
        note.verifier_key(checkpoint.key_name(S), other.public_key()) + "\n"
    )
    store_recording(vault, db, b"two", seq=2)
    code, out = cli(vault, "checkpoint", "make")
    assert code == 9, out
    assert "checkpoint.forged" in findings(vault)
