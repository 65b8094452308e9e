"""``station verify`` against each tampering case (R7), on a real vault and a real
SQLite file edited from outside the station (Python's sqlite3 standing in for the sqlite3 shell)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from station.audit import checkpoint, merkle, note
from station.audit.log import GENESIS, entry_body, entry_hash
from station.audit.tree import check_chain
from station.catalog import open_catalog
from station.cli import main
from station.config import Settings
from station.vault import Vault
from station.verify import VerifyProgress, periodic_verify, run_verify
from tests.integrity_support import store_derivative, store_recording


@pytest.fixture
def stocked(vault: Vault, db: sqlite_utils.Database) -> list[dict]:
    rows = [store_recording(vault, db, os.urandom(50_000 + i), seq=i) for i in range(1, 6)]
    store_derivative(vault, db, rows[0], b"derivative bytes" * 1000)
    checkpoint.make_checkpoint(vault, db, Settings())
    return rows


def codes(report) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(f.code for f in report.findings)


def shell(vault: Vault, *sql: str) -> None:
    """Edit the catalog from outside the station, as someone with the sqlite3 shell would."""
    conn = sqlite3.connect(vault.catalog_path)
    for stmt in sql:
        conn.execute(stmt)
    conn.commit()
    conn.close()


def test_clean_vault_has_no_findings(vault: Vault, db: sqlite_utils.Database, stocked) -> None:
    report = run_verify(vault, db, Settings())
    assert report.findings == [] and report.ok
    assert report.files_checked == report.files_total == 6
    assert report.bytes_checked == sum(r["size"] for r in stocked) + 16000
    # each ingest: session.started, recording.ingested, session.ended; then derivative.created
    assert report.audit_entries == 3 * 5 + 1 and report.checkpoints == 1


def test_bit_flip_in_original(vault: Vault, db: sqlite_utils.Database, stocked) -> None:
    path = vault.home / stocked[2]["vault_path"]
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[12345] ^= 0x01
    path.write_bytes(bytes(data))
    os.chmod(path, 0o444)
    report = run_verify(vault, db, Settings())
    assert codes(report) == ["file.changed"]
    f = report.findings[0]
    assert f.subject == stocked[2]["sha256"] and f.where == str(path)
    assert "篡改" in f.meaning_zh and "tampered" in f.meaning_en
    assert not report.ok


def test_original_deleted_and_unknown_file(
    vault: Vault, db: sqlite_utils.Database, stocked
) -> None:
    path = vault.home / stocked[1]["vault_path"]
    path.unlink()
    stray = vault.originals / "ff" / "ee" / "planted.mp4"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"not from the station")
    report = run_verify(vault, db, Settings())
    assert codes(report) == ["file.missing", "file.unknown"]
    assert {f.where for f in report.findings} == {str(path), str(stray)}


def test_original_made_writable_is_a_warning(
    vault: Vault, db: sqlite_utils.Database, stocked
) -> None:
    os.chmod(vault.home / stocked[0]["vault_path"], 0o664)
    report = run_verify(vault, db, Settings())
    assert codes(report) == ["file.writable"] and report.ok


def test_catalog_row_edited_with_sqlite_shell(
    vault: Vault, db: sqlite_utils.Database, stocked
) -> None:
    sha = stocked[3]["sha256"]
    # The real sqlite3 shell, as someone at the station's console would use it.
    sql = (
        "update recordings set officer_id = '999999', recorded_at = "
        f"'2026-11-02T00:00:00.000000Z' where sha256 = '{sha}';"
    )
    done = subprocess.run(["sqlite3", str(vault.catalog_path), sql], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = run_verify(vault, db, Settings())
    assert codes(report) == ["catalog.row_edited"]
    f = report.findings[0]
    assert f.subject == sha and f.data is not None
    assert f.data["fields"]["officer_id"] == ["000123", "999999"]
    assert set(f.data["fields"]) == {"officer_id", "recorded_at"}


def test_catalog_row_deleted_and_row_inserted(
    vault: Vault, db: sqlite_utils.Database, stocked
) -> None:
    gone = stocked[4]
    shell(vault, f"delete from recordings where sha256 = '{gone['sha256']}'")
    shell(
        vault,
        "insert into recordings (sha256, size, ext, media_kind, vault_path, original_name,"
        " original_path, ingested_at) values ('" + "ab" * 32 + "', 1, 'mp4', 'video',"
        " 'originals/x.mp4', 'x.mp4', 'x.mp4', '2026-11-01T00:00:00Z')",
    )
    report = run_verify(vault, db, Settings())
    # The deleted row's file is now unknown to the catalog; the inserted row has no file.
    assert codes(report) == [
        "catalog.row_deleted",
        "catalog.row_unaudited",
        "file.missing",
        "file.unknown",
    ]
    by_code = {f.code: f for f in report.findings}
    assert by_code["catalog.row_deleted"].subject == gone["sha256"]
    assert by_code["catalog.row_unaudited"].subject == "ab" * 32


def test_audit_entry_edited_with_triggers_dropped(
    vault: Vault, db: sqlite_utils.Database, stocked
) -> None:
    shell(
        vault,
        "drop trigger audit_log_no_update",
        "update audit_log set actor = 'nobody' where seq = 2",
    )
    report = run_verify(vault, db, Settings())
    assert "audit.entry_edited" in codes(report)
    assert "checkpoint.rewritten" in codes(report)  # the signed root no longer matches


def test_audit_row_deleted_and_chain_rehashed(
    vault: Vault, db: sqlite_utils.Database, stocked
) -> None:
    """Drop the triggers, delete the ingest entry of one recording *and* its row, re-number and
    re-hash the chain, remove the files: only the signed checkpoint can tell — and it does."""
    for i in range(6, 9):  # the log goes on after the checkpoint
        store_recording(vault, db, os.urandom(1000 + i), seq=i)
    victim = stocked[0]["sha256"]
    for p in (*vault.originals.rglob(victim + "*"), *vault.archival.rglob(victim + "*")):
        p.unlink()
    conn = sqlite3.connect(vault.catalog_path)
    conn.execute("drop trigger audit_log_no_delete")
    conn.execute("drop trigger audit_log_no_update")
    conn.execute("delete from derivatives where original_sha256 = ?", [victim])
    conn.execute("delete from recordings where sha256 = ?", [victim])
    conn.execute("delete from audit_log where subject = ?", [victim])
    prev = GENESIS
    rows = conn.execute("select seq, at, actor, event, subject, data from audit_log order by seq")
    for new_seq, (old, at, actor, event, subject, data) in enumerate(rows.fetchall(), 1):
        digest = entry_hash(entry_body(new_seq, at, actor, event, subject, json.loads(data), prev))
        conn.execute(
            "update audit_log set seq = ?, prev_hash = ?, entry_hash = ? where seq = ?",
            [new_seq, prev, digest, old],
        )
        prev = digest
    conn.commit()
    conn.close()
    fresh = open_catalog(vault.catalog_path)
    report = run_verify(vault, fresh, Settings())
    fresh.close()
    # the chain and the files look whole; the signed checkpoint and the head outside the
    # catalog (the log is now shorter than it was) tell
    assert codes(report) == ["audit.tail_truncated", "checkpoint.rewritten"]
    assert "改动、删除或重算" in report.findings[1].meaning_zh
    assert not report.ok


def test_forged_checkpoint_and_wiped_checkpoint_table(
    vault: Vault, db: sqlite_utils.Database, stocked
) -> None:
    settings = Settings()
    leaves = check_chain(db).leaves
    body = note.checkpoint_body(checkpoint.log_origin(settings), 6, merkle.root(leaves), ["t"])
    forged = note.sign_note(body, checkpoint.key_name(settings), Ed25519PrivateKey.generate())
    (checkpoint.checkpoints_dir(vault) / "000000000006-x.note").write_text(forged)
    shell(vault, "drop trigger audit_checkpoints_no_delete", "delete from audit_checkpoints")
    report = run_verify(vault, db, settings)
    assert codes(report) == ["checkpoint.forged", "checkpoint.unlisted", "checkpoint.unlisted"]


def test_derivative_changed(vault: Vault, db: sqlite_utils.Database, stocked) -> None:
    d = db.execute("select vault_path from derivatives").fetchone()[0]
    path = vault.home / d
    os.chmod(path, 0o644)
    path.write_bytes(b"re-encoded by someone else")
    report = run_verify(vault, db, Settings())
    assert codes(report) == ["derivative.changed"]
    assert report.findings[0].subject == "1"  # the derivative's id


def test_audit_tail_deleted(vault: Vault, db: sqlite_utils.Database, stocked) -> None:
    shell(vault, "drop trigger audit_log_no_delete", "delete from audit_log where seq > 4")
    report = run_verify(vault, db, Settings())
    assert "checkpoint.truncated" in codes(report)


def test_sample_progress_stop_and_periodic(
    vault: Vault, db: sqlite_utils.Database, stocked
) -> None:
    seen: list[VerifyProgress] = []
    a = run_verify(vault, db, Settings(), sample=3, seed=7, progress=lambda p: seen.append(p))
    assert a.mode == "sample" and a.files_checked == 3 and a.files_total == 6
    assert [p.phase for p in seen][:3] == ["audit", "catalog", "files"]
    assert seen[-1].phase == "done" and seen[-1].files_done == 3
    stop = threading.Event()
    stop.set()
    b = run_verify(vault, db, Settings(), stop=stop)
    assert b.aborted == "stopped" and b.files_checked == 0
    first = periodic_verify(vault, db, Settings(), actor="daemon")
    assert first is not None and first.ok and first.files_checked == 6
    last = db.execute("select event, actor, data from audit_log order by seq desc").fetchone()
    assert last[0] == "integrity.verified" and last[1] == "daemon"
    assert json.loads(last[2])["files_checked"] == 6
    assert periodic_verify(vault, db, Settings()) is None  # not due again for 24 h


def test_cli_verify_reports_and_exits_9(vault: Vault, db: sqlite_utils.Database, stocked) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["--home", str(vault.home), "verify", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["ok"] is True
    progress = runner.invoke(main, ["--home", str(vault.home), "verify", "--progress"])
    assert progress.exit_code == 0 and "6/6 files" in progress.stderr
    Path(vault.home / stocked[0]["vault_path"]).unlink()
    bad = runner.invoke(main, ["--home", str(vault.home), "verify"])
    assert bad.exit_code == 9
    assert "file.missing" in bad.output and "被绕过采集站删除" in bad.output
    assert "deleted or moved behind the station's back" in bad.output
    js = runner.invoke(main, ["--home", str(vault.home), "verify", "--sample", "2", "--json"])
    data = json.loads(js.stdout)
    assert data["files_checked"] == 2 and data["mode"] == "sample"
    # The sample finds the deleted file exactly when it drew it; the exit code follows.
    drew_it = any(f["code"] == "file.missing" for f in data["findings"])
    assert data["ok"] is not drew_it and js.exit_code == (9 if drew_it else 0)


def test_no_checkpoint_yet_is_reported(vault: Vault, db: sqlite_utils.Database) -> None:
    store_recording(vault, db, b"clip")
    report = run_verify(vault, db, Settings())
    assert codes(report) == ["checkpoint.none"] and report.ok  # info: a hint, not a failure
    assert "station checkpoint make" in report.findings[0].meaning_en


def test_derivative_being_written_is_not_unknown(
    vault: Vault, db: sqlite_utils.Database, stocked
) -> None:
    """A running transcode writes ``.tmp-<pid>-<name>`` beside its final file (station.transcode):
    not an unknown file while its worker lives; a dead worker's leftover is reported."""
    from station.catalog import write_txn

    final = vault.archival_path(stocked[1]["sha256"], "mp4-h264", "mp4")
    final.parent.mkdir(parents=True, exist_ok=True)
    with write_txn(db):
        db.execute(
            "insert into derivatives (original_sha256, profile, vault_path, state, created_at)"
            " values (?, 'ffv1-mkv', ?, 'running', '2026-11-01T00:00:00Z')",
            [stocked[1]["sha256"], str(final.relative_to(vault.home))],
        )
    live = final.with_name(f".tmp-{os.getpid()}-{final.name}")
    live.write_bytes(b"half an mp4")
    assert codes(run_verify(vault, db, Settings())) == []
    gone_pid = (1 << 22) + 1  # above Linux's largest possible pid_max: never alive
    leftover = final.with_name(f".tmp-{gone_pid}-{final.name}")
    live.rename(leftover)
    report = run_verify(vault, db, Settings())
    assert codes(report) == ["file.unknown"] and report.findings[0].where == str(leftover)


def test_file_whose_row_commits_during_the_verify_is_not_unknown(
    vault: Vault, db: sqlite_utils.Database, stocked
) -> None:
    """An ingest batch places its files just before it commits their rows; a verify running
    meanwhile asks again before calling a file unknown."""
    import hashlib

    from tests.integrity_support import store_recording as store
    from tests.recordings import mp4

    late = os.urandom(7000)  # stored as the payload of an MP4 (integrity_support)
    path = vault.original_path(hashlib.sha256(mp4(late)).hexdigest(), "mp4")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(mp4(late))
    path.chmod(0o444)  # placed read-only, as the engine names a verified copy
    committed: list[bool] = []

    def during(p: VerifyProgress) -> None:
        if p.phase == "files" and not committed:
            other = open_catalog(vault.catalog_path)  # the ingest's own connection
            store(vault, other, late, seq=99)
            other.close()
            committed.append(True)

    report = run_verify(vault, db, Settings(), progress=during)
    assert committed and codes(report) == []
    # Without the commit the file is reported.
    path2 = vault.originals / "00" / "00" / "stray.mp4"
    path2.parent.mkdir(parents=True, exist_ok=True)
    path2.write_bytes(b"stray")
    assert codes(run_verify(vault, db, Settings())) == ["file.unknown"]


def test_later_fields_follow_their_audit_entries(
    vault: Vault, db: sqlite_utils.Database, stocked
) -> None:
    """Fields other parts change later — what a recording proves (R5, station.cases), its
    retention state (R9) — are checked against the audit entries of those changes: a change
    through the station is clean, the same change made directly is an edit."""
    from station.cases.tags import tag

    a, b = stocked[0]["sha256"], stocked[1]["sha256"]
    tag(db, [a], actor="li", proves="当事人拒绝配合检查 / party refused the inspection")
    assert codes(run_verify(vault, db, Settings())) == []
    shell(
        vault,
        f"update recordings set proves = '无 / nothing' where sha256 = '{a}'",
        f"update recordings set state = 'purged' where sha256 = '{b}'",  # hide it from verify
    )
    report = run_verify(vault, db, Settings())
    fields = {f.subject: f.data["fields"] for f in report.findings if f.data}
    # …and the file of the row made to look purged is now unknown to the catalog.
    assert codes(report) == ["catalog.row_edited", "catalog.row_edited", "file.unknown"]
    assert fields[a] == {
        "proves": ["当事人拒绝配合检查 / party refused the inspection", "无 / nothing"]
    }
    assert fields[b] == {"state": ["stored", "purged"]}
