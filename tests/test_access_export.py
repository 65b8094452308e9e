"""Requests, approvals, views and exports (R8, R14, R15): nothing is viewed or exported without
a recorded, unexpired supervisor approval; every view and export is an audit entry."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from station.access import approvals
from station.access.users import User, create_user
from station.cli import main
from station.timeutil import utcnow
from station.vault import Vault
from tests.court_support import court_check, fingerprint_in, tamper_cases
from tests.integrity_support import store_recording

PW = "correct horse 1"


def run(vault: Vault, user: str, *args: str):  # type: ignore[no-untyped-def]
    env = {"STATION_USER": user, "STATION_PASSWORD": PW}
    return CliRunner().invoke(main, ["--home", str(vault.home), "--user", user, *args], env=env)


@pytest.fixture
def people(db: sqlite_utils.Database) -> dict[str, User]:
    out = {}
    for name, role in [("wang", "officer"), ("li", "clerk"), ("zhou", "supervisor"),
                       ("chen", "supervisor"), ("admin1", "admin")]:  # fmt: skip
        out[name] = create_user(db, name, role, PW, actor="setup")
    return out


@pytest.fixture
def clips(vault: Vault, db: sqlite_utils.Database) -> list[dict]:
    return [store_recording(vault, db, os.urandom(30_000 + i), seq=i) for i in range(1, 4)]


def audit(db: sqlite_utils.Database, event: str) -> list[dict]:
    rows = db.execute(
        "select actor, subject, data from audit_log where event = ? order by seq", [event]
    ).fetchall()
    return [{"actor": a, "subject": s, "data": json.loads(d)} for a, s, d in rows]


def request(vault: Vault, user: str, shas: list[str], purpose: str, reason: str) -> int:
    args = ["access", "request", "--purpose", purpose, "--reason", reason, "--json"]
    for s in shas:
        args += ["--recording", s[:12]]
    r = run(vault, user, *args, "--for", "某区人民法院 / district court")
    assert r.exit_code == 0, r.output
    return int(json.loads(r.stdout)["id"])


def test_empty_reason_refused(vault: Vault, db: sqlite_utils.Database, people, clips) -> None:
    for reason in ("", "   "):
        r = run(vault, "wang", "access", "request", "--recording", clips[0]["sha256"],
                "--reason", reason)  # fmt: skip
        assert (
            r.exit_code == 1 and "必须填写调阅事由" in r.output and "reason is required" in r.output
        )
    assert db.execute("select count(*) from access_requests").fetchone()[0] == 0
    with pytest.raises(sqlite3.IntegrityError):  # the schema refuses it too
        db.execute(
            "insert into access_requests (purpose, requested_by, reason, created_at)"
            " values ('view', 'wang', '  ', 'now')"
        )
    r = run(vault, "wang", "access", "request", "--recording", "deadbeef00", "--reason", "x")
    assert r.exit_code == 5 and "找不到该录像" in r.output


def test_approval_rules(vault: Vault, db: sqlite_utils.Database, people, clips) -> None:
    rid = request(vault, "zhou", [clips[0]["sha256"]], "view", "案件复核 2026-001")
    assert run(vault, "li", "access", "approve", str(rid)).exit_code == 10  # clerk: wrong role
    own = run(vault, "zhou", "access", "approve", str(rid))
    assert own.exit_code == 10 and "不得审批本人的申请" in own.output
    ok = run(vault, "chen", "access", "approve", str(rid), "--valid-hours", "2", "--json")
    assert ok.exit_code == 0, ok.output
    got = json.loads(ok.stdout)
    assert got["state"] == "approved" and got["decided_by"] == "chen"
    assert run(vault, "chen", "access", "approve", str(rid)).exit_code == 1  # decided already
    [entry] = audit(db, "access.approved")
    assert entry["actor"] == "chen" and entry["subject"] == f"request:{rid}"
    assert entry["data"]["valid_until"] == got["valid_until"]
    listed = run(vault, "li", "access", "list", "--state", "approved", "--json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [rid]
    assert run(vault, "wang", "access", "list").exit_code == 10  # officers see only their own
    shown = run(vault, "zhou", "access", "show", str(rid))
    assert "案件复核 2026-001" in shown.output and "chen" in shown.output
    [req_entry] = audit(db, "access.requested")
    assert req_entry["data"]["reason"] == "案件复核 2026-001"


def test_view_only_by_requester_and_logged(
    vault: Vault, db: sqlite_utils.Database, people, clips
) -> None:
    shas = [c["sha256"] for c in clips[:2]]
    rid = request(vault, "wang", shas, "view", "当事人投诉，需回看 / complaint review")
    early = run(vault, "wang", "access", "view", str(rid))
    assert early.exit_code == 10 and "not approved" in early.output
    assert run(vault, "chen", "access", "approve", str(rid)).exit_code == 0
    assert run(vault, "li", "access", "view", str(rid)).exit_code == 10  # not the requester
    r = run(vault, "wang", "access", "view", str(rid), "--json")
    assert r.exit_code == 0, r.output
    shown = json.loads(r.stdout)
    assert sorted(s["sha256"] for s in shown) == sorted(shas)
    assert all(Path(s["path"]).exists() for s in shown)
    views = audit(db, "access.viewed")
    assert sorted(v["subject"] for v in views) == sorted(shas)
    assert {v["actor"] for v in views} == {"wang"}
    assert db.execute("select count(*) from access_views").fetchone()[0] == 2
    # A view approval does not allow an export.
    r = run(vault, "li", "export", str(rid), "--to", str(vault.home.parent))
    assert r.exit_code == 10 and "approved for view only" in r.output


def test_export_without_approval_expired_or_wrong_role(
    vault: Vault, db: sqlite_utils.Database, people, clips, tmp_path: Path
) -> None:
    dest = tmp_path / "usb"
    dest.mkdir()
    rid = request(vault, "li", [clips[0]["sha256"]], "export", "法院调取 (2026)某01行初1号")
    pending = run(vault, "li", "export", str(rid), "--to", str(dest))
    assert pending.exit_code == 10 and "not approved" in pending.output
    # Approved an hour ago for 30 minutes: expired.
    past = utcnow() - dt.timedelta(hours=1)
    approvals.decide(db, people["chen"], rid, approve=True,
                     valid_until=past + dt.timedelta(minutes=30), now=past)  # fmt: skip
    expired = run(vault, "li", "export", str(rid), "--to", str(dest))
    assert expired.exit_code == 10 and "expired" in expired.output and "已过期" in expired.output
    officer = run(vault, "wang", "export", str(rid), "--to", str(dest))
    assert officer.exit_code == 10 and "may not do this" in officer.output
    assert list(dest.iterdir()) == []
    refused = audit(db, "access.refused")
    assert len(refused) == 2 and all(e["actor"] == "li" for e in refused)
    assert any(e["actor"] == "wang" for e in audit(db, "access.denied"))
    assert audit(db, "access.exported") == []


def test_export_package(
    vault: Vault, db: sqlite_utils.Database, people, clips, tmp_path: Path
) -> None:
    dest = tmp_path / "usb"
    dest.mkdir()
    shas = [c["sha256"] for c in clips]
    rid = request(vault, "li", shas, "export", "行政复议调取")
    assert run(vault, "zhou", "access", "approve", str(rid), "--valid-hours", "24").exit_code == 0
    r = run(vault, "li", "export", str(rid), "--to", str(dest), "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    pkg = Path(res["package"])
    assert pkg.parent == dest and res["files"] == 3
    # An independent tool checks the package.
    check = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=pkg, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    # 3 originals, 3 records, the schema, 4 more, the station key, verify.py, verify.ps1 and
    # the handover list
    assert check.stdout.count(": OK") == 15
    # the same checker as on a disc: files, the checkpoint's signature, the proofs (R7)
    checked = court_check(pkg)
    assert checked.returncode == 0, checked.stdout
    handover = subprocess.run(
        ["pdftotext", "-raw", str(pkg / "移交清单 handover.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "移交清单" in handover and "接收人签字" in handover and "北京时间" in handover
    assert "行政复议调取" in handover and shas[0] in handover.replace(" ", "").replace("\n", "")
    assert "公钥指纹" in handover
    # the fingerprint verify.py checked against is the one printed on the handover list
    printed = fingerprint_in(checked.stdout)
    assert printed.replace(" ", "") in handover.replace(" ", "").replace("\n", "")
    assert (pkg / "verify.ps1").read_bytes().startswith(b"\xef\xbb\xbf")
    manifest = json.loads((pkg / "manifest.json").read_text())
    # A metadata record per recording, valid against the shipped schema, with the
    # digest sha256sum computes, the approval events, and the recording's own 档号
    from lxml import etree

    ns = {"r": "urn:station:av-record:1"}
    schema = etree.XMLSchema(etree.parse(str(pkg / "station-av-record-1.xsd")))
    for f in manifest["files"]:
        doc = etree.parse(str(pkg / f["metadata_record"]))
        schema.assertValid(doc)
        out = subprocess.run(["sha256sum", str(pkg / f["file"])], capture_output=True, text=True)
        digest = doc.findtext("r:档案实体/r:计算机文件/r:数字摘要", namespaces=ns)
        assert digest == out.stdout.split()[0] == f["sha256"]
        assert doc.findtext("r:档案实体/r:档号", namespaces=ns) == f["archive_number"]
        assert f["retention_period"] == "6个月" or f["retention_period"].startswith("定期")
        events = [e.text for e in doc.iterfind(".//r:管理活动/r:事件", namespaces=ns)]
        assert {"access.requested", "access.approved", "archive.number_assigned"} <= set(events)
    assert len({f["archive_number"] for f in manifest["files"]}) == 3
    assert manifest["approved_by"] == "zhou" and manifest["exported_by"] == "li"
    assert sorted(f["sha256"] for f in manifest["files"]) == sorted(shas)
    for f in manifest["files"]:
        assert (pkg / f["file"]).read_bytes() == (
            vault.home / next(c["vault_path"] for c in clips if c["sha256"] == f["sha256"])
        ).read_bytes()
    approval = json.loads((pkg / "approval.json").read_text())
    assert approval["id"] == rid and approval["reason"] == "行政复议调取"
    assert (pkg / "checkpoint.note").read_text().startswith("bodycam-station/STATION-01/audit\n")
    # The approval is provably in the signed log: checkpoint + inclusion proofs, from the
    # package alone.
    from station.audit import merkle, note

    cp_text, _, vkey_line = (pkg / "checkpoint.note").read_text().partition("# verifier key: ")
    cp = note.open_checkpoint(cp_text.rstrip("\n") + "\n", note.parse_verifier_key(vkey_line))
    proofs = json.loads((pkg / "audit-proof.json").read_text())["entries"]
    assert [json.loads(p["entry"])["event"] for p in proofs] == [
        "access.requested",
        "access.approved",
    ]
    for p in proofs:
        leaf = merkle.leaf_hash(p["entry"].encode())
        path = [bytes.fromhex(h) for h in p["proof"]]
        assert merkle.verify_inclusion(p["leaf_index"], cp.size, leaf, path, cp.root)
        assert not merkle.verify_inclusion(
            p["leaf_index"],
            cp.size,
            merkle.leaf_hash(p["entry"].replace('"actor":"', '"actor":"x').encode()),
            path,
            cp.root,
        )
    [entry] = audit(db, "access.exported")
    assert entry["actor"] == "li" and entry["data"]["manifest_sha256"] == res["manifest_sha256"]
    row = db.execute("select files, bytes, destination from access_exports").fetchone()
    assert row == (3, sum(c["size"] for c in clips), str(pkg))
    kept = vault.exports / pkg.name  # R15: a copy is retained
    assert (kept / "manifest.json").read_bytes() == (pkg / "manifest.json").read_bytes()


def test_export_stops_on_a_damaged_original(
    vault: Vault, db: sqlite_utils.Database, people, clips, tmp_path: Path
) -> None:
    dest = tmp_path / "usb"
    dest.mkdir()
    rid = request(vault, "li", [c["sha256"] for c in clips], "export", "法院调取")
    assert run(vault, "chen", "access", "approve", str(rid)).exit_code == 0
    victim = vault.home / clips[1]["vault_path"]
    os.chmod(victim, 0o644)
    victim.write_bytes(b"x" * clips[1]["size"])
    r = run(vault, "li", "export", str(rid), "--to", str(dest))
    assert r.exit_code == 9 and "已停止导出" in r.output and "station verify" in r.output
    assert list(dest.iterdir()) == []  # no half package left behind
    assert audit(db, "access.exported") == []


def test_export_to_a_missing_folder_and_unknown_request(
    vault: Vault, db: sqlite_utils.Database, people, clips, tmp_path: Path
) -> None:
    rid = request(vault, "li", [clips[0]["sha256"]], "export", "法院调取")
    assert run(vault, "chen", "access", "approve", str(rid)).exit_code == 0
    r = run(vault, "li", "export", str(rid), "--to", str(tmp_path / "no-such-stick"))
    assert r.exit_code == 1 and "目标目录不存在" in r.output and "no-such-stick" in r.output
    r = run(vault, "li", "export", "42", "--to", str(tmp_path))
    assert r.exit_code == 5 and "无此调阅申请" in r.output
    assert audit(db, "access.exported") == []


def test_export_checker_fails_on_a_tampered_copy(
    vault: Vault, db: sqlite_utils.Database, people, clips, tmp_path: Path
) -> None:
    """R7/R15: the export's own verify.py, run on tampered copies of the package, fails each
    time with a message naming what is wrong — even when the forger redoes SHA256SUMS."""
    dest = tmp_path / "usb"
    dest.mkdir()
    from tests.disc_helpers import add_derivative

    add_derivative(vault, db, clips[0]["sha256"], b"playable copy" * 1000)
    rid = request(vault, "li", [c["sha256"] for c in clips], "export", "法院调取")
    assert run(vault, "chen", "access", "approve", str(rid)).exit_code == 0
    r = run(vault, "li", "export", str(rid), "--to", str(dest), "--json")
    assert r.exit_code == 0, r.output
    pkg = Path(json.loads(r.stdout)["package"])
    # the playable archival copy travels with its original, listed and checked like it
    manifest = json.loads((pkg / "manifest.json").read_text("utf-8"))
    [copy] = next(f for f in manifest["files"] if f["sha256"] == clips[0]["sha256"])["derivatives"]
    assert re.fullmatch(r"playable/\d{3}_.+\.mp4-h264\.mp4", copy["file"]), copy
    assert copy["profile"] == "mp4-h264"
    assert (pkg / copy["file"]).read_bytes() == b"playable copy" * 1000
    assert f"{copy['sha256']}  {copy['file']}" in (pkg / "SHA256SUMS").read_text("utf-8")
    good = court_check(pkg)
    assert good.returncode == 0, good.stdout
    fp = fingerprint_in(good.stdout)
    assert court_check(pkg, "--fingerprint", fp).returncode == 0
    for name, expected in tamper_cases(pkg, tmp_path, kind="export").items():
        assert expected.returncode == 1, (name, expected.stdout)
