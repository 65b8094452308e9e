"""Building dual archive discs for real (R11, R12): pycdlib images read back by xorriso and
7-Zip, checked with sha256sum and the disc's own verify.py, labels read back with pdftotext."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlite_utils

from station.config import Settings
from station.disc_burn import jobs, readback, reverify
from station.disc_burn import names as disc_names
from station.disc_burn.content import MissingRecordingError
from station.disc_burn.media import CASE_OVERHEAD, DISC_OVERHEAD, MEDIA, SECTOR, Media
from station.disc_burn.names import JOLIET_MAX_BYTES
from station.disc_burn.progress import DiscProgress
from station.errors import EmptyCaseError, FileTooLargeError, IntegrityError, NotLongTermError
from station.vault import Vault
from tests.disc_helpers import add_case, add_derivative, add_recording, data, label_settings

LONG_NAME = "关于当事人在人行道上占道经营并拒绝配合执法人员检查的现场执法记录视频第一段.MP4"
CASE_NAME = "某某路口占道经营拒不整改案"


def make_case(vault: Vault, db: sqlite_utils.Database, number: str = "2026-0012") -> list[str]:
    a = add_recording(vault, db, data(1, 300_000))
    b = add_recording(
        vault, db, data(2, 120_000), name=LONG_NAME, recorded_at="2026-03-01T02:00:00.000000Z"
    )
    c = add_recording(
        vault,
        db,
        data(3, 50_000),
        name="DSJ0001_100001_20260301103000_0003_IMP.MP4",
        recorded_at="2026-03-01T02:30:00.000000Z",
    )
    d = add_derivative(vault, db, a, data(4, 80_000))
    add_case(db, number, CASE_NAME, [a, b, c])
    return [a, b, c, d]


def extract(image: Path, dest: Path, joliet: bool = False) -> Path:
    dest.mkdir(parents=True)
    args = ["xorriso", "-osirrox", "on"]
    if joliet:
        args += ["-read_fs", "norock"]  # before -indev, or xorriso reads Rock Ridge anyway
    args += ["-indev", str(image), "-extract", "/", str(dest)]
    subprocess.run(args, check=True, capture_output=True)
    for p in dest.rglob("*"):  # xorriso keeps the read-only modes
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def build(
    vault: Vault, db: sqlite_utils.Database, numbers: list[str], **kw: object
) -> tuple[int, list[jobs.DiscOutcome]]:
    settings = label_settings(Settings())
    return jobs.build_job(
        vault, db, settings, numbers, media_key=str(kw.pop("media", "dvd")), out_dir=None,
        actor="tester", **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_two_verified_copies_readable_everywhere(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    shas = make_case(vault, db)
    seen: list[DiscProgress] = []
    job_id, outcomes = build(vault, db, ["2026-0012"], progress=seen.append)
    assert [(o.disc_no, o.copy) for o in outcomes] == [(1, "A"), (1, "B")]
    assert all(o.verified and o.image.is_file() for o in outcomes)
    assert {p.phase for p in seen} >= {"build", "verify-7zip"}
    rows = reverify.disc_rows(db, job_id)
    assert [r["state"] for r in rows] == ["verified", "verified"]
    unit = disc_names.unit_code("440300000001", "STATION-01")  # the unit's code first
    assert [r["volume_id"] for r in rows] == [f"{unit}_026_0012_1A", f"{unit}_026_0012_1B"]
    # R12, each copy verified right after it is written: the image hash is the one taken
    # while writing; every file's content read once from the disk by 7-Zip (copy A through its
    # Joliet tree, copy B through its UDF tree); every tree (Rock Ridge + Joliet by xorriso,
    # UDF by 7-Zip) checked by names and sizes
    content_reader = {"A": "7zip-iso", "B": "7zip-udf"}
    for r, o in zip(rows, outcomes, strict=True):
        result = json.loads(r["verify_result"])
        readers = {x["reader"]: x for x in result["readers"]}
        assert result["ok"] and not result["image_reread"]
        assert result["image_sha256"] == o.image_sha256 == _file_sha(o.image)
        assert {"xorriso", "7zip-udf"} <= set(readers)
        # 4 payload + 9 support (README, verify.py, verify.ps1, manifests x2, AUDIT.jsonl,
        # CHECKPOINT.txt, STATION-KEY.txt, AUDIT-PROOF.json) + 5 archive records (3 recordings,
        # DISC.xml, the schema)
        assert all(x["files_checked"] == 18 for x in readers.values())
        read = readers[content_reader[r["copy"]]]
        total = sum(e["size"] for e in json.loads(r["expected"]))
        assert read["contents"] and read["bytes_read"] == total
        assert [n for n, x in readers.items() if x["contents"]] == [content_reader[r["copy"]]]
    # 7-Zip's "SHA256 for data" is the manifest's digests summed as this reads them
    for o, r in zip(outcomes, rows, strict=True):
        fs = "-tiso" if o.copy == "A" else "-tudf"
        tested = subprocess.run(["7zz", "t", fs, "-scrcSHA256", str(o.image)], capture_output=True,
                                text=True, check=True).stdout  # fmt: skip
        digests = [e["sha256"] for e in json.loads(r["expected"])]
        want = readback.sha256_sum_7zip(digests)
        assert f"SHA256 for data: {want}" in " ".join(tested.split())
    # the two copies: one pass, the same bytes but for their file systems' metadata
    a, b = (o.image.read_bytes() for o in outcomes)
    assert len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) < 4096  # ids, times
    # station disc verify: all three full checks again (image re-hashed, both readers stream)
    again = reverify.verify_job(db, job_id, actor="tester")
    for _, res in again:
        assert res.ok and res.image_reread and all(x.contents for x in res.readers)
        assert {x.reader for x in res.readers} == {"xorriso", "7zip-udf"}
    assert not list(outcomes[0].image.parent.glob(".*partial"))

    # Rock Ridge tree (Linux): sha256sum -c and the disc's own verify.py
    rr = extract(outcomes[0].image, tmp_path / "rr")
    check = subprocess.run(["sha256sum", "-c", "MANIFEST.SHA256"], cwd=rr, capture_output=True)
    assert check.returncode == 0, check.stdout
    assert check.stdout.decode().count(": OK") == 17  # all but MANIFEST.SHA256 itself
    # the Windows checker: UTF-8 with BOM and CRLF (Windows PowerShell 5.1 reads it right),
    # checks every line of MANIFEST.SHA256 with Get-FileHash
    ps1 = (rr / "verify.ps1").read_bytes()
    assert (
        ps1.startswith(b"\xef\xbb\xbf")
        and b"\r\n" in ps1
        and b"\n" not in ps1.replace(b"\r\n", b"")
    )
    assert b"Get-FileHash" in ps1 and b"MANIFEST.SHA256" in ps1
    assert ps1.count(b"{") == ps1.count(b"}")
    assert "verify.ps1" in (rr / "README.txt").read_text("utf-8")
    case_dir = rr / f"2026-0012 {CASE_NAME}"
    assert (case_dir / "原始录像 originals" / LONG_NAME).read_bytes() == data(2, 120_000)
    assert (case_dir / "存档转码 archival").is_dir()
    run = subprocess.run([sys.executable, str(rr / "verify.py")], capture_output=True)
    assert run.returncode == 0 and b"0 failed" in run.stdout

    # Joliet tree (Windows without UDF): shortened names, still verified through the map
    jol = extract(outcomes[1].image, tmp_path / "joliet", joliet=True)
    names = [p.name for p in jol.rglob("*")]
    assert all(len(n.encode("utf-8")) <= JOLIET_MAX_BYTES for n in names)
    assert LONG_NAME not in names
    run = subprocess.run([sys.executable, str(jol / "verify.py")], capture_output=True)
    assert run.returncode == 0, run.stdout.decode()

    # UDF tree through 7-Zip (Windows, macOS)
    udf = tmp_path / "udf"
    subprocess.run(
        ["7zz", "x", "-tudf", f"-o{udf}", str(outcomes[0].image)], check=True, capture_output=True
    )
    run = subprocess.run([sys.executable, str(udf / "verify.py")], capture_output=True)
    assert run.returncode == 0, run.stdout.decode()

    manifest = json.loads((rr / "MANIFEST.json").read_text("utf-8"))
    fingerprint = manifest["disc"]["station_key_fingerprint"]
    assert manifest["disc"] | {"created_at": None, "station_key_fingerprint": None} == {
        "job_id": job_id, "disc_no": 1, "discs_total": 1, "media": "dvd",
        "station_id": "STATION-01", "producing_unit": "某市城市管理执法局",
        "producer": "王五", "created_at": None, "station_key_fingerprint": None,
    }  # fmt: skip
    # R7: the checker printed the fingerprint of the key it checked the signature with
    assert len(fingerprint) == 39 and fingerprint in run.stdout.decode()
    assert manifest["cases"][0]["long_term_reason"] == 2
    assert {f["sha256"] for f in manifest["files"]} == set(shas)
    meta = manifest["metadata"][shas[1]]
    assert meta["original_name"] == LONG_NAME and meta["officer_name"] == "张三"
    assert meta["recorded_at"] == "2026-03-01T02:00:00.000000Z" and meta["drift_s"] == 1.5
    audit_lines = [json.loads(x) for x in (rr / "AUDIT.jsonl").read_text("utf-8").splitlines()]
    # every recording's and the case's entries; the derivative's is under its original
    assert {a["subject"] for a in audit_lines} >= set(shas[:3]) | {"2026-0012"}
    made = [a for a in audit_lines if a["event"] == "derivative.created"]
    assert [(a["subject"], json.loads(a["data"])["sha256"]) for a in made] == [(shas[0], shas[3])]
    readme = (rr / "README.txt").read_text("utf-8")
    assert "certutil" in readme and "sha256sum -c" in readme and CASE_NAME in readme

    # the catalog remembers every disc and the audit log has the build
    events = [r[0] for r in db.execute("select event from audit_log where subject = '2026-0012'")]
    assert events.count("disc.image_built") == 2 and "disc.job_created" in events
    contents = db.execute("select count(*) from disc_contents where job_id = ?", [job_id])
    assert contents.fetchone()[0] == 4


def test_label_sheets_carry_the_r12_fields(vault: Vault, db: sqlite_utils.Database) -> None:
    make_case(vault, db)
    _, outcomes = build(vault, db, ["2026-0012"])
    for o in outcomes:
        text = subprocess.run(
            ["pdftotext", "-layout", str(o.label_pdf), "-"], capture_output=True, check=True
        ).stdout.decode("utf-8")
        flat = " ".join(text.split())
        fields = ["制作单位", "制作人", "制作时间", "案件名称及编号", "王五", CASE_NAME]
        fields += ["2026-0012", o.volume_id, "第 1 张，共 1 张", o.image_sha256[:32]]
        for field in fields:
            assert field in flat, field
        assert ("甲 / A" if o.copy == "A" else "乙 / B") in flat
        html = o.label_html.read_text("utf-8")
        assert o.image_sha256 in html and CASE_NAME in html and "制作时间" in html


def test_corrupted_image_is_caught_by_verify(vault: Vault, db: sqlite_utils.Database) -> None:
    make_case(vault, db)
    job_id, outcomes = build(vault, db, ["2026-0012"])
    image = outcomes[0].image
    listing = subprocess.run(
        ["xorriso", "-indev", str(image), "-find", "/", "-name", LONG_NAME, "-exec", "report_lba"],
        capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    lba = int(next(x for x in listing.splitlines() if x.startswith("File data lba")).split(",")[1])
    with open(image, "r+b") as f:  # one flipped byte inside the long-named recording
        f.seek(lba * SECTOR + 1000)
        byte = f.read(1)
        f.seek(lba * SECTOR + 1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    results = reverify.verify_job(db, job_id, actor="tester")
    by_copy = {row["copy"]: res for row, res in results}
    assert by_copy["B"].ok
    bad = by_copy["A"]
    assert not bad.ok and not bad.image_ok
    assert all(r.mismatched and LONG_NAME in r.mismatched[0] for r in bad.readers)
    states = {r["copy"]: r["state"] for r in reverify.disc_rows(db, job_id)}
    assert states == {"A": "corrupt", "B": "verified"}
    # the check right after a build finds it too (7-Zip's digest sum differs, then the files
    # are streamed to name the one that differs)
    row = next(r for r in reverify.disc_rows(db, job_id) if r["copy"] == "A")
    expected = [readback.Expected(**e) for e in json.loads(row["expected"])]
    lean = readback.read_back(image, expected, row["image_sha256"], content_by="7zip-iso")
    assert not lean.ok
    by_reader = {r.reader: r for r in lean.readers}
    assert any(LONG_NAME in p for p in by_reader["7zip-iso"].mismatched)
    assert by_reader["xorriso"].ok and by_reader["7zip-udf"].ok  # names and sizes still right
    assert (
        db.execute("select count(*) from audit_log where event = 'disc.image_corrupt'").fetchone()[
            0
        ]
        == 1
    )


def test_missing_file_in_vault_is_refused_with_its_hash(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    shas = make_case(vault, db)
    path = (
        vault.home
        / db.execute("select vault_path from recordings where sha256 = ?", [shas[2]]).fetchone()[0]
    )
    path.unlink()
    with pytest.raises(MissingRecordingError, match=shas[2]):
        build(vault, db, ["2026-0012"])
    assert db.execute("select count(*) from disc_jobs").fetchone()[0] == 0


def test_missing_derivative_is_refused_with_its_hash(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    shas = make_case(vault, db)
    rel = db.execute("select vault_path from derivatives where sha256 = ?", [shas[3]]).fetchone()
    (vault.home / rel[0]).unlink()
    with pytest.raises(MissingRecordingError, match=f"derivative {shas[3]} is missing"):
        build(vault, db, ["2026-0012"])


def test_purged_recording_is_refused_with_its_hash(vault: Vault, db: sqlite_utils.Database) -> None:
    shas = make_case(vault, db)
    db.execute("update recordings set state = 'purged' where sha256 = ?", [shas[0]])
    db.conn.commit()
    with pytest.raises(MissingRecordingError, match=f"{shas[0]} was purged"):
        build(vault, db, ["2026-0012"])


def test_case_with_no_recordings_and_unmarked_case(vault: Vault, db: sqlite_utils.Database) -> None:
    add_case(db, "2026-0099", "空案件", [])
    with pytest.raises(EmptyCaseError, match="2026-0099"):
        build(vault, db, ["2026-0099"])
    sha = add_recording(vault, db, data(9, 1000))
    add_case(db, "2026-0100", "未标记", [sha], long_term_reason=None)
    with pytest.raises(NotLongTermError, match="R11"):
        build(vault, db, ["2026-0100"])
    _, outcomes = build(vault, db, ["2026-0100"], require_long_term=False)
    assert all(o.verified for o in outcomes)


def test_file_larger_than_the_media(vault: Vault, db: sqlite_utils.Database) -> None:
    # a sparse 5 GB file: the planner refuses it from the catalog size, before reading a byte
    sha = add_recording(vault, db, sparse_size=5 * 10**9, name="BIG_0001.MP4")
    add_case(db, "2026-0200", "超大文件", [sha])
    with pytest.raises(FileTooLargeError) as err:
        build(vault, db, ["2026-0200"], media="dvd")
    assert sha in err.value.render() and "--media bd25" in err.value.render()
    assert db.execute("select count(*) from disc_jobs").fetchone()[0] == 0


def test_case_number_and_name_that_do_not_fit_a_volume_id(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    sha = add_recording(vault, db, data(5, 2000))
    number = "某某区城市管理和综合执法局（二〇二六）行政处罚第一百二十三号"
    name = "当事人长期在某某街道与某某路交叉口东北角人行道上占道经营且多次拒不整改" * 2
    add_case(db, number, name, [sha])
    job_id, outcomes = build(vault, db, [number])
    unit = disc_names.unit_code("440300000001", "STATION-01")
    assert [o.volume_id for o in outcomes] == [
        f"{unit}_JOB{job_id:05d}_1A",
        f"{unit}_JOB{job_id:05d}_1B",
    ]
    rr = extract(outcomes[0].image, tmp_path / "rr")
    manifest = json.loads((rr / "MANIFEST.json").read_text("utf-8"))
    assert manifest["cases"][0]["number"] == number and manifest["cases"][0]["name"] == name
    html = outcomes[0].label_html.read_text("utf-8")
    assert number in html and name in html


def test_a_case_larger_than_one_disc_spans_a_volume_set(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = Media("tiny", "tiny test disc", (DISC_OVERHEAD + CASE_OVERHEAD + 2_500_000) // SECTOR)
    monkeypatch.setitem(MEDIA, "tiny", tiny)
    shas = [
        add_recording(
            vault,
            db,
            data(10 + i, 1_000_000),
            name=f"DSJ0001_100001_2026030109{i}000_000{i}.MP4",
            recorded_at=f"2026-03-01T0{i}:00:00.000000Z",
        )
        for i in range(5)
    ]
    add_case(db, "2026-0300", "大案", shas)
    _, outcomes = build(vault, db, ["2026-0300"], media="tiny")
    assert [(o.disc_no, o.copy) for o in outcomes] == [(d, c) for d in (1, 2, 3) for c in "AB"]
    assert all(o.verified for o in outcomes)
    seen: list[str] = []
    for o in outcomes[::2]:
        rr = extract(o.image, tmp_path / o.volume_id)
        manifest = json.loads((rr / "MANIFEST.json").read_text("utf-8"))
        assert manifest["disc"]["disc_no"] == o.disc_no and manifest["disc"]["discs_total"] == 3
        assert [v["disc_no"] for v in manifest["volume_set"]] == [1, 2, 3]
        seen += [f["sha256"] for f in manifest["files"]]
        assert subprocess.run([sys.executable, str(rr / "verify.py")]).returncode == 0
    assert seen == shas  # every recording once, in recording order


def test_latest_signed_checkpoint_goes_onto_the_disc(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    from station.audit import checkpoint

    make_case(vault, db)
    before = checkpoint.make_checkpoint(vault, db, Settings())
    _, outcomes = build(vault, db, ["2026-0012"])
    rr = extract(outcomes[0].image, tmp_path / "rr")
    on_disc = (rr / "CHECKPOINT.txt").read_text("utf-8")
    # signed at build time: it covers every audit entry up to the build, the job's included
    assert on_disc == checkpoint.latest_checkpoint_text(vault, db)
    size = int(on_disc.splitlines()[1])
    assert size > before.size
    check = subprocess.run(["sha256sum", "-c", "MANIFEST.SHA256"], cwd=rr, capture_output=True)
    assert check.returncode == 0 and b"CHECKPOINT.txt: OK" in check.stdout


def test_stop_request_mid_image_keeps_nothing_partial(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    import threading

    from station.errors import StoppedError

    make_case(vault, db)
    stop = threading.Event()

    def progress(p: DiscProgress) -> None:  # the daemon's shutdown arriving mid-write
        if p.phase == "build" and p.done > 0:
            stop.set()

    out = tmp_path / "out"
    with pytest.raises(StoppedError):
        jobs.build_job(vault, db, label_settings(Settings()), ["2026-0012"], media_key="dvd",
                       out_dir=out, actor="tester", progress=progress, stop=stop)  # fmt: skip
    assert list(out.iterdir()) == []
    job = db.execute("select state, error from disc_jobs").fetchone()
    assert job[0] == "failed" and "Stopped" in job[1]


def test_extreme_names_fit_every_tree(vault: Vault, db: sqlite_utils.Database) -> None:
    # pycdlib limits (HARNESS.md): Joliet 64 UTF-8 bytes, UDF 126 UTF-16 units or 253 Latin-1
    # characters, Rock Ridge 255 bytes. Names past all of them, twice (to collide when cut).
    latin = "a" * 300 + ".MP4"
    mixed = "b" * 200 + "案" * 40 + ".MP4"
    shas = [
        add_recording(vault, db, data(i, 3000 + i), name=n)
        for i, n in enumerate([latin, latin.replace("a", "A"), mixed, mixed + ".MP4"])
    ]
    add_case(db, "2026-0600", "名" * 200, shas)
    _, outcomes = build(vault, db, ["2026-0600"])
    assert all(o.verified for o in outcomes)


# -- two equal-size files swapped in one tree: the check right after a build names them (R12) --

TWIN_A = "DSJ0001_100001_20260301100000_0001.MP4"
TWIN_B = "DSJ0001_100001_20260301100500_0002.MP4"


def _twin_case(vault: Vault, db: sqlite_utils.Database) -> None:
    """A case with two recordings of the same size and different contents."""
    a = add_recording(vault, db, data(21, 90_000), name=TWIN_A,
                      recorded_at="2026-03-01T02:00:00.000000Z")  # fmt: skip
    b = add_recording(vault, db, data(22, 90_000), name=TWIN_B,
                      recorded_at="2026-03-01T02:05:00.000000Z")  # fmt: skip
    add_case(db, "2026-0031", CASE_NAME, [a, b])


def _crc_itu(data: bytes) -> int:
    """CRC-ITU-T (x^16 + x^12 + x^5 + 1, initial 0): the UDF descriptor tag CRC (ECMA-167 3/7.2)."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc


def swap_udf_extents(image: Path, path_a: str, path_b: str) -> None:
    """Swap where two files' data lie in the image's UDF tree only: each File Entry's first
    short allocation descriptor gets the other's position, tag CRC and checksum made right
    again (ECMA-167 4/14.9, 3/7.2). The ISO 9660 trees and the data are not touched. pycdlib
    only finds the File Entries; the check under test reads with 7-Zip."""
    import struct

    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.open(str(image))
    try:
        sectors = [iso.get_record(udf_path="/" + p).extent_location() for p in (path_a, path_b)]
    finally:
        iso.close()
    with open(image, "r+b") as f:
        entries = []
        for sector in sectors:
            f.seek(sector * SECTOR)
            entries.append(bytearray(f.read(SECTOR)))
        places = []
        for fe in entries:
            assert struct.unpack_from("<H", fe, 0)[0] == 261  # a File Entry
            ea_len, ad_len = struct.unpack_from("<II", fe, 168)
            assert ad_len == 8  # one short allocation descriptor
            places.append(176 + ea_len + 4)
        pos = [fe[at : at + 4] for fe, at in zip(entries, places, strict=True)]
        for fe, at, other in zip(entries, places, pos[::-1], strict=True):
            fe[at : at + 4] = other
            crc_len = struct.unpack_from("<H", fe, 10)[0]
            struct.pack_into("<H", fe, 8, _crc_itu(bytes(fe[16 : 16 + crc_len])))
            fe[4] = (sum(fe[0:4]) + sum(fe[5:16])) & 0xFF
        for sector, fe in zip(sectors, entries, strict=True):
            f.seek(sector * SECTOR)
            f.write(fe)


def _swap_record_extents(
    image: Path, names: tuple[str, str], find: Callable[[bytes, str], list[int]]
) -> None:
    """Give two ISO 9660 directory records each other's extent location, both byte orders
    (ECMA-119 9.1.3: bytes 2–9 of a record). ``find(raw, name)`` lists the byte offsets of the
    records naming ``name``; each name must have exactly one."""
    raw = image.read_bytes()
    records = []
    for name in names:
        found = find(raw, name)
        assert len(found) == 1, name
        records.append(found[0])
    extents = [raw[r + 2 : r + 10] for r in records]
    with open(image, "r+b") as f:
        for r, extent in zip(records, extents[::-1], strict=True):
            f.seek(r + 2)
            f.write(extent)


def swap_joliet_extents(image: Path, name_a: str, name_b: str) -> None:
    """Swap two files' extents in the Joliet tree only: their directory records (found by their
    UCS-2 names) get each other's extent (ECMA-119 9.1.3, both byte orders)."""

    def find(raw: bytes, name: str) -> list[int]:
        return [
            at - 33
            for form in (name, name + ";1")
            if (at := raw.find(form.encode("utf-16-be"))) > 0
            and raw[at - 1] == len(form.encode("utf-16-be"))
        ]

    _swap_record_extents(image, (name_a, name_b), find)


def test_swapped_files_on_copy_b_fail_the_build_naming_them(
    vault: Vault, db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R12, each copy verified: two equal-size files swapped in copy B's UDF tree keep the sum
    of the digests (the multiset) but not the digests bound to their paths — the build fails
    and names both files; copy B is not left under a ready name."""
    _twin_case(vault, db)
    seen: dict[str, str] = {}
    real = jobs.write_images

    def write_then_swap(*args: object, **kw: object) -> list[tuple[int, str]]:
        done = real(*args, **kw)  # type: ignore[arg-type]
        outs = args[5]
        image_b = next(o for o in outs if o.name.endswith("B.iso"))  # type: ignore[attr-defined]
        expected = [p for p in args[1].entries if p.file is not None]  # type: ignore[attr-defined]
        seen.update({e.file.name: e.path for e in expected})
        swap_udf_extents(image_b, seen[TWIN_A], seen[TWIN_B])
        return done

    monkeypatch.setattr(jobs, "write_images", write_then_swap)
    with pytest.raises(IntegrityError) as err:
        build(vault, db, ["2026-0031"])
    message = err.value.render()
    assert "1B.iso" in message and TWIN_A in message and TWIN_B in message
    job_id = db.execute("select max(id) from disc_jobs").fetchone()[0]
    row_b = next(r for r in reverify.disc_rows(db, job_id) if r["copy"] == "B")
    assert row_b["state"] == "corrupt" and row_b["image_path"].endswith(".iso.failed")
    result = json.loads(row_b["verify_result"])
    udf = next(r for r in result["readers"] if r["reader"] == "7zip-udf")
    assert sorted(udf["mismatched"]) == sorted([seen[TWIN_A], seen[TWIN_B]])
    assert not udf["missing"] and not udf["extra"]
    # the swap is exactly what a digest sum alone misses: 7-Zip's data sum still equals the
    # manifest's, its names-and-data sum does not
    image = Path(row_b["image_path"])
    expected = [readback.Expected(**e) for e in json.loads(row_b["expected"])]
    tested = subprocess.run(["7zz", "t", "-tudf", "-scrcSHA256", str(image)], capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    flat = " ".join(tested.split())
    assert f"SHA256 for data: {readback.sha256_sum_7zip(e.sha256 for e in expected)}" in flat
    named = readback.sha256_names_sum_7zip(
        [(e.path, e.sha256) for e in expected], readback.folders_of(e.path for e in expected)
    )
    assert f"SHA256 for data and names: {named}" not in flat
    # copy A, untouched, was verified; unswapped, B's names-and-data sum is the manifest's
    row_a = next(r for r in reverify.disc_rows(db, job_id) if r["copy"] == "A")
    assert json.loads(row_a["verify_result"])["ok"]
    swap_udf_extents(image, seen[TWIN_A], seen[TWIN_B])
    again = subprocess.run(["7zz", "t", "-tudf", "-scrcSHA256", str(image)], capture_output=True,
                           text=True, check=True).stdout  # fmt: skip
    assert f"SHA256 for data and names: {named}" in " ".join(again.split())


def test_swapped_files_in_copy_a_joliet_tree_are_named(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    """Copy A's contents are read through its Joliet tree: two equal-size files swapped there
    fail 7-Zip's names-and-data sum (streamed, both named), and xorriso sees their Joliet
    extents differ from their Rock Ridge ones."""
    _twin_case(vault, db)
    job_id, outcomes = build(vault, db, ["2026-0031"])
    row = next(r for r in reverify.disc_rows(db, job_id) if r["copy"] == "A")
    expected = [readback.Expected(**e) for e in json.loads(row["expected"])]
    twins = {e.path.rsplit("/", 1)[-1]: e for e in expected}
    jol = [twins[n].joliet_path.rsplit("/", 1)[-1] for n in (TWIN_A, TWIN_B)]
    swap_joliet_extents(outcomes[0].image, *jol)
    lean = readback.read_back(outcomes[0].image, expected, row["image_sha256"],
                              content_by="7zip-iso")  # fmt: skip
    assert not lean.ok
    by = {r.reader: r for r in lean.readers}
    paths = sorted(twins[n].path for n in (TWIN_A, TWIN_B))
    assert sorted(by["7zip-iso"].mismatched) == paths and by["7zip-iso"].by_path
    assert sorted(m.split(" (")[0] for m in by["xorriso"].mismatched) == paths
    assert by["7zip-udf"].ok  # the UDF tree was not touched
    problems = " ".join(lean.problems())
    assert TWIN_A in problems and TWIN_B in problems


def swap_iso_extents(image: Path, iso_a: str, iso_b: str) -> None:
    """Swap two files' extents in the primary ISO 9660 directory records — the Rock Ridge tree
    (ECMA-119 9.1.3, both byte orders); the file identifiers are found as written (``NAME;1``)."""

    def find(raw: bytes, name: str) -> list[int]:
        form = name.encode("ascii")
        found, at = [], raw.find(form)
        while at > 0:
            if at > 33 and raw[at - 1] == len(form):
                found.append(at - 33)
            at = raw.find(form, at + 1)
        return found

    _swap_record_extents(image, (iso_a, iso_b), find)


def test_swapped_files_in_both_iso_trees_of_copy_b_fail_the_build(
    vault: Vault, db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R12, each copy verified: copy B's contents are read through its UDF tree; two files
    swapped in *both* its ISO 9660 trees (Rock Ridge and Joliet alike, so they agree with each
    other) point those names at the wrong bytes. The UDF tree's extents (read from its file
    entries) differ from the ISO trees' for both: the build fails naming them."""
    _twin_case(vault, db)
    real = jobs.write_images
    twins: dict[str, object] = {}

    def write_then_swap(*args: object, **kw: object) -> list[tuple[int, str]]:
        done = real(*args, **kw)  # type: ignore[arg-type]
        outs = args[5]
        image_b = next(o for o in outs if o.name.endswith("B.iso"))  # type: ignore[attr-defined]
        entries = {e.file.name: e for e in args[1].entries if e.file is not None}  # type: ignore[attr-defined]
        a, b = entries[TWIN_A], entries[TWIN_B]
        twins.update(a=a.path, b=b.path)
        swap_iso_extents(image_b, a.iso_path.rsplit("/", 1)[-1] + ";1",
                         b.iso_path.rsplit("/", 1)[-1] + ";1")  # fmt: skip
        swap_joliet_extents(image_b, a.joliet_path.rsplit("/", 1)[-1],
                            b.joliet_path.rsplit("/", 1)[-1])  # fmt: skip
        return done

    monkeypatch.setattr(jobs, "write_images", write_then_swap)
    with pytest.raises(IntegrityError) as err:
        build(vault, db, ["2026-0031"])
    assert "1B.iso" in err.value.render()
    job_id = db.execute("select max(id) from disc_jobs").fetchone()[0]
    row_b = next(r for r in reverify.disc_rows(db, job_id) if r["copy"] == "B")
    assert row_b["state"] == "corrupt"
    by = {r["reader"]: r for r in json.loads(row_b["verify_result"])["readers"]}
    assert by["7zip-udf"]["ok"], "the UDF tree and the contents are untouched"
    xorriso = by["xorriso"]
    assert xorriso["udf_bound"]
    named = sorted(m.split(" (")[0] for m in xorriso["mismatched"])
    assert named == sorted([twins["a"], twins["b"]])
    assert all("UDF" in m for m in xorriso["mismatched"])
