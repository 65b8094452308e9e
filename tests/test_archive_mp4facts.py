"""The format facts of a metadata record read from the boxes (station/archive/mp4facts.py),
compared with ffprobe on real files made by ffmpeg: where the box reader answers, every field
the record lists (格式名称, 视频编码, 音频编码, 分辨率, 帧率, 音频采样率, 时长) is ffprobe's; where
it cannot tell, it answers None and ``records.probe_file`` asks ffprobe."""

from __future__ import annotations

from pathlib import Path

import pytest
from transcode_support import audio_src, ff

from station.archive import mp4facts
from station.archive import records as rec
from station.config import Settings

H264 = ["-c:v", "libx264", "-preset", "ultrafast"]


def video(size: str, rate: str, seconds: float = 1.3) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]


CASES = {
    # a recorder's usual file: 1080p (8 rows cropped from 1088), AAC 48 kHz
    "1080p-25-aac48k": [*video("1920x1080", "25", 0.6), *audio_src(0.6, 48000), *H264,
                        "-c:a", "aac"],
    "720p-ntsc-aac44k-faststart": [*video("1280x720", "30000/1001"), *audio_src(1.3, 44100),
                                   *H264, "-c:a", "aac", "-movflags", "+faststart"],
    "odd-width-854x480-high": [*video("854x480", "24"), "-c:v", "libx264", "-preset", "fast",
                               "-profile:v", "high"],
    "odd-height-interlaced": [*video("720x576", "25"), *H264, "-flags", "+ilme+ildct",
                              "-x264opts", "tff=1"],
    "aac-22k-no-sbr-flag": [*video("320x240", "15"), *audio_src(1.3, 22050), *H264,
                            "-c:a", "aac"],
    "mov-container": [*video("640x360", "50"), *audio_src(1.3, 32000), *H264, "-c:a", "aac",
                      "-f", "mov"],
    "yuv444": [*video("320x240", "25"), *H264, "-pix_fmt", "yuv444p"],
    "variable-rate": [*video("320x240", "25"), *H264, "-vf", "setpts=PTS+gt(N\\,10)*0.02/TB",
                      "-fps_mode", "vfr"],
    "scaling-matrices-in-pps": [*video("320x240", "25"), "-c:v", "libx264", "-preset", "fast",
                                "-profile:v", "high", "-x264opts", "cqm=jvt"],
    "audio-only-m4a": [*audio_src(1.3, 48000), "-c:a", "aac", "-f", "mp4"],
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_box_reader_gives_ffprobes_record_facts(name: str, tmp_path: Path) -> None:
    ext = "mov" if name == "mov-container" else "m4a" if name.startswith("audio") else "mp4"
    clip = tmp_path / f"{name}.{ext}"
    ff(*CASES[name], str(clip))
    boxes = mp4facts.record_facts(clip)
    assert boxes is not None, "a plain H.264 + AAC LC MP4/MOV is read without ffprobe"
    assert boxes == rec.ffprobe_facts(clip, Settings(), tmp_path)


def test_a_file_the_boxes_cannot_tell_goes_to_ffprobe(tmp_path: Path) -> None:
    """H.265 (its parameter sets are not read here) and a truncated file: None from the boxes,
    and ``probe_file`` still gives ffprobe's facts."""
    clip = tmp_path / "hevc.mp4"
    ff(*video("320x240", "25"), "-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
       "log-level=error", "-tag:v", "hvc1", str(clip))  # fmt: skip
    assert mp4facts.record_facts(clip) is None
    facts = rec.probe_file(clip, Settings(), tmp_path)
    assert facts["video_codec"] == "hevc" and facts["resolution"] == "320x240"
    cut = tmp_path / "cut.mp4"
    ff(*video("320x240", "25"), *H264, str(cut))
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) - 100])
    assert mp4facts.record_facts(cut) is None


def _asc(aot: int, index: int, channels: int, tail: str = "") -> bytes:
    bits = f"{aot:05b}{index:04b}{channels:04b}000" + tail
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


def test_audio_specific_configs_the_decoder_might_read_otherwise() -> None:
    """AAC LC at 32 kHz and up, or with ffmpeg's "no SBR" extension at any rate: the config's
    rate. Below 32 kHz without that extension (implicit HE-AAC doubles the decoder's rate),
    HE-AAC itself, or another extension: not told here."""
    no_sbr = f"{0x2B7:011b}{5:05b}0"
    assert mp4facts._asc_check(_asc(2, 3, 2)) == 48000
    assert mp4facts._asc_check(_asc(2, 4, 1)) == 44100
    assert mp4facts._asc_check(_asc(2, 7, 2, no_sbr)) == 22050
    for unsure in (
        _asc(2, 7, 2),  # 22.05 kHz, SBR not ruled out
        _asc(5, 3, 2),  # HE-AAC
        _asc(2, 3, 2, f"{0x2B7:011b}{5:05b}1{6:04b}"),  # SBR present
        _asc(2, 3, 0),  # a program config element follows
        b"\x12",
    ):
        with pytest.raises(mp4facts._Unsure):
            mp4facts._asc_check(unsure)


@pytest.mark.parametrize("scaling", ["0", "1"])
def test_h264_size_crops_as_the_decoder_does(scaling: str) -> None:
    """A hand-made SPS: 1920x1088 in macroblocks, 8 rows cropped (4 units of 2 in 4:2:0); with
    scaling matrices in the SPS (not parsed here) the reader leaves it to ffprobe."""
    bits = "".join(
        [
            "01100100",  # profile_idc 100 (High)
            "00000000",  # constraint flags
            "00101000",  # level 40
            "1",  # sps id 0
            "010",  # chroma_format_idc 1
            "1",  # bit depth luma 0
            "1",  # bit depth chroma 0
            "0",  # qpprime
            scaling,  # seq_scaling_matrix_present_flag
            "1",  # log2_max_frame_num_minus4 0
            "1",  # poc type 0
            "1",  # log2_max_poc_lsb_minus4 0
            "011",  # max_num_ref_frames 2
            "0",  # gaps
            "0000001111000",  # pic_width_in_mbs_minus1 119
            "0000001000100",  # pic_height_in_map_units_minus1 67
            "1",  # frame_mbs_only
            "1",  # direct_8x8
            "1",  # cropping
            "1",
            "1",
            "1",
            "00101",  # left 0, right 0, top 0, bottom 4
        ]
    )
    bits += "1" + "0" * (-(len(bits) + 1) % 8)
    sps = bytes([0x67]) + int(bits, 2).to_bytes(len(bits) // 8, "big")
    if scaling == "1":
        with pytest.raises(mp4facts._Unsure):
            mp4facts.h264_size(sps)
    else:
        assert mp4facts.h264_size(sps) == (1920, 1080, 0, 0)
