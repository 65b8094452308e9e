"""Sidecars: parsed strictly, never guessed (R5 producer, R6 tags)."""

from __future__ import annotations

import json

import pytest

from station.errors import SidecarError
from station.inbox.sidecar import DropDetails, details_from_mapping, parse_sidecar


def test_json_and_toml_sidecars_give_the_same_details() -> None:
    j = parse_sidecar(
        json.dumps(
            {
                "officer": "123456",
                "device": "CAM-07",
                "unit": "430400000000",
                "case": "衡建罚〔2026〕12号",
                "method": "Sony FDR-AX45 摄像机",
            },
            ensure_ascii=False,
        ).encode(),
        name="station.json",
    )
    t = parse_sidecar(
        'officer = "123456"\ndevice = "CAM-07"\nunit = "430400000000"\n'
        'case = "衡建罚〔2026〕12号"\nmethod = "Sony FDR-AX45 摄像机"\n'.encode(),
        name="station.toml",
    )
    assert (
        j
        == t
        == DropDetails(
            "123456", "CAM-07", "430400000000", "衡建罚〔2026〕12号", "Sony FDR-AX45 摄像机"
        )
    )


def test_numbers_and_blanks() -> None:
    d = parse_sidecar(b'{"officer": 123456, "device": ""}', name="station.json")
    assert d == DropDetails("123456")


@pytest.mark.parametrize(
    ("data", "name", "where", "message"),
    [
        (b'{"officer": "1", "camera": "X"}', "station.json", "station.json: camera", "unknown key"),
        (b'{"officer": "1",}', "station.json", "station.json", "not valid JSON"),
        (b"officer = ", "station.toml", "station.toml", "not valid TOML"),
        (b'["officer"]', "station.json", "station.json", "expected an object"),
        (b'{"device": "CAM"}', "station.json", "station.json: officer", "missing required"),
        (b'{"officer": true}', "station.json", "station.json: officer", "expected text"),
        (b'{"officer": "a/../\\u0000b"}', "station.json", "station.json: officer", "bad value"),
        (b"\xff\xfe{}", "station.json", "station.json", "not UTF-8"),
        (b" " * 70000, "station.json", "station.json", "larger than"),
    ],
)
def test_bad_sidecars_name_the_key_and_reason(
    data: bytes, name: str, where: str, message: str
) -> None:
    with pytest.raises(SidecarError) as ei:
        parse_sidecar(data, name=name)
    assert ei.value.where == where
    assert message in ei.value.message


def test_assign_uses_the_same_rules() -> None:
    with pytest.raises(SidecarError, match="unknown key"):
        details_from_mapping({"officer": "1", "guess": "x"}, where="assign")
    assert details_from_mapping({"officer": "9"}, where="assign").officer == "9"
