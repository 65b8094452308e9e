"""A file over 4 GiB on a disc image (ISO 9660 level 3 multi-extent + UDF), read back whole
through xorriso and 7-Zip. HARNESS.md: pycdlib's own reader got such files wrong by their Rock
Ridge path, so only the independent readers are trusted.

Slow (writes and reads a 4.3 GB image, about 90 s and 14 GB read, 9 GB written on the
development machine): it runs with the suite, in CI too; it needs 12 GiB free under the test
folder and says so when they are not there.
The file is sparse but not uniform (distinct random blocks at each GiB boundary), so a reader
that returned extents in the wrong order, or only the last one, would be caught."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import sqlite_utils

from station.config import Settings
from station.disc_burn import jobs, reverify
from station.vault import Vault
from tests.disc_helpers import add_case, add_people, label_settings

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.disk_usage(tempfile.gettempdir()).free < 12 * 1024**3,
        reason="needs 12 GiB free for a 4.3 GB file and its disc image",
    ),
]

GiB = 1024**3
SIZE = 4 * GiB + 300 * 1024 * 1024 + 12345  # not a multiple of anything


def test_file_over_4_gib_reads_back_through_xorriso_and_7zip(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    add_people(db)
    src = tmp_path / "big.MP4"
    rnd = random.Random(42)
    with open(src, "wb") as f:
        f.truncate(SIZE)
        for offset in (0, GiB - 512, 2 * GiB, 3 * GiB + 7, 4 * GiB - 1, SIZE - 4096):
            f.seek(offset)
            f.write(rnd.randbytes(4096))
    h = hashlib.sha256()
    with open(src, "rb") as f:
        while block := f.read(1 << 24):
            h.update(block)
    sha = h.hexdigest()
    dest = vault.original_path(sha, "mp4")
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dest)
    db.execute(
        "insert into recordings (sha256, size, ext, media_kind, vault_path, original_name,"
        " original_path, ingested_at, recorded_at) values (?, ?, 'mp4', 'video', ?,"
        " 'DSJ0001_100001_20260301093000_0001.MP4', 'DCIM/x.MP4', '2026-03-01T02:00:00Z',"
        " '2026-03-01T01:30:00.000000Z')",
        [sha, SIZE, str(dest.relative_to(vault.home))],
    )
    db.conn.commit()
    add_case(db, "2026-0400", "大文件", [sha])
    job_id, outcomes = jobs.build_job(
        vault,
        db,
        label_settings(Settings()),
        ["2026-0400"],
        media_key="bd25",
        out_dir=None,
        actor="tester",
    )
    for o in outcomes:
        assert o.verified, o.problems
    rows = reverify.disc_rows(db, job_id)
    import json

    for r in rows:
        result = json.loads(r["verify_result"])
        assert all(reader["ok"] for reader in result["readers"])
        # read right after writing: copy A through its Joliet tree, copy B through its UDF tree
        content = {"A": "7zip-iso", "B": "7zip-udf"}[r["copy"]]
        assert [x["bytes_read"] >= SIZE for x in result["readers"] if x["reader"] == content] == [
            True
        ]
        # every tree's extents the same: several ISO extents, the UDF entry's, one run of sectors
        assert [x["udf_bound"] for x in result["readers"] if x["reader"] == "xorriso"] == [True]
    # station disc verify: both readers stream the whole file from each copy
    for _, res in reverify.verify_job(db, job_id, actor="tester"):
        assert res.ok and all(x.contents and x.bytes_read >= SIZE for x in res.readers)
    # the ISO 9660 tree really holds it in several extents (multi-extent, level 3)
    listing = subprocess.run(
        ["xorriso", "-indev", str(outcomes[0].image), "-find", "/", "-name", "*.MP4",
         "-exec", "report_lba"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert sum(1 for line in listing.splitlines() if line.startswith("File data lba")) >= 2
    # every extent's record carries the recording's start, 01:30Z = 09:30 北京时间 (+08:00)
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.open(str(outcomes[0].image))
    try:
        payload = [e for e in json.loads(rows[0]["expected"]) if e["path"].endswith(".MP4")]
        jol = "/" + payload[0]["joliet_path"]
        rec, seen = iso.get_record(joliet_path=jol), 0
        while rec is not None:
            assert (rec.date.hour, rec.date.minute, rec.date.gmtoffset) == (9, 30, 32)
            rec, seen = rec.data_continuation, seen + 1
        assert seen >= 2
    finally:
        iso.close()
    for o in outcomes:
        o.image.unlink()
