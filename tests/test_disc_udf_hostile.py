"""Damaged UDF metadata is refused, never bound (station/disc_burn/udf.py; R7, R12: each copy is
verified by what it really holds). The reader ties every file's UDF path to its extents, and the
build compares those with the ISO trees' — so a damaged descriptor must raise ``UdfError`` naming
the image, never give a path other bytes than it has.

Two kinds of damage: what a disc or a faulty writer does (flipped bits, cut images: the tags'
checksums and CRCs see it), and metadata that is consistent but points where it must not (an
extent past the end, a loop, a name twice, one file entry for two names: the reader's own
checks see it). And a few hundred seeded mutations of the metadata sectors of a real image:
each one refused, or the answer unchanged."""

from __future__ import annotations

import binascii
import os
import random
import struct
from pathlib import Path

import pytest
from test_disc_udf import make_image

from station.disc_burn import udf
from station.errors import StationError

SEED = 20261201
MUTATIONS = 240
SECTOR = udf.SECTOR
FILES = [("a.bin", 300_000), ("b.bin", 5_000), ("empty.txt", 0), ("目录/执法记录 𠀀.MP4", 5_000)]


def retag(buf: bytearray, at: int) -> None:
    """Make the descriptor tag at ``at`` right again: CRC over its CRC length, then checksum
    (ECMA-167 3/7.2) — metadata that is consistent, however wrong."""
    (crc_len,) = struct.unpack_from("<H", buf, at + 10)
    crc = binascii.crc_hqx(bytes(buf[at + 16 : at + 16 + crc_len]), 0)
    struct.pack_into("<H", buf, at + 8, crc)
    buf[at + 4] = (sum(buf[at : at + 4]) + sum(buf[at + 5 : at + 16])) & 0xFF


class Image:
    """A pycdlib image as the disc build writes it, and where its UDF descriptors lie."""

    def __init__(self, path: Path) -> None:
        self.path = make_image(path, FILES)
        self.raw = bytearray(path.read_bytes())
        fd = os.open(path, os.O_RDONLY)
        try:
            vol = udf._Volume(udf._Image(fd))
            self.part = vol.starts[0]
            _, fsd_lbn, ref = vol.fsd
            fsd = vol.img.descriptor(vol.sector(ref, fsd_lbn), 256, fsd_lbn)
            root = udf._long_ad(fsd, 400)
            self.root_fe = self.part + root[1]
            _, _, extents = udf._entry(vol, root)
            self.root_dir = extents[0][0]
        finally:
            os.close(fd)
        self.places = udf.udf_extents(path)

    def fids(self, sector: int) -> dict[str, int]:
        """{name: byte offset in the image} of the file identifiers in a directory's sector."""
        out, pos = {}, sector * SECTOR
        while struct.unpack_from("<H", self.raw, pos)[0] == 257:
            name_len, (iu,) = self.raw[pos + 19], struct.unpack_from("<H", self.raw, pos + 36)
            raw = bytes(self.raw[pos + 38 + iu : pos + 38 + iu + name_len])
            name = "" if not raw else raw[1:].decode("latin-1" if raw[0] == 8 else "utf-16-be")
            out[name] = pos
            pos += (38 + iu + name_len + 3) & ~3
        return out

    def fe_of(self, name: str) -> int:
        """The image sector of a root file's file entry, from its identifier."""
        at = self.fids(self.root_dir)[name]
        return self.part + struct.unpack_from("<I", self.raw, at + 24)[0]

    def write(self, raw: bytes | bytearray) -> Path:
        self.path.write_bytes(bytes(raw))
        return self.path


@pytest.fixture
def image(tmp_path: Path) -> Image:
    return Image(tmp_path / "t.iso")


def refused(path: Path, match: str = "") -> str:
    with pytest.raises(udf.UdfError) as err:
        udf.udf_extents(path)
    assert isinstance(err.value, StationError) and str(path) in err.value.render()
    assert match in err.value.render(), err.value.render()
    return err.value.render()


def test_a_damaged_file_identifier_never_binds_a_name_to_another_file(image: Image) -> None:
    """One identifier's ICB changed to the block of another file's entry (its tag not made
    right): the name ``a.bin`` would be bound to ``empty.txt``'s extents. The identifier's CRC
    says it is damaged: refused."""
    raw = bytearray(image.raw)
    at = image.fids(image.root_dir)["a.bin"]
    other = image.fe_of("empty.txt") - image.part
    struct.pack_into("<I", raw, at + 24, other)
    refused(image.write(raw), "CRC")


def test_a_damaged_name_is_refused(image: Image) -> None:
    raw = bytearray(image.raw)
    at = image.fids(image.root_dir)["a.bin"]
    raw[at + 38 + 1] ^= 0x20  # "a.bin" -> "A.bin"
    refused(image.write(raw), "CRC")


@pytest.mark.parametrize("cut", [0, 1, 16 * SECTOR, 256 * SECTOR + 100, -SECTOR])
def test_a_cut_image_is_refused(image: Image, cut: int) -> None:
    """Empty, one byte, no anchor, an anchor cut short, the last sector (a file's data or
    the metadata) missing: refused, with the image named."""
    raw = image.raw[:cut] if cut >= 0 else image.raw[: len(image.raw) + cut]
    if cut == -SECTOR and all(
        s + n <= len(raw) // SECTOR for _, ext in image.places.values() for s, n in ext
    ):
        assert udf.udf_extents(image.write(raw)) == image.places
    else:
        refused(image.write(raw))


def test_garbage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "g.iso"
    path.write_bytes(random.Random(SEED).randbytes(300 * SECTOR))
    refused(path, "sector 256")
    path.write_bytes(bytes(300 * SECTOR))
    refused(path)


def test_an_extent_past_the_end_of_the_image_is_refused(image: Image) -> None:
    """A file entry, its tag right, whose extent starts past the image's last sector."""
    raw = bytearray(image.raw)
    fe = image.fe_of("a.bin") * SECTOR
    (ea,) = struct.unpack_from("<I", raw, fe + 168)
    struct.pack_into("<I", raw, fe + 176 + ea + 4, len(raw) // SECTOR)  # the extent's block
    retag(raw, fe)
    refused(image.write(raw), "past the end of the image")


def test_a_directory_that_holds_itself_is_refused(image: Image) -> None:
    """The sub-folder's identifier, its tag right, points at the root's own entry: a loop."""
    raw = bytearray(image.raw)
    at = image.fids(image.root_dir)["目录"]
    struct.pack_into("<I", raw, at + 24, image.root_fe - image.part)
    retag(raw, at)
    refused(image.write(raw), "reached twice")


def test_one_file_entry_for_two_names_is_refused(image: Image) -> None:
    raw = bytearray(image.raw)
    at = image.fids(image.root_dir)["a.bin"]
    struct.pack_into("<I", raw, at + 24, image.fe_of("empty.txt") - image.part)
    retag(raw, at)
    refused(image.write(raw), "reached twice")


@pytest.mark.parametrize(("new", "match"), [("b.bin", "listed twice"), ("a/bin", "path")])
def test_a_name_twice_or_a_name_with_a_slash_is_refused(image: Image, new: str, match: str) -> None:
    """``a.bin`` renamed (tag right) to a name already in the folder, or to a name holding a
    "/" that would read as another path."""
    raw = bytearray(image.raw)
    at = image.fids(image.root_dir)["a.bin"]
    (iu,) = struct.unpack_from("<H", raw, at + 36)
    assert raw[at + 38 + iu : at + 38 + iu + 6] == b"\x08a.bin"
    raw[at + 38 + iu + 1 : at + 38 + iu + 6] = new.encode("ascii")
    retag(raw, at)
    refused(image.write(raw), match)


def test_a_huge_directory_is_refused_without_reading_it(image: Image) -> None:
    """The root's entry, its tag right, says the folder holds 2^40 bytes."""
    raw = bytearray(image.raw)
    struct.pack_into("<Q", raw, image.root_fe * SECTOR + 56, 1 << 40)
    retag(raw, image.root_fe * SECTOR)
    refused(image.write(raw), "directory / of")


def test_seeded_mutations_of_the_metadata_are_refused_or_change_nothing(image: Image) -> None:
    """Flipped bits and boundary words anywhere in the sectors the reader may read (from the
    volume descriptors to the first file's data): each image is refused or read exactly as the
    undamaged one — never bound otherwise."""
    first_data = min(s for _, ext in image.places.values() for s, _ in ext)
    rng = random.Random(SEED)
    outcomes = {"refused": 0, "same": 0}
    path = image.path
    with open(path, "r+b") as f:
        for i in range(MUTATIONS):
            at = rng.randrange(16 * SECTOR, first_data * SECTOR)
            if i % 2:
                old = bytes(image.raw[at : at + 4])
                new = struct.pack("<I", rng.choice([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF,
                                                    rng.randrange(1 << 32)]))  # fmt: skip
            else:
                old = bytes(image.raw[at : at + 1])
                new = bytes([old[0] ^ (1 << rng.randrange(8))])
            f.seek(at)
            f.write(new)
            f.flush()
            try:
                got = udf.udf_extents(path)
            except udf.UdfError as exc:
                assert str(path) in exc.render()
                outcomes["refused"] += 1
            else:
                assert got == image.places, f"mutation {i} at byte {at} bound other extents"
                outcomes["same"] += 1
            f.seek(at)
            f.write(old)
            f.flush()
    assert outcomes["refused"] > 0 and outcomes["same"] > 0, outcomes
    assert udf.udf_extents(path) == image.places  # every mutation was undone


def test_trailing_bytes_change_nothing(image: Image) -> None:
    """Bytes after the last sector (a padded or appended image) are not metadata."""
    assert udf.udf_extents(image.write(image.raw + b"\xff" * 3000)) == image.places
