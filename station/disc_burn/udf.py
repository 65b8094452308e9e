"""Where each file of an image's UDF tree lies: a small reader of the UDF metadata (ECMA-167
parts 3 and 4, UDF 1.02 with one type 1 partition map), for the build-time check.

7-Zip reads each copy's contents through one tree and binds every digest to its path there,
but lists no file's place in the image; xorriso gives the places of the Rock Ridge and Joliet
trees. With the UDF tree's places read here, every tree's name can be tied to the bytes 7-Zip
hashed under the same name in the other tree (``readback.read_xorriso(udf=True)``). Only
descriptors are read — the anchor, the volume descriptor sequence, the file set descriptor,
every directory and file entry (a few sectors per file) — never the files' data.

Every descriptor's tag is checked (identifier, checksum, CRC, its own location); anything this
reader does not know — another partition map type, embedded data, extended attributes holding
allocation descriptors, a chain of allocation extents — raises ``UdfError`` and the check fails
with that reason (it never passes on what it could not read).
"""

from __future__ import annotations

import binascii
import os
import struct
from pathlib import Path

SECTOR = 2048
ANCHOR = 256
_MAX_FILES = 1_000_000


class UdfError(Exception):
    """The UDF metadata is not what this reader can follow."""


Extents = list[tuple[int, int]]  # (first sector in the image, sectors)


class _Image:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.size = os.fstat(fd).st_size

    def read(self, sector: int, n: int = SECTOR) -> bytes:
        data = os.pread(self.fd, n, sector * SECTOR)
        if len(data) != n:
            raise UdfError(f"sector {sector} lies past the end of the image")
        return data

    def descriptor(self, sector: int, ident: int | tuple[int, ...], where: int) -> bytes:
        """The descriptor at ``sector`` (``where``: its location as its tag must state)."""
        data = self.read(sector)
        return _tagged(data, ident, where, f"sector {sector}")


def _tagged(data: bytes, ident: int | tuple[int, ...], where: int, at: str) -> bytes:
    idents = (ident,) if isinstance(ident, int) else ident
    tag_id, _version, checksum, _r, _serial, crc, crc_len, location = struct.unpack_from(
        "<HHBBHHHI", data, 0
    )
    if tag_id not in idents:
        raise UdfError(f"{at}: descriptor {tag_id}, expected {idents}")
    if checksum != (sum(data[0:4]) + sum(data[5:16])) & 0xFF:
        raise UdfError(f"{at}: tag checksum")
    if 16 + crc_len > len(data) or binascii.crc_hqx(data[16 : 16 + crc_len], 0) != crc:
        raise UdfError(f"{at}: descriptor CRC")
    if location != where:
        raise UdfError(f"{at}: descriptor says it lies at {location}")
    return data


def _name(raw: bytes) -> str:
    """A file identifier (OSTA compressed Unicode: 8 = one byte a character, 16 = UTF-16BE)."""
    if not raw:
        return ""
    if raw[0] == 8:
        return raw[1:].decode("latin-1")
    if raw[0] == 16:
        return raw[1:].decode("utf-16-be")
    raise UdfError(f"file identifier compression {raw[0]}")


class _Volume:
    def __init__(self, img: _Image) -> None:
        self.img = img
        anchor = img.descriptor(ANCHOR, 2, ANCHOR)
        length, location = struct.unpack_from("<II", anchor, 16)
        partitions: dict[int, int] = {}
        lvd: bytes | None = None
        for i in range(length // SECTOR):
            data = img.read(location + i)
            (tag_id,) = struct.unpack_from("<H", data, 0)
            if tag_id == 8:  # terminating descriptor
                break
            if tag_id == 5:
                _tagged(data, 5, location + i, "partition descriptor")
                (number,), (start,) = (
                    struct.unpack_from("<H", data, 22),
                    struct.unpack_from("<I", data, 188),
                )
                partitions[number] = start
            elif tag_id == 6:
                lvd = _tagged(data, 6, location + i, "logical volume descriptor")
        if lvd is None or not partitions:
            raise UdfError("no logical volume or partition descriptor")
        (block,) = struct.unpack_from("<I", lvd, 212)
        if block != SECTOR:
            raise UdfError(f"logical block size {block}")
        maps, offset = struct.unpack_from("<I", lvd, 268)[0], 440
        self.starts: list[int] = []
        for _ in range(maps):
            kind, size = lvd[offset], lvd[offset + 1]
            if kind != 1 or size != 6:
                raise UdfError(f"partition map type {kind}")
            (number,) = struct.unpack_from("<H", lvd, offset + 4)
            if number not in partitions:
                raise UdfError(f"partition {number} not described")
            self.starts.append(partitions[number])
            offset += size
        self.fsd = _long_ad(lvd, 248)

    def sector(self, ref: int, lbn: int) -> int:
        if ref >= len(self.starts):
            raise UdfError(f"partition reference {ref}")
        return self.starts[ref] + lbn


def _long_ad(data: bytes, at: int) -> tuple[int, int, int]:
    """(length in bytes, logical block, partition reference)."""
    length, lbn, ref = struct.unpack_from("<IIH", data, at)
    return length & 0x3FFFFFFF, lbn, ref


def _entry(vol: _Volume, icb: tuple[int, int, int]) -> tuple[int, int, Extents]:
    """A (extended) file entry: (file type, information length, data extents)."""
    _, lbn, ref = icb
    sector = vol.sector(ref, lbn)
    fe = vol.img.descriptor(sector, (261, 266), lbn)
    file_type = fe[16 + 11]
    (flags,) = struct.unpack_from("<H", fe, 16 + 18)
    (length,) = struct.unpack_from("<Q", fe, 56)
    if struct.unpack_from("<H", fe, 0)[0] == 261:  # a file entry
        ea, ad = struct.unpack_from("<II", fe, 168)
        start = 176 + ea
    else:  # 266: an extended file entry
        ea, ad = struct.unpack_from("<II", fe, 208)
        start = 216 + ea
    if start + ad > len(fe):
        raise UdfError(f"file entry at {sector}: allocation descriptors overrun")
    kind = flags & 7
    extents: Extents = []
    if kind in (0, 1):
        step = 8 if kind == 0 else 16
        for at in range(start, start + ad - step + 1, step):
            if kind == 0:
                raw, lbn_ = struct.unpack_from("<II", fe, at)
                ref_ = icb[2]
            else:
                raw, lbn_, ref_ = struct.unpack_from("<IIH", fe, at)
            size, how = raw & 0x3FFFFFFF, raw >> 30
            if size == 0:
                break
            if how != 0:
                raise UdfError(f"file entry at {sector}: extent type {how}")
            extents.append((vol.sector(ref_, lbn_), -(-size // SECTOR)))
    elif length:
        raise UdfError(f"file entry at {sector}: allocation descriptor type {kind}")
    return file_type, length, extents


def runs(extents: Extents) -> Extents:
    """``extents`` as comparable runs: the empty ones left out, touching ones joined."""
    out: Extents = []
    for start, n in extents:
        if n == 0:
            continue
        if out and out[-1][0] + out[-1][1] == start:
            out[-1] = (out[-1][0], out[-1][1] + n)
        else:
            out.append((start, n))
    return out


def udf_extents(image: Path) -> dict[str, tuple[int, Extents]]:
    """{path: (size, [(first sector, sectors), ...])} of every file in the UDF tree ("/"-joined
    paths, as 7-Zip lists them)."""
    fd = os.open(image, os.O_RDONLY)
    try:
        vol = _Volume(_Image(fd))
        _, fsd_lbn, fsd_ref = vol.fsd
        fsd = vol.img.descriptor(vol.sector(fsd_ref, fsd_lbn), 256, fsd_lbn)
        out: dict[str, tuple[int, Extents]] = {}
        todo = [("", _long_ad(fsd, 400))]
        seen: set[tuple[int, int]] = set()
        while todo:
            prefix, icb = todo.pop()
            if (icb[1], icb[2]) in seen:
                raise UdfError(f"directory {prefix or '/'} is reached twice")
            seen.add((icb[1], icb[2]))
            file_type, length, extents = _entry(vol, icb)
            if file_type != 4:
                raise UdfError(f"{prefix or '/'} is not a directory")
            data = b"".join(vol.img.read(s, n * SECTOR) for s, n in extents)[:length]
            pos = 0
            while pos < len(data):
                if len(out) > _MAX_FILES:
                    raise UdfError("too many files")
                (tag_id,) = struct.unpack_from("<H", data, pos)
                if tag_id != 257:
                    raise UdfError(f"directory {prefix or '/'}: descriptor {tag_id} at {pos}")
                chars, name_len = data[pos + 18], data[pos + 19]
                child = _long_ad(data, pos + 20)
                (iu,) = struct.unpack_from("<H", data, pos + 36)
                raw = data[pos + 38 + iu : pos + 38 + iu + name_len]
                pos += (38 + iu + name_len + 3) & ~3
                if chars & 0x08 or chars & 0x04:  # the parent, a deleted entry
                    continue
                path = f"{prefix}/{_name(raw)}" if prefix else _name(raw)
                if chars & 0x02:
                    todo.append((path, child))
                    continue
                kind, size, parts = _entry(vol, child)
                if kind != 5:
                    raise UdfError(f"{path}: file type {kind}")
                if sum(n for _, n in parts) * SECTOR < size:
                    raise UdfError(f"{path}: extents shorter than the file")
                out[path] = (size, parts)
        return out
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise UdfError(f"unreadable UDF metadata: {exc}") from exc
    finally:
        os.close(fd)
