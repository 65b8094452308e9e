"""Signed checkpoints (R7): the C2SP note format against the Go reference vector, signing,
forgery, and the consistency check that catches a rewritten history."""

from __future__ import annotations

import base64
import datetime as dt
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from station.audit import append, checkpoint, merkle, note
from station.audit.tree import check_chain
from station.catalog import write_txn
from station.config import Settings
from station.errors import IntegrityError
from station.vault import Vault

# golang.org/x/mod/sumdb/note: the reference example of a signed note.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def fill(db: sqlite_utils.Database, n: int, start: int = 0) -> None:
    with write_txn(db):
        for i in range(start, start + n):
            append(db, "test.event", actor="tester", subject=f"s{i}", data={"i": i, "名": "值"})


def test_signed_note_matches_go_reference() -> None:
    key = Ed25519PrivateKey.from_private_bytes(GO_SEED)
    assert note.verifier_key("PeterNeumann", key.public_key()) == GO_VKEY
    assert note.sign_note(GO_TEXT, "PeterNeumann", key) == GO_NOTE
    # The reference note verifies with the reference key; one changed letter does not.
    body, sigs = note._split_note(GO_NOTE)
    assert body == GO_TEXT and sigs[0][0] == "PeterNeumann"
    with pytest.raises(IntegrityError, match="signature is wrong"):
        note.open_checkpoint(
            GO_NOTE.replace("problem,", "problem;"), note.parse_verifier_key(GO_VKEY)
        )


def test_checkpoint_made_signed_and_stored(vault: Vault, db: sqlite_utils.Database) -> None:
    settings = Settings()
    fill(db, 5)
    cp = checkpoint.make_checkpoint(vault, db, settings)
    lines = cp.text.split("\n")
    assert lines[0] == "bodycam-station/STATION-01/audit"
    assert lines[1] == "5"
    assert base64.b64decode(lines[2]) == merkle.root(check_chain(db).leaves)
    assert lines[3].startswith("time ") and lines[4] == ""
    assert lines[5].startswith("\u2014 STATION-01-audit ")
    opened = note.open_checkpoint(cp.text, checkpoint.station_verifier(vault, settings))
    assert opened.size == 5 and opened.time is not None
    # Kept twice: catalog row and a read-only file; the key is private to the station.
    assert Path(cp.source).read_text() == cp.text
    assert (Path(cp.source).stat().st_mode & 0o777) == 0o444
    assert ((vault.keys / checkpoint.KEY_FILE).stat().st_mode & 0o777) == 0o600
    assert checkpoint.latest_checkpoint_text(vault, db) == cp.text
    # Unchanged log: no new checkpoint; the table refuses edits (R7).
    assert checkpoint.make_checkpoint(vault, db, settings).text == cp.text
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("update audit_checkpoints set size = 4")
    assert checkpoint.check_checkpoints(vault, db, settings, check_chain(db).leaves) == (1, [])


def test_schedule_makes_checkpoints_only_when_due_and_grown(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    settings = Settings()
    t0 = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
    assert checkpoint.latest_checkpoint_text(vault, db) is None
    first = checkpoint.maybe_checkpoint(vault, db, settings, now=t0)
    assert first is not None and first.size == 0
    fill(db, 3)
    assert (
        checkpoint.maybe_checkpoint(vault, db, settings, now=t0 + dt.timedelta(minutes=30)) is None
    )
    later = checkpoint.maybe_checkpoint(vault, db, settings, now=t0 + dt.timedelta(minutes=61))
    assert later is not None and later.size == 3
    # Due but nothing new: no checkpoint.
    assert checkpoint.maybe_checkpoint(vault, db, settings, now=t0 + dt.timedelta(hours=5)) is None


def test_forged_checkpoint_detected(vault: Vault, db: sqlite_utils.Database) -> None:
    """A checkpoint signed with another key under the station's key name is refused."""
    settings = Settings()
    fill(db, 4)
    checkpoint.make_checkpoint(vault, db, settings)
    mallory = Ed25519PrivateKey.generate()
    body = note.checkpoint_body(
        checkpoint.log_origin(settings), 4, merkle.root(check_chain(db).leaves), ["time x"]
    )
    forged = note.sign_note(body, checkpoint.key_name(settings), mallory)
    (checkpoint.checkpoints_dir(vault) / "000000000004-forged.note").write_text(forged)
    total, problems = checkpoint.check_checkpoints(vault, db, settings, check_chain(db).leaves)
    assert total == 2
    assert [p.kind for p in problems] == ["forged"]
    assert "forged" in problems[0].detail or "not signed" in problems[0].detail
    with pytest.raises(IntegrityError):
        checkpoint.verify_external(vault, db, settings, forged)


def test_deleted_audit_row_with_triggers_dropped_breaks_checkpoint(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    """The attack: drop the triggers, delete an entry, re-number and re-hash the
    chain so it looks whole. The chain check passes — the signed checkpoint does not."""
    settings = Settings()
    fill(db, 6)
    cp = checkpoint.make_checkpoint(vault, db, settings)
    fill(db, 2, start=6)
    db.close()

    from station.audit.log import GENESIS, canonical_json, entry_body, entry_hash

    conn = sqlite3.connect(vault.catalog_path)
    conn.execute("drop trigger audit_log_no_delete")
    conn.execute("drop trigger audit_log_no_update")
    conn.execute("delete from audit_log where seq = 3")
    rows = conn.execute("select seq, at, actor, event, subject, data from audit_log order by seq")
    prev = GENESIS
    for new_seq, (old_seq, at, actor, event, subject, data) in enumerate(rows.fetchall(), 1):
        import json

        body = entry_body(new_seq, at, actor, event, subject, json.loads(data), prev)
        digest = entry_hash(body)
        conn.execute(
            "update audit_log set seq = ?, prev_hash = ?, entry_hash = ? where seq = ?",
            [new_seq, prev, digest, old_seq],
        )
        prev = digest
    conn.commit()
    conn.close()
    assert canonical_json({}) == b"{}"

    from station.catalog import open_catalog

    db2 = open_catalog(vault.catalog_path)
    chain = check_chain(db2)
    assert chain.problems == []  # the re-hashed chain alone looks fine
    _total, problems = checkpoint.check_checkpoints(vault, db2, settings, chain.leaves)
    assert [p.kind for p in problems] == ["rewritten"]
    ext = checkpoint.verify_external(vault, db2, settings, cp.text)
    assert not ext.consistent
    db2.close()


def test_external_checkpoint_proves_consistency(vault: Vault, db: sqlite_utils.Database) -> None:
    settings = Settings()
    fill(db, 5)
    cp = checkpoint.make_checkpoint(vault, db, settings)
    fill(db, 9, start=5)
    ext = checkpoint.verify_external(vault, db, settings, cp.text)
    assert ext.consistent and ext.checkpoint_size == 5 and ext.log_size == 14
    root5 = merkle.root(check_chain(db).leaves[:5])
    assert merkle.verify_consistency(
        5, 14, [bytes.fromhex(p) for p in ext.proof], root5, bytes.fromhex(ext.current_root)
    )
    # Truncating the log below a checkpoint is caught too.
    exported = checkpoint.export_checkpoint(vault, db, settings, vault.home.parent / "stick")
    assert exported.read_text().startswith("bodycam-station/STATION-01/audit\n14\n")
    vkey = (exported.parent / "STATION-01-audit.vkey").read_text()
    assert checkpoint.verify_external(vault, db, settings, exported.read_text(), vkey).consistent


def test_checkpoint_cli(vault: Vault, db: sqlite_utils.Database, tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from station.cli import main

    fill(db, 3)
    run = CliRunner().invoke
    home = ["--home", str(vault.home)]
    made = run(main, [*home, "checkpoint", "make", "--json"])
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["size"] == 3
    listed = json.loads(run(main, [*home, "checkpoint", "list", "--json"]).stdout)
    assert [r["size"] for r in listed] == [3]
    shown = json.loads(run(main, [*home, "checkpoint", "show", "--json"]).stdout)
    assert shown["vkey"].startswith("STATION-01-audit+")
    out = run(main, [*home, "checkpoint", "export", "--to", str(tmp_path / "usb"), "--json"])
    exported = json.loads(out.stdout)["file"]
    fill(db, 2, start=3)
    ok = run(main, [*home, "checkpoint", "verify", exported, "--vkey", shown["vkey"]])
    assert ok.exit_code == 0 and "consistent" in ok.output
    # Someone rewrites the first entry's actor (triggers dropped): the kept checkpoint disagrees.
    conn = sqlite3.connect(vault.catalog_path)
    conn.execute("drop trigger audit_log_no_update")
    conn.execute("update audit_log set actor = 'mallory' where seq = 1")
    conn.commit()
    conn.close()
    bad = run(main, [*home, "checkpoint", "verify", exported])
    assert bad.exit_code == 9 and "NOT consistent" in bad.output
    forged = Path(exported).read_text().replace("\n3\n", "\n2\n")
    (tmp_path / "forged.note").write_text(forged)
    refused = run(main, [*home, "checkpoint", "verify", str(tmp_path / "forged.note")])
    assert refused.exit_code == 9 and "forged" in refused.output


def test_prove_cli_gives_checkable_inclusion_proofs(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    import json

    from click.testing import CliRunner

    from station.cli import main

    fill(db, 7)
    out = CliRunner().invoke(main, ["--home", str(vault.home), "checkpoint", "prove", "2", "7"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)
    cp = note.open_checkpoint(got["checkpoint"], checkpoint.station_verifier(vault, Settings()))
    assert [e["seq"] for e in got["entries"]] == [2, 7]
    for e in got["entries"]:
        leaf = merkle.leaf_hash(e["entry"].encode())
        proof = [bytes.fromhex(h) for h in e["proof"]]
        assert merkle.verify_inclusion(e["leaf_index"], cp.size, leaf, proof, cp.root)
    missing = CliRunner().invoke(main, ["--home", str(vault.home), "checkpoint", "prove", "99"])
    assert missing.exit_code == 9 and "not in the first" in missing.output


def test_station_refuses_to_sign_a_tampered_log(vault: Vault, db: sqlite_utils.Database) -> None:
    """A full checkpoint refuses to sign a broken or rewritten log (signing would vouch for the
    tampering); an incremental one only extends the last signed tree, so it never vouches for
    a rewritten history either: the verify finds every checkpoint disagreeing with the log."""
    settings = Settings()
    fill(db, 4)
    first = checkpoint.make_checkpoint(vault, db, settings)
    fill(db, 2, start=4)
    conn = sqlite3.connect(vault.catalog_path)
    conn.execute("drop trigger audit_log_no_update")
    conn.execute("update audit_log set data = '{\"i\":99}' where seq = 2")
    conn.commit()
    with pytest.raises(IntegrityError, match="chain is broken at entry 2"):
        checkpoint.make_checkpoint(vault, db, settings, full=True)
    second = checkpoint.make_checkpoint(vault, db, settings)  # incremental: entries 5 and 6
    assert second.size == 6
    assert merkle.root(check_chain(db).leaves).hex() != second.root_hash
    _n, problems = checkpoint.check_checkpoints(vault, db, settings, check_chain(db).leaves)
    assert sorted(p.size for p in problems if p.kind == "rewritten") == [first.size, 6]
    # Re-hash the whole chain so it looks whole: a full checkpoint is still refused.
    import json

    from station.audit.log import GENESIS, entry_body, entry_hash

    prev = GENESIS
    rows = conn.execute("select seq, at, actor, event, subject, data from audit_log order by seq")
    for seq, at, actor, event, subject, data in rows.fetchall():
        digest = entry_hash(entry_body(seq, at, actor, event, subject, json.loads(data), prev))
        conn.execute(
            "update audit_log set prev_hash = ?, entry_hash = ? where seq = ?", [prev, digest, seq]
        )
        prev = digest
    conn.commit()
    conn.close()
    fill(db, 1, start=6)
    with pytest.raises(IntegrityError, match="no longer extends the last checkpoint"):
        checkpoint.make_checkpoint(vault, db, settings, full=True)
    # …and so is an incremental one: entry 7 no longer links to the last signed entry.
    with pytest.raises(IntegrityError, match="chain is broken at entry 7"):
        checkpoint.make_checkpoint(vault, db, settings)
    assert db.execute("select count(*) from audit_checkpoints").fetchone()[0] == 2


def test_incremental_checkpoint_equals_full(vault: Vault, db: sqlite_utils.Database) -> None:
    settings = Settings()
    sizes = []
    for n in (1, 2, 5, 13, 1):
        fill(db, n, start=sum(sizes))
        sizes.append(n)
        inc = checkpoint.make_checkpoint(vault, db, settings)
        assert inc.root_hash == merkle.root(check_chain(db).leaves).hex()
        assert inc.size == sum(sizes)
    full = checkpoint.make_checkpoint(vault, db, settings, force=True, full=True)
    assert full.root_hash == inc.root_hash
    # A damaged stored range is not trusted: the next checkpoint reads the whole log.
    conn = sqlite3.connect(vault.catalog_path)
    conn.execute("drop trigger audit_checkpoints_no_update")
    conn.execute("update audit_checkpoints set frontier = '[[0, \"00\"]]'")
    conn.commit()
    conn.close()
    fill(db, 3, start=sum(sizes))
    again = checkpoint.make_checkpoint(vault, db, settings)
    assert again.root_hash == merkle.root(check_chain(db).leaves).hex()
