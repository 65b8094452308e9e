"""Real ffmpeg on real generated clips: every profile and method, verification, metadata, the
catalog link and audit entry (R7), and the bad inputs of issue 4 that concern the original."""

from __future__ import annotations

import datetime as dt
import json
import os
import struct
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from transcode_support import (
    add_recording,
    audio_src,
    ff,
    h264_aac_mp4,
    h265_aac_mp4,
    mjpeg_pcm_avi,
    probe_json,
    sha256,
    video_src,
)

from station.config import Settings
from station.transcode.service import run_once
from station.transcode.worker import work_root
from station.vault import Vault


def derivative(db: sqlite_utils.Database, sha: str) -> dict[str, Any]:
    rows = list(db.query("select * from derivatives where original_sha256 = ?", [sha]))
    assert len(rows) == 1
    return rows[0]


def recording(db: sqlite_utils.Database, sha: str) -> dict[str, Any]:
    return dict(db["recordings"].get(sha))  # type: ignore[union-attr]


def audit(db: sqlite_utils.Database, event: str, sha: str) -> list[dict[str, Any]]:
    return [
        {**r, "data": json.loads(r["data"])}
        for r in db.query("select * from audit_log where event = ? and subject = ?", [event, sha])
    ]


def top_level_atoms(path: Path) -> list[str]:
    names, data, pos = [], path.read_bytes(), 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        names.append(kind.decode("latin-1"))
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
        if size < 8:
            break
        pos += size
    return names


def video_stream(path: Path) -> dict[str, Any]:
    return next(s for s in probe_json(path)["streams"] if s["codec_type"] == "video")


def test_rewrap_h264_aac_mp4(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    src = h264_aac_mp4(tmp_path / "DSJ0001_100001_20261120090203_0001.MP4")
    sha = add_recording(vault, db, src, duration_s=None, end_at="2026-11-20T01:02:09.000000Z")
    original = vault.original_path(sha, "mp4")
    summary = run_once(vault, db, settings, actor="tester")
    assert (summary.enqueued, summary.done, summary.failed) == (1, 1, 0)

    d = derivative(db, sha)
    assert (d["state"], d["method"], d["profile"], d["partial"]) == (
        "done",
        "rewrap",
        "mp4-h264",
        0,
    )
    out = vault.home / d["vault_path"]
    assert out == vault.archival_path(sha, "mp4-h264", "mp4")
    assert d["sha256"] == sha256(out) and d["size"] == out.stat().st_size
    assert oct(out.stat().st_mode & 0o777) == "0o444"
    assert d["ffmpeg_version"].startswith("ffmpeg version")
    command = json.loads(d["command"])
    assert command[command.index("-c") + 1] == "copy" and str(original) in command
    checks = json.loads(d["verification"])["checks"]
    assert [c["check"] for c in checks] == ["packet streamhash", "decoded audio hash"]
    assert all(c["ok"] for c in checks)
    # faststart: the index (moov) comes before the media data
    atoms = top_level_atoms(out)
    assert atoms.index("moov") < atoms.index("mdat")
    tags = probe_json(out)["format"]["tags"]
    assert tags["original_sha256"] == sha and tags["station_id"] == settings.station.id
    assert tags["officer"] == "100001" and tags["device"] == "DSJ0001"
    # the original is untouched (R7), the derivative linked and audited in the same change
    assert sha256(original) == sha
    entries = audit(db, "derivative.created", sha)
    assert len(entries) == 1 and entries[0]["data"]["sha256"] == d["sha256"]
    rec = recording(db, sha)
    assert rec["duration_s"] == pytest.approx(2.0, abs=0.05)
    assert rec["end_at"].startswith("2026-11-20T01:02:05")
    assert not list(vault.archival.rglob(".tmp-*")) and not any(work_root(vault).iterdir())
    # nothing more to do: a second run queues nothing and changes nothing
    again = run_once(vault, db, settings)
    assert (again.enqueued, again.done) == (0, 0)


def test_reencode_mjpeg_pcm_avi(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    sha = add_recording(vault, db, mjpeg_pcm_avi(tmp_path / "clip.AVI"), duration_s=7.5)
    run_once(vault, db, settings)
    d = derivative(db, sha)
    assert (d["state"], d["method"], d["ext"]) == ("done", "reencode", "mp4")
    codecs = {
        s["codec_type"]: s["codec_name"]
        for s in probe_json(vault.home / d["vault_path"])["streams"]
    }
    assert codecs == {"video": "h264", "audio": "aac"}
    checks = {c["check"]: c for c in json.loads(d["verification"])["checks"]}
    assert checks["video duration"]["ok"] and checks["audio duration"]["ok"]
    assert checks["video duration"]["frames"] == [50, 50]
    # R1: the probe's duration replaces what the row said, and the end and delay follow it.
    rec = recording(db, sha)
    assert rec["duration_s"] == pytest.approx(2.0, abs=0.05)
    end = dt.datetime.fromisoformat(rec["end_at"])
    start = dt.datetime.fromisoformat(rec["recorded_at"])
    assert (end - start).total_seconds() == pytest.approx(rec["duration_s"], abs=0.001)
    ingested = dt.datetime.fromisoformat(rec["ingested_at"])
    assert rec["ingest_delay_s"] == pytest.approx((ingested - end).total_seconds(), abs=0.001)


def test_h265_original_is_reencoded_to_h264_aac_and_compared_frame_by_frame(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    """Issue 20: the default profile gives H.264 + AAC from H.265 (many office PCs have no HEVC
    decoder); a re-encode is checked picture by picture (PSNR/SSIM), the original is untouched."""
    src = h265_aac_mp4(tmp_path / "DSJ0001_100001_20261120090203_0002.MP4")
    assert {s["codec_name"] for s in probe_json(src)["streams"]} == {"hevc", "aac"}
    sha = add_recording(vault, db, src)
    run_once(vault, db, settings)
    d = derivative(db, sha)
    assert (d["state"], d["method"], d["profile"]) == ("done", "reencode", "mp4-h264")
    streams = probe_json(vault.home / d["vault_path"])["streams"]
    assert {s["codec_type"]: s["codec_name"] for s in streams} == {"video": "h264", "audio": "aac"}
    checks = {c["check"]: c for c in json.loads(d["verification"])["checks"]}
    assert checks["decoded frames compared"]["derivative"] == 50
    assert checks["mean PSNR"]["ok"] and checks["mean PSNR"]["derivative"] >= 30
    assert checks["lowest SSIM"]["ok"] and checks["lowest SSIM"]["derivative"] >= 0.9
    assert sha256(vault.original_path(sha, "mp4")) == sha  # the bit-exact master (R7)


def test_keep_hevc_setting_rewraps_and_a_strict_tolerance_fails_the_reencode(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    sha = add_recording(vault, db, h265_aac_mp4(tmp_path / "a.mp4", 1.0))
    settings.transcode.keep_hevc = True
    run_once(vault, db, settings)
    d = derivative(db, sha)
    assert d["method"] == "rewrap"
    assert video_stream(vault.home / d["vault_path"])["codec_name"] == "hevc"
    # a tolerance no lossy encode meets: the picture comparison refuses the derivative
    settings.transcode.keep_hevc = False
    settings.transcode.verify_min_psnr_db = 99.0
    settings.transcode.max_attempts = 1
    sha2 = add_recording(vault, db, h265_aac_mp4(tmp_path / "b.mp4", 1.2))
    run_once(vault, db, settings)
    d2 = derivative(db, sha2)
    assert (d2["state"], d2["failure"]) == ("failed", "verify")
    assert "mean PSNR" in d2["error"]


def test_ffv1_profile_lossless_picture(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    settings.transcode.profile = "ffv1-mkv"
    a = add_recording(vault, db, h264_aac_mp4(tmp_path / "a.mp4"))
    b = add_recording(vault, db, mjpeg_pcm_avi(tmp_path / "b.avi"))  # full-range JPEG pictures
    summary = run_once(vault, db, settings)
    assert summary.done == 2
    for sha, audio in ((a, "flac"), (b, "pcm_s16le")):
        d = derivative(db, sha)
        assert (d["state"], d["method"], d["ext"]) == ("done", "ffv1", "mkv")
        streams = probe_json(vault.home / d["vault_path"])["streams"]
        assert {s["codec_type"]: s["codec_name"] for s in streams} == {
            "video": "ffv1",
            "audio": audio,
        }
        command = json.loads(d["command"])
        assert command[command.index("-level") + 1] == "3"
        assert command[command.index("-slicecrc") + 1] == "1"
        checks = {c["check"]: c for c in json.loads(d["verification"])["checks"]}
        pic = checks["decoded picture hash"]
        assert pic["ok"] and pic["original"] == pic["derivative"]
        assert checks["decoded audio length"]["ok"]


def test_audio_only_and_picture_only(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    wav = tmp_path / "note.WAV"
    ff(*audio_src(1.5, 16000), "-c:a", "pcm_s16le", str(wav))
    m4a = tmp_path / "voice.MP4"
    ff(*audio_src(1.5), "-c:a", "aac", str(m4a))
    pic = tmp_path / "silent.MP4"
    ff(*video_src(1.0), "-c:v", "libx264", "-preset", "ultrafast", str(pic))
    shas = {
        "wav": add_recording(vault, db, wav, media_kind="audio"),
        "m4a": add_recording(vault, db, m4a, media_kind="audio"),
        "pic": add_recording(vault, db, pic),
    }
    assert run_once(vault, db, settings).done == 3
    got = {k: derivative(db, s) for k, s in shas.items()}
    assert (got["wav"]["method"], got["wav"]["ext"]) == ("reencode", "m4a")
    assert (got["m4a"]["method"], got["m4a"]["ext"]) == ("rewrap", "m4a")
    assert (got["pic"]["method"], got["pic"]["ext"]) == ("rewrap", "mp4")
    kinds = [s["codec_type"] for s in probe_json(vault.home / got["pic"]["vault_path"])["streams"]]
    assert kinds == ["video"]
    kinds = [s["codec_type"] for s in probe_json(vault.home / got["wav"]["vault_path"])["streams"]]
    assert kinds == ["audio"]


def test_variable_frame_rate_keeps_every_frame(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    src = tmp_path / "vfr.mkv"  # 25 frames at 25 fps, then 25 frames at 10 fps
    ff(*video_src(2.0), "-vf", "setpts='if(lt(N,25),N/25,1+(N-25)/10)/TB'", "-fps_mode", "vfr",
       "-c:v", "libx264", "-preset", "ultrafast", str(src))  # fmt: skip
    sha = add_recording(vault, db, src)
    run_once(vault, db, settings)
    d = derivative(db, sha)
    assert (d["state"], d["method"]) == ("done", "reencode")
    check = {c["check"]: c for c in json.loads(d["verification"])["checks"]}["video duration"]
    assert check["frames"] == [50, 50]  # nothing duplicated to a constant rate, nothing dropped
    assert check["original"] == pytest.approx(3.5, abs=0.11)


def test_rotation_kept_by_rewrap_applied_by_reencode(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    plain = h264_aac_mp4(tmp_path / "plain.mp4", 1.0)
    plain4 = tmp_path / "plain4.mp4"
    ff(*video_src(1.0), "-c:v", "mpeg4", str(plain4))
    rot, rot_mpeg4 = tmp_path / "rot.mp4", tmp_path / "rot4.mp4"
    for a_src, a_dst in ((plain, rot), (plain4, rot_mpeg4)):  # a phone held upright
        ff("-i", str(a_src), "-c", "copy", "-metadata:s:v", "rotate=90", str(a_dst))
    a, b = add_recording(vault, db, rot), add_recording(vault, db, rot_mpeg4)
    assert run_once(vault, db, settings).done == 2
    src_rot = video_stream(rot)["side_data_list"][0]["rotation"]
    out_a = video_stream(vault.home / derivative(db, a)["vault_path"])
    assert out_a["side_data_list"][0]["rotation"] == src_rot  # re-wrap: display matrix kept
    out_b = video_stream(vault.home / derivative(db, b)["vault_path"])
    assert (out_b["width"], out_b["height"]) == (240, 320)  # re-encode: picture turned upright
    assert not out_b.get("side_data_list")


def assert_damaged(
    vault: Vault, db: sqlite_utils.Database, sha: str, message: str
) -> dict[str, Any]:
    d = derivative(db, sha)
    assert (d["state"], d["failure"]) == ("failed", "damaged")
    assert d["error"].startswith("damaged source") and message in d["error"]
    rec = recording(db, sha)
    assert rec["damaged"] == 1 and message in rec["damage_reason"]  # flagged for a clerk
    entries = audit(db, "derivative.failed", sha)
    assert len(entries) == 1 and entries[0]["data"]["flagged"] is True
    assert sha256(vault.original_path(sha, rec["ext"])) == sha  # the original stays as it is
    assert not vault.archival_path(sha, d["profile"], "mp4").exists()
    assert not list(vault.archival.rglob(".tmp-*"))
    return d


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("empty.MP4", lambda p: p.write_bytes(b""), "empty file"),
        ("notes.MP4", lambda p: p.write_text("这不是视频 not a video\n" * 50), "Invalid data"),
        ("nostreams.MP4", lambda p: ff(*video_src(1), "-frames:v", "0", "-c:v", "libx264", str(p)),
         "no audio or video stream"),
        ("zero.AVI", lambda p: ff(*video_src(1), "-frames:v", "0", "-c:v", "mjpeg", str(p)),
         "zero frames"),
    ],
)  # fmt: skip
def test_unusable_originals_fail_as_damaged(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    tmp_path: Path,
    name: str,
    make: Any,
    message: str,
) -> None:
    src = tmp_path / name
    make(src)
    sha = add_recording(vault, db, src)
    summary = run_once(vault, db, settings)
    assert (summary.failed, summary.partial, summary.retry_later) == (1, 0, 0)
    d = assert_damaged(vault, db, sha, message)
    assert d["vault_path"] is None and d["attempts"] == 1  # permanent: not retried


def test_truncated_mp4_without_index(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    full = h264_aac_mp4(tmp_path / "full.mp4", 3.0)  # index (moov) at the end
    cut = tmp_path / "cut.MP4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size * 6 // 10])
    sha = add_recording(vault, db, cut)
    run_once(vault, db, settings)
    d = assert_damaged(vault, db, sha, "moov atom not found")
    assert d["partial"] == 0 and d["vault_path"] is None  # nothing ffmpeg could read


def test_truncated_mp4_with_index_gets_partial_salvage(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    full = h264_aac_mp4(tmp_path / "full.mp4", 3.0, "-movflags", "+faststart")
    cut = tmp_path / "cut.MP4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size * 6 // 10])
    sha = add_recording(vault, db, cut)
    summary = run_once(vault, db, settings)
    assert (summary.failed, summary.partial) == (1, 1)
    d = assert_damaged(vault, db, sha, "partial file")
    assert d["partial"] == 1 and d["ext"] == "partial.mp4"
    salvage = vault.home / d["vault_path"]
    assert salvage == vault.archival_path(sha, "mp4-h264", "partial.mp4")
    assert d["sha256"] == sha256(salvage)
    seconds = float(probe_json(salvage)["format"]["duration"])
    assert 0.3 < seconds < 3.0  # what could be read, and no more
    entry = audit(db, "derivative.failed", sha)[0]["data"]
    assert entry["partial"] is True and entry["salvage_sha256"] == d["sha256"]
    assert os.stat(salvage).st_mode & 0o222 == 0


def test_case_linked_after_the_derivative_gets_a_new_tagged_version(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    """Issue 20: the derivative's container tags follow the case links — as a new derivative
    version with its own hash, audited; the original is never changed (R7)."""
    from station.cases import store
    from station.verify import run_verify

    sha = add_recording(vault, db, h264_aac_mp4(tmp_path / "t.mp4", 1.0))
    run_once(vault, db, settings)
    first = derivative(db, sha)
    assert "case" not in probe_json(vault.home / first["vault_path"])["format"]["tags"]
    store.create_case(db, "湘执〔2026〕7号", name="占道经营案", actor="clerk1")
    store.link(db, "湘执〔2026〕7号", [sha], actor="clerk1")
    summary = run_once(vault, db, settings)
    assert (summary.enqueued, summary.done) == (0, 0)  # no new job: a new version of the same
    second = derivative(db, sha)
    assert second["version"] == 2 and second["tagged_cases"] == "湘执〔2026〕7号"
    assert second["sha256"] != first["sha256"]
    out = vault.home / second["vault_path"]
    assert out.name.endswith(".mp4-h264.v2.mp4") and second["sha256"] == sha256(out)
    tags = probe_json(out)["format"]["tags"]
    assert tags["case"] == "湘执〔2026〕7号" and tags["original_sha256"] == sha
    assert not (vault.home / first["vault_path"]).exists()  # superseded, listed below
    old = db.execute("select version, sha256 from derivative_versions").fetchall()
    assert old == [(1, first["sha256"])]
    [entry] = audit(db, "derivative.retagged", sha)
    assert entry["data"]["previous"]["sha256"] == first["sha256"]
    assert entry["data"]["sha256"] == second["sha256"] and entry["data"]["cases"] == [
        "湘执〔2026〕7号"
    ]
    assert sha256(vault.original_path(sha, "mp4")) == sha
    # nothing more to do, and the integrity check accepts the new version
    run_once(vault, db, settings)
    assert derivative(db, sha)["version"] == 2
    report = run_verify(vault, db, settings)
    # (this test's recording row is written without an ingest entry; only derivatives count)
    bad = [f for f in report.findings if f.where == "derivatives" or f.code.startswith("file.")]
    assert bad == [] and report.files_checked == 2, report.findings
    # unlinking removes the tag again (version 3)
    store.unlink(db, "湘执〔2026〕7号", [sha], actor="clerk1")
    run_once(vault, db, settings)
    third = derivative(db, sha)
    assert third["version"] == 3 and third["tagged_cases"] == ""
    assert "case" not in probe_json(vault.home / third["vault_path"])["format"]["tags"]


def test_a_failing_retag_keeps_the_version_and_waits_before_trying_again(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    from station.cases import store
    from station.transcode import retag
    from station.transcode.binaries import Tools

    sha = add_recording(vault, db, h264_aac_mp4(tmp_path / "f.mp4", 0.6))
    run_once(vault, db, settings)
    before = derivative(db, sha)
    store.create_case(db, "F-1", name="案件", actor="clerk1")
    store.link(db, "F-1", [sha], actor="clerk1")
    assert [r["id"] for r in retag.stale(db)] == [before["id"]]
    broken = Tools(ffmpeg="false", ffprobe="false", source="test", version="none")
    assert retag.retag_stale(vault, db, settings, broken, actor="t") == 0
    after = derivative(db, sha)
    assert after["sha256"] == before["sha256"] and after["version"] == 1
    assert after["retag_failed_at"] and (vault.home / after["vault_path"]).is_file()
    assert retag.stale(db) == [] and retag.count_stale(db) == 0  # waits retry_max_s
    assert len(retag.stale(db, retry_s=0)) == 1
    assert audit(db, "derivative.retagged", sha) == []
