"""Disc planning and naming: pure functions, tested with tables (R11, R12)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from station.disc_burn import names
from station.disc_burn.media import (
    CASE_OVERHEAD,
    DISC_OVERHEAD,
    MEDIA,
    SECTOR,
    Media,
    file_cost,
    usable,
)
from station.disc_burn.plan import Plan, PlanCase, PlanFile, PlanRecording, plan_discs
from station.errors import EmptyCaseError, FileTooLargeError

MiB = 1024 * 1024
# A small medium for tables: room for 10 MiB of files (with their overhead) per disc.
TINY = Media("tiny", "tiny", (DISC_OVERHEAD + CASE_OVERHEAD + 10 * MiB) // SECTOR)


def rec(tag: str, size: int, derivative: int | None = None) -> PlanRecording:
    files = [PlanFile(tag * 64, tag * 64, "original", size, f"o/{tag}", f"{tag}.MP4")]
    if derivative is not None:
        d = chr(ord(tag) + 1) * 64
        files.append(PlanFile(d, tag * 64, "derivative", derivative, f"a/{tag}", f"{tag}.h.mp4"))
    return PlanRecording(tag * 64, tuple(files))


def test_media_capacities_are_exact_sector_counts() -> None:
    assert MEDIA["dvd"].capacity == 2_295_104 * 2048  # DVD+R, the smaller of DVD±R
    assert MEDIA["bd25"].capacity == 12_219_392 * 2048
    assert MEDIA["bd50"].capacity == 24_438_784 * 2048
    assert MEDIA["bd100"].capacity == 48_878_592 * 2048
    assert usable(MEDIA["dvd"]) < MEDIA["dvd"].capacity  # headroom kept
    assert file_cost(1) == SECTOR + file_cost(0)  # files take whole sectors


def test_small_cases_are_packed_whole_onto_few_discs() -> None:
    cases = [
        PlanCase("C1", "一", (rec("a", 4 * MiB),)),
        PlanCase("C2", "二", (rec("b", 5 * MiB),)),
        PlanCase("C3", "三", (rec("c", 3 * MiB), rec("d", 2 * MiB))),
    ]
    plan = plan_discs(cases, TINY)
    assert len(plan.discs) == 2  # 4 + 5 + 5 MiB: two discs, no case split
    for disc in plan.discs:
        assert disc.cost <= usable(TINY)
    where = {c: [d.disc_no for d in plan.discs if c in d.cases] for c in ("C1", "C2", "C3")}
    assert all(len(v) == 1 for v in where.values())
    assert [d.disc_no for d in plan.discs] == [1, 2]


def test_big_case_spans_a_volume_set_in_recording_order() -> None:
    recs = tuple(rec(ch, 3 * MiB, derivative=1 * MiB) for ch in "acegi")
    plan = plan_discs([PlanCase("BIG", "大案", recs)], TINY)
    assert len(plan.discs) == 3  # 5 × 4 MiB, two per 10 MiB disc
    order = [f.recording_sha256[0] for d in plan.discs for _, f in d.files if f.role == "original"]
    assert order == list("acegi")
    for disc in plan.discs:
        assert disc.cost <= usable(TINY)
        originals = {f.recording_sha256 for _, f in disc.files if f.role == "original"}
        derived = {f.recording_sha256 for _, f in disc.files if f.role == "derivative"}
        assert originals == derived  # an original and its derivative stay together


def test_a_recording_too_big_with_its_derivative_is_split_but_each_file_fits() -> None:
    plan = plan_discs([PlanCase("X", "x", (rec("a", 7 * MiB, derivative=6 * MiB),))], TINY)
    assert len(plan.discs) == 2
    assert [f.role for d in plan.discs for _, f in d.files] == ["original", "derivative"]


def test_file_larger_than_media_names_it_and_suggests_bigger_media() -> None:
    big = rec("f", 5 * 1024**3)
    with pytest.raises(FileTooLargeError) as err:
        plan_discs([PlanCase("2026-001", "大文件", (big,))], MEDIA["dvd"])
    text = err.value.render()
    assert "f" * 64 in text and "f.MP4" in text
    assert "--media bd25" in text


def test_file_larger_than_any_media_points_to_the_storage_slip() -> None:
    with pytest.raises(FileTooLargeError, match="storage-location slip"):
        plan_discs([PlanCase("C", "c", (rec("a", 200 * 1024**3),))], MEDIA["bd100"])


def test_case_with_no_recordings_is_refused() -> None:
    with pytest.raises(EmptyCaseError, match="2026-007"):
        plan_discs([PlanCase("2026-007", "空案件", ())], MEDIA["dvd"])


def test_plan_survives_json() -> None:
    plan = plan_discs([PlanCase("C", "c", (rec("a", 3 * MiB, 1 * MiB),))], TINY)
    again = Plan.from_json(plan.to_json())
    assert again.to_json() == plan.to_json()
    assert again.bytes_total == 4 * MiB


@pytest.mark.parametrize(
    ("numbers", "expected"),
    [
        (["2026-0012"], "2026_0012_1A"),
        (["城管罚字〔2026〕第0012号"], "2026_0012_1A"),
        (["某某区城市管理行政执法局行政处罚决定书编号"], "JOB00007_1A"),  # Chinese only
        (
            [
                "A",
            ],
            "JOB00007_1A",
        ),  # too short to mean anything
        (["C1", "C2"], "JOB00007_1A"),  # several cases
    ],
)
def test_volume_id(numbers: list[str], expected: str) -> None:
    assert names.volume_id(numbers, 7, 1, "A") == expected


def test_volume_id_of_a_long_number_keeps_its_tail_and_fits() -> None:
    vid = names.volume_id(["ZF-2026-SHENZHEN-FUTIAN-000123"], 3, 12, "B")
    assert len(vid) <= 16 and vid.endswith("_12B") and re.fullmatch(r"[A-Z0-9_]+", vid)
    assert "000123" in vid


def test_joliet_names_fit_64_bytes_and_keep_the_extension() -> None:
    long_name = "关于当事人在人行道上占道经营并拒绝配合执法人员检查的现场执法记录视频.MP4"
    short = names.joliet(long_name)
    assert len(short.encode("utf-8")) <= 64
    assert short.endswith(".MP4") and long_name.startswith(short[:-4])


def test_folder_makes_names_unique_per_tree_case_insensitively() -> None:
    folder = names.Folder()
    a = folder.add("Clip.mp4", is_dir=False)
    b = folder.add("clip.MP4", is_dir=False)
    assert a[0] != b[0] and a[0].casefold() != b[0].casefold()
    assert a[2] == "CLIP.MP4" and b[2] != a[2]
    base = "关于当事人在人行道上占道经营并拒绝配合执法人员检查的现场执法记录"
    c = folder.add(base + "一.mp4", is_dir=False)
    d = folder.add(base + "二.mp4", is_dir=False)
    assert c[1] != d[1]  # shortened Joliet names collide and get a suffix
    assert all(len(x[1].encode("utf-8")) <= 64 for x in (c, d))


@given(st.text(min_size=0, max_size=300))
def test_any_text_gives_valid_names(text: str) -> None:
    full, jol, iso = names.Folder().add(text, is_dir=False)
    assert full and "/" not in full and "\x00" not in full
    assert len(full.encode("utf-8")) <= 255 and names.udf_fits(full)
    assert 0 < len(jol.encode("utf-8")) <= 64
    assert re.fullmatch(r"[A-Z0-9_]{1,26}(\.[A-Z0-9_]{1,3})?", iso)
    _full, _jol, diso = names.Folder().add(text, is_dir=True)
    assert re.fullmatch(r"[A-Z0-9_]{1,31}", diso)


@given(st.lists(st.text(max_size=60), min_size=1, max_size=3), st.integers(1, 99999))
def test_any_case_numbers_give_a_valid_volume_id(numbers: list[str], job: int) -> None:
    for copy in "AB":
        vid = names.volume_id(numbers, job, 3, copy)
        assert re.fullmatch(r"[A-Z0-9_]{1,16}", vid) and vid.endswith(f"_3{copy}")


def test_xorriso_report_lba_of_a_multi_extent_file() -> None:
    from station.disc_burn.readback import parse_report_lba

    text = (
        "Report layout: xt , Startlba ,   Blocks , Filesize , ISO image path\n"
        "File data lba:  0 ,      293 ,  2097151 , 4609552441 , '/案 1/原始录像 originals/A.MP4'\n"
        "File data lba:  1 ,  2097444 ,   153608 , 4609552441 , '/案 1/原始录像 originals/A.MP4'\n"
        "File data lba:  0 ,      286 ,        1 ,      655 , '/it'\"'\"'s.txt'\n"
    )
    assert parse_report_lba(text) == {
        "案 1/原始录像 originals/A.MP4": (4609552441, 2),  # size once, not once per extent
        "it's.txt": (655, 1),
    }


def test_volume_ids_differ_between_bureaus_and_stations() -> None:
    """Two bureaus (or two stations of one bureau) whose first jobs are for the same case
    number get different volume ids: the unit code comes first."""
    codes = {
        names.unit_code(unit, station)
        for unit in ("440300000001", "440100000001", "110101000001")
        for station in ("STATION-01", "STATION-02")
    }
    assert len(codes) == 6 and all(re.fullmatch(r"[0-9A-Z]{4}", c) for c in codes)
    ids = {names.volume_id(["2026-0012"], 1, 1, "A", c) for c in codes}
    assert len(ids) == 6
    for vid in ids:
        assert len(vid) <= 16 and re.fullmatch(r"[0-9A-Z_]+", vid) and vid.endswith("0012_1A")
    assert names.volume_id(["C1", "C2"], 7, 12, "B", "K3F9") == "K3F9_J000007_12B"
    assert names.volume_id(["C1", "C2"], 7, 1, "A", "K3F9") == "K3F9_JOB00007_1A"
    assert names.volume_set_id("440300000001", "STATION-01", 7) == "440300000001_STATION_01_JOB_7"


def test_the_producer_is_a_persons_name() -> None:
    """R12: --producer, else disc.producer, else the account's recorded name; never the login
    name, and never the placeholders of a fresh station."""
    from station.config import Settings
    from station.disc_burn.jobs import LabelFactsError, label_facts
    from tests.disc_helpers import label_settings

    s = label_settings(Settings())
    assert label_facts(s, "李四", "王档案") == "李四"
    assert label_facts(s, None, "王档案") == "王五"  # disc.producer
    s.disc.producer = ""
    assert label_facts(s, None, "王档案") == "王档案"
    with pytest.raises(LabelFactsError) as err:
        label_facts(s, None, None)
    assert err.value.where == "disc.producer" and "--display-name" in (err.value.hint or "")
    with pytest.raises(LabelFactsError) as err:
        label_facts(Settings(), "李四")
    assert err.value.where == "station.unit_name"
