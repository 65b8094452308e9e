"""Protective facts under the audit seal (R7, R9–R11, R14): cases, case links, holds, long-term
marks, tags, retention states, tombstones, accounts and device enrolments. Each attack is made
the way a person with a shell would make it — the real ``sqlite3`` shell on the real catalog —
and ``station verify`` must name it. Also: the end of the audit log deleted after the last
checkpoint (tail truncation)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from typing import Any

import pytest
import sqlite_utils

from station.access.users import create_user, disable_user
from station.audit import checkpoint
from station.cases import store, tags
from station.catalog import open_catalog
from station.config import Settings
from station.retention import approval, executor
from station.usb_dock import registry
from station.vault import Vault
from station.verify.run import run_verify
from tests.integrity_support import store_recording

CASE = "城管罚字〔2026〕第 7 号"
UTC = dt.UTC


def sqlite3_shell(vault: Vault, sql: str) -> None:
    """The attacker's tool: Debian's sqlite3 shell, foreign keys off as it starts."""
    subprocess.run(["sqlite3", str(vault.catalog_path)], input=sql, text=True, check=True)


def world(vault: Vault, db: sqlite_utils.Database) -> dict[str, Any]:
    """Every kind of protective fact, made through the station's own code."""
    create_user(db, "admin1", "admin", "admin-pass-1", actor="setup")
    create_user(db, "li", "clerk", "clerk-pass-1", actor="admin1")
    create_user(db, "gone", "clerk", "clerk-pass-2", actor="admin1")
    disable_user(db, "gone", actor="admin1")
    registry.enrol(db, "ZFY0001", officer_id="100001", unit_id="330100000001", actor="admin1")
    registry.seen(db, "ZFY0999", model=None, driver="serial")  # docked once, never enrolled
    shas = [store_recording(vault, db, os.urandom(300), seq=i)["sha256"] for i in range(5)]
    held, marked, linked, routine, purged = shas
    store.create_case(db, CASE, name="占道经营", actor="li", party="张三")
    store.link(db, CASE, [linked], actor="li")
    store.mark_long_term(db, CASE, reason=2, actor="li", note="申请复议")
    tags.hold(db, [held], reason="行政诉讼", actor="li")
    tags.mark_long_term(db, [marked], reason=3, actor="li")
    tags.review(db, [marked], actor="li")
    tags.tag(db, [routine], category="warning", proves="拒不改正", actor="li")
    tags.tag(db, [purged], category="patrol", actor="li")
    s = Settings()
    t1 = dt.datetime(2027, 6, 1, tzinfo=UTC)
    executor.run(vault, db, s, now=t1, actor="station", wall_now=t1)  # propose routine + purged
    approval.approve(  # R9: a supervisor's decision pends them
        vault, db, s, [routine, purged], actor="admin1", reason="巡查录像无保存意义", now=t1
    )
    t2 = t1 + dt.timedelta(days=s.retention.grace_days + 1)
    # restore one so it stays, purge the other
    executor.restore(vault, db, [routine], actor="admin1")
    tags.hold(db, [routine], reason="复核", actor="li")
    executor.run(vault, db, s, now=t2, actor="station", wall_now=t2)
    checkpoint.make_checkpoint(vault, db, s)
    return {"held": held, "marked": marked, "linked": linked, "routine": routine, "purged": purged}


def verify_codes(vault: Vault) -> list[str]:
    fresh = open_catalog(vault.catalog_path)
    try:
        report = run_verify(vault, fresh, Settings())
    finally:
        fresh.close()
    return sorted({f.code for f in report.findings if f.severity == "error"})


def test_untouched_world_verifies_clean(vault: Vault, db: sqlite_utils.Database) -> None:
    w = world(vault, db)
    assert (
        db.execute("select state from recordings where sha256 = ?", [w["purged"]]).fetchone()[0]
        == "purged"
    )
    assert verify_codes(vault) == []


ATTACKS = [
    # (id, SQL made in the sqlite3 shell, the finding verify must give)
    (
        "case-unmarked",
        f"update cases set long_term_reason = null where number = '{CASE}';",
        "protected.row_edited",
    ),
    (
        "case-closed-early",
        f"update cases set status = 'closed', closed_at = "
        f"'2020-01-01T00:00:00.000000Z' where number = '{CASE}';",
        "protected.row_edited",
    ),
    (
        "case-deleted",
        f"delete from case_recordings; delete from cases where number = '{CASE}';",
        "protected.row_deleted",
    ),
    (
        "case-inserted",
        "insert into cases (number, name, status, opened_at, created_by) values "
        "('假-1', 'x', 'open', '2026-01-01T00:00:00.000000Z', 'li');",
        "protected.row_inserted",
    ),
    ("link-deleted", "delete from case_recordings;", "protected.row_deleted"),
    (
        "link-inserted",
        f"insert into case_recordings select '{CASE}', sha256, "
        "'2026-01-01T00:00:00.000000Z', 'li' from recordings where sha256 not in "
        "(select sha256 from case_recordings) limit 1;",
        "protected.row_inserted",
    ),
    (
        "hold-released",
        "update holds set released_at = '2026-02-01T00:00:00.000000Z', released_by = 'li';",
        "protected.row_edited",
    ),
    ("hold-deleted", "delete from holds;", "protected.row_deleted"),
    (
        "hold-inserted",
        "insert into holds (sha256, reason, placed_at, placed_by) select sha256, "
        "'x', '2026-01-01T00:00:00.000000Z', 'li' from recordings limit 1;",
        "protected.row_inserted",
    ),
    ("mark-removed", "update recording_marks set long_term_reason = null;", "protected.row_edited"),
    ("mark-deleted", "delete from recording_marks;", "protected.row_deleted"),
    (
        "tag-edited",
        "update recordings set category = 'routine' where category = 'warning';",
        "catalog.row_edited",
    ),
    (
        "retention-hurried",
        "update retention_items set purge_after = '2000-01-01T00:00:00.000000Z';",
        "protected.row_edited",
    ),
    ("retention-deleted", "delete from retention_items;", "protected.row_deleted"),
    (
        "tombstone-deleted",
        "drop trigger tombstones_no_delete; delete from tombstones;",
        "protected.row_deleted",
    ),
    ("user-promoted", "update users set role = 'admin' where name = 'li';", "protected.row_edited"),
    (
        "user-reenabled",
        "update users set disabled = 0 where name = 'gone';",
        "protected.row_edited",
    ),
    (
        "user-password",
        "update users set password_hash = (select password_hash from users "
        "where name = 'admin1') where name = 'li';",
        "protected.row_edited",
    ),
    (
        "user-inserted",
        "insert into users (name, role, password_hash, created_at, created_by) "
        "select 'ghost', 'admin', password_hash, created_at, 'admin1' from users limit 1;",
        "protected.row_inserted",
    ),
    ("user-deleted", "delete from users where name = 'gone';", "protected.row_deleted"),
    (
        "device-rebound",
        "update devices set officer_id = '999999' where device_id = 'ZFY0001';",
        "protected.row_edited",
    ),
    (
        "device-enrolled",
        "update devices set enrolled = 1 where device_id = 'ZFY0999';",
        "protected.row_inserted",
    ),
    (
        "proposal-forged",
        "update purge_proposals set decided_by = 'ghost', decision_reason = 'x';",
        "protected.row_edited",
    ),
    (
        "device-back-in-service",
        "update devices set service_state = 'retired' where device_id = 'ZFY0001';",
        "protected.row_edited",
    ),
    (
        "user-department-widened",
        "update users set department = '执法一科' where name = 'li';",
        "protected.row_edited",
    ),
    ("device-secret", "update device_secrets set secret_hex = '00';", "protected.row_edited"),
    (
        "device-secret-added",
        "insert into device_secrets values ('ZFY0999', '00', '2026-01-01', 'x');",
        "protected.row_inserted",
    ),
]


@pytest.mark.parametrize(("sql", "code"), [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS])
def test_sqlite3_shell_edit_is_a_finding(
    vault: Vault, db: sqlite_utils.Database, sql: str, code: str
) -> None:
    world(vault, db)
    db.close()
    sqlite3_shell(vault, sql)
    assert code in verify_codes(vault)


def test_every_protected_table_is_attacked() -> None:
    from station.audit.protect import PROTECTED

    attacked = " ".join(a[1] for a in ATTACKS)
    assert all(t in attacked for t in PROTECTED)


def test_tail_truncation_after_the_last_checkpoint(vault: Vault, db: sqlite_utils.Database) -> None:
    """Release a hold after the last checkpoint, then delete that release from the end of the
    log and put the hold back: the checkpoint still matches its prefix, the replayed state
    matches the tables — only the head kept outside the catalog can tell."""
    w = world(vault, db)
    size = int(db.execute("select count(*) from audit_log").fetchone()[0])
    tags.release(db, [w["held"]], actor="li", note="结案")
    db.close()
    sqlite3_shell(
        vault,
        "drop trigger audit_log_no_delete;"
        f" delete from audit_log where seq > {size};"
        " update holds set released_at = null, released_by = null, release_note = null;",
    )
    assert verify_codes(vault) == ["audit.tail_truncated"]


def test_tail_rewritten_is_a_finding(vault: Vault, db: sqlite_utils.Database) -> None:
    """Delete the newest entry and append a different one in its place (the chain recomputed
    the way the station does): the head's hash no longer matches."""
    from station.audit import append

    world(vault, db)
    last = int(db.execute("select max(seq) from audit_log").fetchone()[0])
    db.close()
    sqlite3_shell(
        vault, f"drop trigger audit_log_no_delete; delete from audit_log where seq = {last};"
    )
    other = sqlite_utils.Database(str(vault.catalog_path))  # not the station's opener: no hook
    other.conn.execute("BEGIN IMMEDIATE")
    append(other, "case.note", actor="li", subject="x", data={})
    other.conn.execute("COMMIT")
    other.close()
    assert "audit.tail_rewritten" in verify_codes(vault)


def test_head_file_is_private_and_only_moves_forward(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    from station.audit import head

    world(vault, db)
    h = head.read_head(vault.home)
    assert h is not None and h["seq"] == db.execute("select max(seq) from audit_log").fetchone()[0]
    assert (head.head_path(vault.home).stat().st_mode & 0o777) == 0o600
    head.advance(vault.home, seq=1, entry_hash="x", at="y")
    assert head.read_head(vault.home)["seq"] == h["seq"]  # type: ignore[index]


def test_forged_entry_by_a_stranger_is_named(vault: Vault, db: sqlite_utils.Database) -> None:
    """The careful attacker appends a well-chained audit entry releasing the hold (with its
    seal) and releases the hold row to match: the replay agrees with the tables, but the entry
    names someone who is no account."""
    from station.audit.log import canonical_json, entry_body, entry_hash
    from station.audit.protect import current_rows

    w = world(vault, db)
    hold_id = db.execute("select id from holds where sha256 = ?", [w["held"]]).fetchone()[0]
    seq, prev = db.execute(
        "select seq + 1, entry_hash from audit_log order by seq desc limit 1"
    ).fetchone()
    at = "2026-12-01T00:00:00.000000Z"
    db.close()
    sqlite3_shell(
        vault,
        f"update holds set released_at = '{at}', released_by = 'ghost' where id = {hold_id};",
    )
    other = sqlite_utils.Database(str(vault.catalog_path))
    data = {"holds": [hold_id], "seal": {"holds": current_rows(other, "holds", [hold_id])}}
    other.close()
    body = entry_body(seq, at, "ghost", "recording.released", w["held"], data, prev)
    row = (
        seq,
        at,
        "ghost",
        "recording.released",
        w["held"],
        canonical_json(data).decode(),
        prev,
        entry_hash(body),
    )
    sqlite3_shell(
        vault,
        "insert into audit_log values ("
        + ", ".join(
            str(v) if isinstance(v, int) else "'" + str(v).replace("'", "''") + "'" for v in row
        )
        + ");",
    )
    fresh = open_catalog(vault.catalog_path)
    try:
        found = {f.code: f for f in run_verify(vault, fresh, Settings()).findings}
    finally:
        fresh.close()
    assert not [c for c in found if c.startswith("protected.")], found
    assert "audit.actor_unknown" in found and "ghost" in found["audit.actor_unknown"].detail
