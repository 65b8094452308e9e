"""Filename metadata patterns (ingest.filename_patterns)."""

import datetime as dt

import pytest

from station.config import DEFAULT_FILENAME_PATTERNS
from station.ingest.media import ext_of, media_kind
from station.ingest.names import parse_name


@pytest.mark.parametrize(
    ("path", "device", "officer", "start", "seq", "imp"),
    [
        (
            "DCIM/20240105/DSJ0001_100001_20240105093000_0001.MP4",
            "DSJ0001",
            "100001",
            dt.datetime(2024, 1, 5, 9, 30),
            1,
            False,
        ),
        (
            "DSJ0001_100001_20240229235959_0012_IMP.MP4",
            "DSJ0001",
            "100001",
            dt.datetime(2024, 2, 29, 23, 59, 59),
            12,
            True,
        ),
        (
            "x/A1B2C3D_654321_20231231120000_7_imp.mov",
            "A1B2C3D",
            "654321",
            dt.datetime(2023, 12, 31, 12),
            7,
            True,
        ),
        ("DCIM/100MEDIA/FILE0042.MP4", None, None, None, 42, False),
        ("DCIM/101_PANA/P1000003.JPG", None, None, None, 3, False),
        # month 13 is not a time: the name still gives device and officer, time falls back
        ("DSJ0001_100001_20241301000000_0001.MP4", "DSJ0001", "100001", None, 1, False),
        ("random.bin", None, None, None, None, False),
    ],
)
def test_default_patterns(path, device, officer, start, seq, imp) -> None:  # type: ignore[no-untyped-def]
    info = parse_name(path, DEFAULT_FILENAME_PATTERNS)
    assert (info.device, info.officer, info.start, info.seq, info.important) == (
        device,
        officer,
        start,
        seq,
        imp,
    )


def test_custom_pattern_first_match_wins() -> None:
    pats = [r"(?P<officer>\d{6})-(?P<start>\d{14})\.wav$", *DEFAULT_FILENAME_PATTERNS]
    info = parse_name("AUDIO/123456-20240101080000.wav", pats)
    assert info.officer == "123456" and info.pattern == 0
    assert info.start == dt.datetime(2024, 1, 1, 8)


@pytest.mark.parametrize(
    ("name", "ext", "kind"),
    [
        ("A.MP4", "mp4", "video"),
        ("b.dav", "dav", "video"),
        ("c.Jpg", "jpg", "image"),
        ("d.WAV", "wav", "audio"),
        ("e.aac", "aac", "audio"),
        ("f.mp3", "mp3", "audio"),
        ("g.ts", "ts", "video"),
        ("noext", "", "other"),
        ("..hidden", "", "other"),
        ("weird.ext!", "", "other"),
    ],
)
def test_media_kinds(name: str, ext: str, kind: str) -> None:
    assert ext_of(name) == ext
    assert media_kind(ext) == kind
