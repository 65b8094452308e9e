"""The UDF tree's file places (station/disc_burn/udf.py) against xorriso's places of the same
files in the ISO 9660 trees, on images pycdlib writes as the disc build does: names with CJK
and astral-plane characters, an empty file, a folder; a damaged descriptor is refused, never
read past."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pycdlib
import pytest

from station.disc_burn import readback, udf

FILES = [("a.bin", 300_000), ("empty.txt", 0), ("目录/执法记录 𠀀.MP4", 5_000)]


def make_image(path: Path, files: list[tuple[str, int]] = FILES) -> Path:
    """An image as the disc build writes it (pycdlib: ISO 9660 + Rock Ridge, Joliet, UDF) with
    ``files`` (path, size), a folder ``目录`` holding the ones with a "/"."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", udf="2.60")
    iso.add_directory(iso_path="/D", rr_name="目录", joliet_path="/目录", udf_path="/目录")
    for i, (name, size) in enumerate(files):
        folder = "D/" if "/" in name else ""
        iso.add_fp(io.BytesIO(bytes([i + 1]) * size), size, iso_path=f"/{folder}F{i}.;1",
                   rr_name=name.rsplit("/", 1)[-1], joliet_path="/" + name,
                   udf_path="/" + name)  # fmt: skip
    iso.write(str(path))
    iso.close()
    return path


def test_udf_places_are_xorrisos_iso_places(tmp_path: Path) -> None:
    image = make_image(tmp_path / "t.iso")
    places = udf.udf_extents(image)
    rock, _joliet = readback.list_xorriso(image)
    assert sorted(places) == sorted(n for n, _ in FILES) == sorted(rock)
    for name, size in FILES:
        got_size, extents = places[name]
        assert got_size == size == rock[name][0]
        assert udf.runs(extents) == udf.runs(rock[name][1])
    # the bytes there are the file's
    raw = image.read_bytes()
    start, n = places["a.bin"][1][0]
    assert raw[start * udf.SECTOR : start * udf.SECTOR + 300_000] == bytes([1]) * 300_000
    assert n == -(-300_000 // udf.SECTOR)


def test_a_damaged_file_entry_is_refused(tmp_path: Path) -> None:
    """One flipped byte in a file entry: its CRC no longer holds, the reader says so."""
    image = make_image(tmp_path / "t.iso")
    iso = pycdlib.PyCdlib()
    iso.open(str(image))
    try:
        sector = iso.get_record(udf_path="/a.bin").extent_location()
    finally:
        iso.close()
    with open(image, "r+b") as f:
        f.seek(sector * udf.SECTOR + 56)  # the information length
        (length,) = struct.unpack("<Q", f.read(8))
        f.seek(sector * udf.SECTOR + 56)
        f.write(struct.pack("<Q", length + 1))
    with pytest.raises(udf.UdfError, match="CRC"):
        udf.udf_extents(image)
    rock, _ = readback.list_xorriso(image)
    result = readback.ReaderResult("xorriso")
    readback._bind_udf(result, image, rock, [])
    assert result.error and "UDF tree not read" in result.error and not result.ok
