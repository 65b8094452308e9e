"""Archive-office records on real discs: a disc built for a case carries its 档号 on
the label and in a DA/T 63-style metadata record per recording plus DISC.xml; the records
parse, validate against the schema shipped on the same disc, hold the digest `sha256sum`
computes and list the audit events. Read back with xorriso, as the other disc tests do."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import sqlite_utils
from lxml import etree
from transcode_support import h264_aac_mp4

from station.config import Settings
from station.disc_burn import jobs, names
from station.vault import Vault
from tests.disc_helpers import add_case, add_recording, data, label_settings

NS = {"r": "urn:station:av-record:1"}
CASE = "某某路口占道经营拒不整改案"


def extract(image: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    subprocess.run(
        ["xorriso", "-osirrox", "on", "-indev", str(image), "-extract", "/", str(dest)],
        check=True,
        capture_output=True,
    )
    return dest


def sha256sum(path: Path) -> str:
    out = subprocess.run(["sha256sum", str(path)], check=True, capture_output=True)
    return out.stdout.decode().split()[0]


def test_disc_for_a_case_carries_archive_number_and_valid_records(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    clip = h264_aac_mp4(tmp_path / "clip.mp4", 1.0).read_bytes()
    a = add_recording(vault, db, clip, name="DSJ0001_100001_20260301093000_0001.MP4")
    b = add_recording(vault, db, data(7, 40_000), name="DSJ0001_100001_20260301100000_0002.MP4",
                      recorded_at="2026-03-01T02:00:00.000000Z")  # fmt: skip
    add_case(db, "2026-0031", CASE, [a, b])
    add_case(db, "2026-0032", "另一案件", [b], long_term_reason=None)
    settings = label_settings(Settings())
    _, outcomes = jobs.build_job(
        vault, db, settings, ["2026-0031"], media_key="dvd", out_dir=None, actor="clerk1"
    )
    number = db.execute(
        "select archive_number, retention_words from archive_numbers where kind = 'case'"
        " and subject = '2026-0031'"
    ).fetchone()
    assert number == ("0001-2026-Y-0001", "永久")  # R11-marked case: kept without end

    # the label, both copies: 档号 and 保管期限 beside the R12 fields
    for o in outcomes:
        text = subprocess.run(
            ["pdftotext", "-layout", str(o.label_pdf), "-"], capture_output=True, check=True
        ).stdout.decode("utf-8")
        flat = " ".join(text.split())
        assert "档号" in flat and number[0] in flat and "保管期限" in flat and "永久" in flat
        assert number[0] in o.label_html.read_text("utf-8")

    rr = extract(outcomes[0].image, tmp_path / "rr")
    schema = etree.XMLSchema(etree.parse(str(rr / "station-av-record-1.xsd")))
    records = sorted((rr / f"2026-0031 {CASE}" / "档案元数据 metadata").glob("*.xml"))
    assert len(records) == 2
    first = records[0]
    raw = first.read_bytes()
    assert raw.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert CASE.encode("utf-8") in raw and b"&#" not in raw  # Chinese as it is, not escaped
    doc = etree.parse(str(first))
    schema.assertValid(doc)
    assert doc.findtext("r:档案实体/r:档号", namespaces=NS) == f"{number[0]}-001"
    assert doc.findtext("r:档案实体/r:保管期限", namespaces=NS) == "永久"
    assert "R11" in doc.findtext("r:档案实体/r:站内保存决定", namespaces=NS)
    assert doc.find("r:档案实体/r:案件", namespaces=NS).get("档号") == number[0]
    original = (
        rr / f"2026-0031 {CASE}" / "原始录像 originals" / "DSJ0001_100001_20260301093000_0001.MP4"
    )
    files = doc.findall("r:档案实体/r:计算机文件", namespaces=NS)
    digest = files[0].find("r:数字摘要", namespaces=NS)
    assert digest.get("算法") == "SHA-256" and digest.text == sha256sum(original) == a
    assert files[0].findtext("r:文件大小", namespaces=NS) == str(original.stat().st_size)
    # format information from ffprobe for a real clip
    assert files[0].findtext("r:视频编码", namespaces=NS) == "h264"
    assert files[0].findtext("r:音频编码", namespaces=NS) == "aac"
    assert files[0].findtext("r:分辨率", namespaces=NS) == "320x240"
    events = [e.text for e in doc.findall("r:业务实体/r:管理活动/r:事件", namespaces=NS)]
    assert {"recording.ingested", "case.created", "archive.number_assigned",
            "disc.job_created"} <= set(events)  # fmt: skip
    seqs = [
        int(e.get("管理活动标识符")) for e in doc.findall("r:业务实体/r:管理活动", namespaces=NS)
    ]
    hashes = dict(db.execute("select seq, entry_hash from audit_log").fetchall())
    for act, seq in zip(doc.findall("r:业务实体/r:管理活动", namespaces=NS), seqs, strict=True):
        assert act.findtext("r:审计记录摘要", namespaces=NS) == hashes[seq]

    disc = etree.parse(str(rr / "DISC.xml"))
    schema.assertValid(disc)
    unit = names.unit_code("440300000001", "STATION-01")
    assert disc.findtext("r:卷标", namespaces=NS) == f"{unit}_026_0031_1A / {unit}_026_0031_1B"
    listed = {f.get("路径"): f for f in disc.findall("r:文件", namespaces=NS)}
    for path, f in listed.items():
        assert f.findtext("r:数字摘要", namespaces=NS) == sha256sum(rr / path), path
    assert listed[str(original.relative_to(rr))].get("档号") == f"{number[0]}-001"
    manifest_raw = (rr / "MANIFEST.json").read_bytes()
    assert CASE.encode("utf-8") in manifest_raw and b"\\u" not in manifest_raw
    manifest = json.loads(manifest_raw)
    assert manifest["cases"][0]["archive_number"] == number[0]
    assert manifest["cases"][0]["retention_period"] == "永久"
    assert manifest["archive_numbers"][a] == f"{number[0]}-001"
    assert number[0] in (rr / "README.txt").read_text("utf-8")
    check = subprocess.run(["sha256sum", "-c", "MANIFEST.SHA256"], cwd=rr, capture_output=True)
    assert check.returncode == 0

    # a second case on its own disc gets another number; rebuilding keeps the first one
    jobs.build_job(
        vault, db, settings, ["2026-0032", "2026-0031"], media_key="dvd", out_dir=None,
        actor="clerk1", require_long_term=False,
    )  # fmt: skip
    rows = dict(
        db.execute("select subject, archive_number from archive_numbers where kind = 'case'")
    )
    assert rows == {"2026-0031": number[0], "2026-0032": "0001-2026-D10-0001"}
    items = [r[0] for r in db.execute("select archive_number from archive_numbers")]
    assert len(items) == len(set(items)) == 5  # 2 cases, 3 case items (b is in both)
