"""Pure parts of the transcode part: profile choice, the exact ffmpeg argument lists built with
ffmpeg-python, probe parsing, damage checks, verification comparisons, back-off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from station.config import Settings
from station.transcode.jobs import backoff_s
from station.transcode.meta import build_metadata
from station.transcode.plan import (
    build_check,
    build_command,
    build_quality,
    choose_method,
    metadata_args,
)
from station.transcode.probe import MediaInfo, assess, parse_probe
from station.transcode.verify import (
    QualityLimits,
    compare_ffv1,
    compare_quality,
    compare_rewrap,
    compare_timelines,
    parse_framecrc,
    parse_streamhash,
)

MP4 = "mov,mp4,m4a,3gp,3g2,mj2"
G = ["-nostdin", "-hide_banner", "-nostats", "-v", "error", "-y"]


def info(fmt: str, *streams: dict[str, Any]) -> MediaInfo:
    return parse_probe(
        {
            "format": {"format_name": fmt, "duration": "2.0", "size": "1000"},
            "streams": [{"index": i, **s} for i, s in enumerate(streams)],
        }
    )


V264 = {"codec_type": "video", "codec_name": "h264", "avg_frame_rate": "25/1", "nb_frames": "50"}
AAC = {"codec_type": "audio", "codec_name": "aac", "sample_rate": "48000", "nb_frames": "94"}


@pytest.mark.parametrize(
    ("fmt", "streams", "profile", "method", "ext", "audio"),
    [
        (MP4, [V264, AAC], "mp4-h264", "rewrap", "mp4", "copy"),
        # H.265 is re-encoded by default: the copy must play without an HEVC decoder
        (MP4, [{**V264, "codec_name": "hevc"}, AAC], "mp4-h264", "reencode", "mp4", "aac"),
        (MP4, [V264], "mp4-h264", "rewrap", "mp4", None),  # picture only
        (MP4, [AAC], "mp4-h264", "rewrap", "m4a", "copy"),  # audio only
        (
            "avi",
            [{**V264, "codec_name": "mjpeg"}, {**AAC, "codec_name": "pcm_s16le"}],
            "mp4-h264",
            "reencode",
            "mp4",
            "aac",
        ),
        ("avi", [V264, AAC], "mp4-h264", "reencode", "mp4", "aac"),  # right codecs, odd box
        (MP4, [V264, {**AAC, "codec_name": "adpcm_ima_wav"}], "mp4-h264", "reencode", "mp4", "aac"),
        ("matroska,webm", [V264, AAC], "mp4-h264", "reencode", "mp4", "aac"),
        ("wav", [{**AAC, "codec_name": "pcm_s16le"}], "mp4-h264", "reencode", "m4a", "aac"),
        # FFV1: AAC from MP4 loses its priming trim in Matroska -> FLAC; PCM is copied.
        (MP4, [V264, AAC], "ffv1-mkv", "ffv1", "mkv", "flac"),
        ("avi", [V264, {**AAC, "codec_name": "pcm_s16le"}], "ffv1-mkv", "ffv1", "mkv", "copy"),
        ("wav", [{**AAC, "codec_name": "pcm_s16le"}], "ffv1-mkv", "ffv1", "mka", "copy"),
    ],
)
def test_choose_method(
    fmt: str, streams: list[dict[str, Any]], profile: str, method: str, ext: str, audio: str | None
) -> None:
    m = choose_method(profile, info(fmt, *streams))
    assert (m.name, m.ext, m.audio) == (method, ext, audio)


def test_hevc_rewrap_gets_hvc1_tag_and_jpeg_range_ffv1_gets_filter() -> None:
    hevc = info(MP4, {**V264, "codec_name": "hevc"})
    assert choose_method("mp4-h264", hevc).name == "reencode"
    m = choose_method("mp4-h264", hevc, keep_hevc=True)  # the setting transcode.keep_hevc
    assert m.name == "rewrap"
    argv = build_command("ffmpeg", m, Path("s.mp4"), Path("d.mp4"), Path("/w"), {}).argv
    assert argv[argv.index("-tag:v") + 1] == "hvc1"
    mj = {**V264, "codec_name": "mjpeg", "pix_fmt": "yuvj422p"}
    m2 = choose_method("ffv1-mkv", info("avi", mj))
    argv2 = build_command("ffmpeg", m2, Path("s.avi"), Path("d.mkv"), Path("/w"), {}).argv
    vf = "scale=in_range=pc:out_range=pc,format=yuv422p"
    # the same conversion feeds the encoder and the reference hash of the original
    assert [i for i, a in enumerate(argv2) if a == vf] and argv2.count(vf) == 2


def test_rewrap_command_exact() -> None:
    m = choose_method("mp4-h264", info(MP4, V264, AAC))
    meta = {"original_sha256": "ab" * 32, "case": None, "station_id": "S-01"}
    cmd = build_command("/usr/bin/ffmpeg", m, Path("/v/o.mp4"), Path("/a/t.mp4"), Path("/w"), meta)
    assert cmd.argv == [
        "/usr/bin/ffmpeg", *G, "-i", "/v/o.mp4",
        "-map", "0:V", "-map", "0:a", "-f", "mp4", "-c", "copy",
        "-metadata:g:0", "original_sha256=" + "ab" * 32, "-metadata:g:1", "station_id=S-01",
        "-movflags", "+faststart+use_metadata_tags", "/a/t.mp4",
        "-map", "0:V", "-map", "0:a", "-f", "streamhash", "-c", "copy", "-hash", "murmur3",
        "/w/src.packets",
        "-map", "0:a", "-f", "streamhash", "-hash", "murmur3", "/w/src.audio",
    ]  # fmt: skip
    assert cmd.aux == {"src_packets": Path("/w/src.packets"), "src_audio": Path("/w/src.audio")}


def _ffmpeg_python_rewrap(binary: str, m: Any, src: Path, dst: Path, w: Path, meta: Any) -> Any:
    """The re-wrap and its check as ffmpeg-python builds them (the reference layout)."""
    import ffmpeg

    from station.transcode.plan import GLOBAL_ARGS, STREAM_HASH

    def maps(inp: Any) -> list[Any]:
        return ([inp["V"]] if m.has_video else []) + ([inp["a"]] if m.has_audio else [])

    inp = ffmpeg.input(str(src))
    kw: dict[str, Any] = {"c": "copy", "f": "mp4", "movflags": "+faststart+use_metadata_tags"}
    if m.video_tag:
        kw["tag:v"] = m.video_tag
    outs = [ffmpeg.output(*maps(inp), str(dst), **kw, **metadata_args(meta))]
    outs.append(
        ffmpeg.output(*maps(inp), str(w / "src.packets"), c="copy", f="streamhash",
                      hash=STREAM_HASH)
    )  # fmt: skip
    if m.has_audio:
        outs.append(ffmpeg.output(inp["a"], str(w / "src.audio"), f="streamhash", hash=STREAM_HASH))
    make = [binary, *GLOBAL_ARGS, *ffmpeg.merge_outputs(*outs).get_args()]
    inp = ffmpeg.input(str(dst))
    outs = [
        ffmpeg.output(*maps(inp), str(w / "dst.packets"), c="copy", f="streamhash",
                      hash=STREAM_HASH)
    ]  # fmt: skip
    if m.has_audio:
        outs.append(ffmpeg.output(inp["a"], str(w / "dst.audio"), f="streamhash", hash=STREAM_HASH))
    check = [binary, *GLOBAL_ARGS, *ffmpeg.merge_outputs(*outs).get_args()]
    return make, check


@pytest.mark.parametrize(
    "streams",
    [[V264, AAC], [V264], [AAC], [{**V264, "codec_name": "hevc"}, AAC]],
    ids=["video+audio", "video", "audio", "hevc-kept"],
)
def test_rewrap_argv_is_laid_out_as_ffmpeg_python_lays_it_out(
    streams: list[dict[str, Any]],
) -> None:
    """The re-wrap's plain argument lists (run-once starts without ffmpeg-python) are the ones
    ffmpeg-python gives, for every stream layout and with CJK metadata."""
    m = choose_method("mp4-h264", info(MP4, *streams), keep_hevc=True)
    assert m.name == "rewrap"
    meta = {"original_sha256": "ab" * 32, "case": "京执（2026）12号", "comment": "归档 / x y",
            "title": None, "station_id": "S-01"}  # fmt: skip
    src, dst, w = Path("/v/原始.mp4"), Path("/a/.tmp-1-t.mp4"), Path("/w/1-2")
    make, check = _ffmpeg_python_rewrap("/usr/bin/ffmpeg", m, src, dst, w, meta)
    assert build_command("/usr/bin/ffmpeg", m, src, dst, w, meta).argv == make
    assert build_check("/usr/bin/ffmpeg", m, dst, w).argv == check


def test_reencode_command_exact() -> None:
    mj = {**V264, "codec_name": "mjpeg"}
    m = choose_method("mp4-h264", info("avi", mj, {**AAC, "codec_name": "pcm_s16le"}))
    cmd = build_command("ffmpeg", m, Path("o.avi"), Path("t.mp4"), Path("/w"), {})
    assert cmd.argv == [
        "ffmpeg", *G, "-i", "o.avi", "-map", "0:V", "-map", "0:a",
        "-f", "mp4", "-b:a", "160k", "-c:a", "aac", "-c:v", "libx264", "-crf", "20",
        "-fps_mode", "passthrough", "-movflags", "+faststart+use_metadata_tags",
        "-pix_fmt", "yuv420p", "-preset", "veryfast", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
        "t.mp4",
        "-map", "0:V", "-map", "0:a", "-f", "framecrc", "-fps_mode", "passthrough",
        "/w/src.timeline",
    ]  # fmt: skip


def test_ffv1_and_check_commands_exact() -> None:
    m = choose_method("ffv1-mkv", info(MP4, V264, AAC))
    cmd = build_command("ffmpeg", m, Path("o.mp4"), Path("t.mkv"), Path("/w"), {})
    assert cmd.argv == [
        "ffmpeg", *G, "-i", "o.mp4", "-map", "0:V", "-map", "0:a",
        "-f", "matroska", "-c:a", "flac", "-c:v", "ffv1", "-coder", "1", "-context", "1",
        "-fps_mode", "passthrough", "-g", "1", "-level", "3", "-slicecrc", "1", "t.mkv",
        "-map", "0:V", "-f", "streamhash", "-fps_mode", "passthrough", "-hash", "murmur3",
        "/w/src.picture",
        "-map", "0:a", "-f", "framecrc", "/w/src.timeline",
    ]  # fmt: skip
    check = build_check("ffmpeg", m, Path("t.mkv"), Path("/w"))
    assert check.argv == [
        "ffmpeg", *G, "-i", "t.mkv",
        "-map", "0:V", "-f", "streamhash", "-fps_mode", "passthrough", "-hash", "murmur3",
        "/w/dst.picture",
        "-map", "0:a", "-f", "framecrc", "/w/dst.timeline",
    ]  # fmt: skip
    picture_only = choose_method("mp4-h264", info(MP4, V264))
    check2 = build_check("ffmpeg", picture_only, Path("t.mp4"), Path("/w"))
    assert "0:a" not in check2.argv and set(check2.aux) == {"dst_packets"}


def test_metadata_args_sorted_and_empty_left_out() -> None:
    assert metadata_args({"z": "1", "a": "", "m": None, "b": "案件 2"}) == {
        "metadata:g:0": "b=案件 2",
        "metadata:g:1": "z=1",
    }


def test_build_metadata_carries_r5_r6_fields() -> None:
    row = {
        "sha256": "cd" * 32,
        "recorded_at": "2026-11-20T01:02:03.000000Z",
        "officer_id": "100001",
        "officer_name": "张三",
        "device_id": "DSJ0001",
        "unit_id": "330100000000",
        "unit_name": "城管中队",
    }
    meta = build_metadata(row, ["2026-001"], Settings(), "mp4-h264")
    assert meta["original_sha256"] == "cd" * 32
    assert meta["officer"] == "100001 张三"
    assert meta["unit"] == "330100000000 城管中队"
    assert meta["case"] == "2026-001"
    assert meta["creation_time"] == "2026-11-20T01:02:03.000000Z"
    assert meta["station_id"] == "STATION-01"


def test_parse_probe_rotation_fps_and_attached_pictures() -> None:
    i = parse_probe(
        {
            "format": {"format_name": MP4, "duration": "N/A"},
            "streams": [
                {**V264, "index": 0, "side_data_list": [{"rotation": -90}], "r_frame_rate": "0/0"},
                {"index": 1, "codec_type": "video", "codec_name": "mjpeg",
                 "disposition": {"attached_pic": 1}},
                {"index": 2, "codec_type": "data", "codec_name": "bin_data"},
            ],
        }
    )  # fmt: skip
    assert i.duration is None
    assert [s.index for s in i.video] == [0]
    assert i.video[0].rotation == -90 and i.video[0].fps == 25.0
    assert i.streams[2].kind == "other"


def test_assess_finds_no_streams_and_zero_frames() -> None:
    assert assess(info("mov", {"codec_type": "data", "codec_name": "x"})) is not None
    assert "zero frames" in (assess(info(MP4, {**V264, "nb_frames": "0"})) or "")
    assert assess(info(MP4, V264, AAC)) is None


def test_streamhash_compare_detects_any_difference() -> None:
    a = "0,v,MURMUR3=aa\n1,a,MURMUR3=bb\n"
    assert parse_streamhash(a) == {"0,v": "MURMUR3=aa", "1,a": "MURMUR3=bb"}
    assert compare_rewrap(a, a, "0,a,MURMUR3=cc", "0,a,MURMUR3=cc").ok
    assert not compare_rewrap(a, "0,v,MURMUR3=aa\n1,a,MURMUR3=bX\n", None, None).ok
    # a lost edit list: same packets, different decoded audio
    assert not compare_rewrap(a, a, "0,a,MURMUR3=cc", "0,a,MURMUR3=dd").ok
    assert not compare_rewrap("", "", None, None).ok  # nothing compared is not a pass


def framecrc(video_frames: int, audio_frames: int, *, vdur: int = 1, adur: int = 1024) -> str:
    lines = ["#tb 0: 1/25", "#media_type 0: video", "#tb 1: 1/48000", "#media_type 1: audio"]
    lines += [f"0, {i}, {i}, {vdur}, 115200, 0x0" for i in range(video_frames)]
    lines += [f"1, {i * adur}, {i * adur}, {adur}, 4096, 0x0" for i in range(audio_frames)]
    return "\n".join(lines)


def test_timelines_within_one_frame() -> None:
    src = parse_framecrc(framecrc(50, 94))
    assert src[0].kind == "video" and src[0].frames == 50 and src[0].seconds == 2.0
    assert src[1].total == 94 * 1024
    assert compare_timelines(src, parse_framecrc(framecrc(51, 94))).ok  # one frame longer: ok
    assert not compare_timelines(src, parse_framecrc(framecrc(52, 94))).ok  # two: not ok
    assert not compare_timelines(src, parse_framecrc(framecrc(50, 90))).ok  # audio short
    assert not compare_timelines(src, parse_framecrc(framecrc(0, 94))).ok  # video lost


def test_ffv1_compare_needs_equal_pictures_and_audio_length() -> None:
    a = parse_framecrc(framecrc(0, 94))
    b = parse_framecrc(framecrc(0, 95))
    assert compare_ffv1("0,v,MURMUR3=aa", "0,v,MURMUR3=aa", a, a).ok
    assert not compare_ffv1("0,v,MURMUR3=aa", "0,v,MURMUR3=ab", a, a).ok
    assert not compare_ffv1("0,v,MURMUR3=aa", "0,v,MURMUR3=aa", a, b).ok


def test_backoff_doubles_and_caps() -> None:
    assert [backoff_s(n, 60, 600) for n in (1, 2, 3, 4, 5)] == [60, 120, 240, 480, 600]


def test_quality_command_exact() -> None:
    hevc = info(MP4, {**V264, "codec_name": "hevc"}, AAC)
    m = choose_method("mp4-h264", hevc)
    cmd = build_quality("ffmpeg", m, Path("/v/o.mp4"), Path("/a/t:x.mp4"), Path("/w:1"))
    assert cmd.argv == [
        "ffmpeg", *G, "-i", "/a/t:x.mp4", "-i", "/v/o.mp4",
        "-filter_complex",
        "[0:V:0]format=yuv420p,setpts=PTS-STARTPTS,split[d1][d2];"
        "[1:V:0]pad=ceil(iw/2)*2:ceil(ih/2)*2,format=yuv420p,setpts=PTS-STARTPTS,split[s1][s2];"
        "[d1][s1]psnr=stats_file='/w\\:1/quality.psnr'[p];"
        "[d2][s2]ssim=stats_file='/w\\:1/quality.ssim'[q]",
        "-map", "[p]", "-f", "null", "-", "-map", "[q]", "-f", "null", "-",
    ]  # fmt: skip
    assert set(cmd.aux) == {"quality_psnr", "quality_ssim"}
    with pytest.raises(ValueError):
        build_quality("ffmpeg", choose_method("mp4-h264", info(MP4, V264)), Path("a"), Path("b"),
                      Path("/w"))  # fmt: skip


PSNR = (
    "n:1 mse_avg:2.10 mse_y:2.50 mse_u:1.20 mse_v:1.30 psnr_avg:44.91 psnr_y:44.15\n"
    "n:2 mse_avg:0.00 mse_y:0.00 mse_u:0.00 mse_v:0.00 psnr_avg:inf psnr_y:inf\n"
    "n:3 mse_avg:9.00 mse_y:9.00 mse_u:9.00 mse_v:9.00 psnr_avg:38.59 psnr_y:38.59\n"
)
SSIM = (
    "n:1 Y:0.991 U:0.990 V:0.989 All:0.990500 (20.2)\n"
    "n:2 Y:1.000 U:1.000 V:1.000 All:1.000000 (inf)\n"
    "n:3 Y:0.950 U:0.951 V:0.949 All:0.950100 (13.0)\n"
)


@pytest.mark.parametrize(
    ("src_frames", "limits", "ok"),
    [
        (3, QualityLimits(30.0, 0.90), [True, True, True]),
        (4, QualityLimits(30.0, 0.90), [False, True, True]),  # a frame of the original missing
        (3, QualityLimits(42.0, 0.90), [True, False, True]),  # mean of 44.91 and 38.59 is 41.75
        (3, QualityLimits(30.0, 0.96), [True, True, False]),  # frame 3 is at 0.9501
    ],
)
def test_compare_quality(src_frames: int, limits: QualityLimits, ok: list[bool]) -> None:
    rows = compare_quality(PSNR, SSIM, src_frames, limits)
    assert [r["ok"] for r in rows] == ok
    assert rows[1]["derivative"] == 41.75 and rows[2]["frame"] == 3
    assert not any(r["ok"] for r in compare_quality("", "", 3, limits))
