"""Where each file of an image's UDF tree lies: a small reader of the UDF metadata (ECMA-167
parts 3 and 4, UDF 1.02 with one type 1 partition map), for the build-time check.

7-Zip reads each copy's contents through one tree and binds every digest to its path there,
but lists no file's place in the image; xorriso gives the places of the Rock Ridge and Joliet
trees. With the UDF tree's places read here, every tree's name can be tied to the bytes 7-Zip
hashed under the same name in the other tree (``readback.read_xorriso(udf=True)``). Only
descriptors are read — the anchor, the volume descriptor sequence, the file set descriptor,
every directory and file entry (a few sectors per file) — never the files' data.

Every descriptor's tag is checked (identifier, checksum, a CRC covering at least the fields
read, its own location) — the file identifiers in each directory too, so a damaged identifier
never ties a name to another file's entry; every extent lies inside the image; every name is one
path component and no path is listed twice; a directory is at most ``_MAX_DIRECTORY`` bytes and
reached once. Anything else this reader does not know — another partition map type, embedded
data, extended attributes holding allocation descriptors, a chain of allocation extents — raises
``UdfError`` (naming the image) and the check fails with that reason: it never passes on, nor
binds a name to, what it could not read (R7, R12: each copy verified by what it holds).
"""

from __future__ import annotations

import binascii
import os
import struct
from pathlib import Path

from station.errors import IntegrityError

SECTOR = 2048
ANCHOR = 256
_MAX_FILES = 1_000_000
_MAX_VDS = 1024  # sectors of a volume descriptor sequence (ECMA-167 3/8.4.2: 16 and up)
_MAX_DIRECTORY = 64 << 20  # bytes of one directory: ~600 000 entries; more is damage


class UdfError(IntegrityError):
    """映像的 UDF 元数据无法读取 / The image's UDF metadata cannot be followed."""


class _Unreadable(Exception):
    """What in the UDF metadata could not be followed (``udf_extents`` names the image)."""


Extents = list[tuple[int, int]]  # (first sector in the image, sectors)


class _Image:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.size = os.fstat(fd).st_size
        self.sectors = self.size // SECTOR

    def read(self, sector: int, n: int = SECTOR) -> bytes:
        if sector < 0 or sector * SECTOR + n > self.size:
            raise _Unreadable(f"sector {sector} lies past the end of the image")
        data = os.pread(self.fd, n, sector * SECTOR)
        if len(data) != n:
            raise _Unreadable(f"sector {sector} lies past the end of the image")
        return data

    def descriptor(
        self, sector: int, ident: int | tuple[int, ...], where: int, need: int = 16
    ) -> bytes:
        """The descriptor at ``sector`` (``where``: its location as its tag must state)."""
        data = self.read(sector)
        return _tagged(data, ident, where, f"sector {sector}", need)


def _tagged(
    data: bytes, ident: int | tuple[int, ...], where: int, at: str, need: int = 16
) -> bytes:
    """``data`` if it starts with a sound descriptor tag (ECMA-167 3/7.2): one of ``ident``,
    its checksum right, its CRC right over at least the first ``need`` bytes (the fields the
    caller reads), stating ``where`` as its location."""
    idents = (ident,) if isinstance(ident, int) else ident
    tag_id, _version, checksum, _r, _serial, crc, crc_len, location = struct.unpack_from(
        "<HHBBHHHI", data, 0
    )
    if tag_id not in idents:
        raise _Unreadable(f"{at}: descriptor {tag_id}, expected {idents}")
    if checksum != (sum(data[0:4]) + sum(data[5:16])) & 0xFF:
        raise _Unreadable(f"{at}: tag checksum")
    if 16 + crc_len < need:
        raise _Unreadable(f"{at}: descriptor CRC covers {16 + crc_len} of {need} bytes read")
    if 16 + crc_len > len(data) or binascii.crc_hqx(data[16 : 16 + crc_len], 0) != crc:
        raise _Unreadable(f"{at}: descriptor CRC")
    if location != where:
        raise _Unreadable(f"{at}: descriptor says it lies at {location}")
    return data


def _name(raw: bytes) -> str:
    """A file identifier (OSTA compressed Unicode: 8 = one byte a character, 16 = UTF-16BE)."""
    if not raw:
        return ""
    if raw[0] == 8:
        name = raw[1:].decode("latin-1")
    elif raw[0] == 16:
        name = raw[1:].decode("utf-16-be")
    else:
        raise _Unreadable(f"file identifier compression {raw[0]}")
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise _Unreadable(f"file identifier {name!r} is not one path component")
    return name


class _Volume:
    def __init__(self, img: _Image) -> None:
        self.img = img
        anchor = img.descriptor(ANCHOR, 2, ANCHOR, need=24)
        length, location = struct.unpack_from("<II", anchor, 16)
        if length // SECTOR > _MAX_VDS:
            raise _Unreadable(f"volume descriptor sequence of {length} bytes")
        partitions: dict[int, int] = {}
        lvd: bytes | None = None
        for i in range(length // SECTOR):
            data = img.read(location + i)
            (tag_id,) = struct.unpack_from("<H", data, 0)
            if tag_id == 8:  # terminating descriptor
                break
            if tag_id == 5:
                _tagged(data, 5, location + i, "partition descriptor", 192)
                (number,), (start,) = (
                    struct.unpack_from("<H", data, 22),
                    struct.unpack_from("<I", data, 188),
                )
                partitions[number] = start
            elif tag_id == 6:
                lvd = _tagged(data, 6, location + i, "logical volume descriptor", 440)
        if lvd is None or not partitions:
            raise _Unreadable("no logical volume or partition descriptor")
        (block,) = struct.unpack_from("<I", lvd, 212)
        if block != SECTOR:
            raise _Unreadable(f"logical block size {block}")
        maps, offset = struct.unpack_from("<I", lvd, 268)[0], 440
        self.starts: list[int] = []
        for _ in range(maps):
            if offset + 6 > 16 + struct.unpack_from("<H", lvd, 10)[0]:
                raise _Unreadable("partition maps past the logical volume descriptor's CRC")
            kind, size = lvd[offset], lvd[offset + 1]
            if kind != 1 or size != 6:
                raise _Unreadable(f"partition map type {kind}")
            (number,) = struct.unpack_from("<H", lvd, offset + 4)
            if number not in partitions:
                raise _Unreadable(f"partition {number} not described")
            self.starts.append(partitions[number])
            offset += size
        self.fsd = _long_ad(lvd, 248)

    def sector(self, ref: int, lbn: int) -> int:
        if ref >= len(self.starts):
            raise _Unreadable(f"partition reference {ref}")
        return self.starts[ref] + lbn

    def extent(self, ref: int, lbn: int, size: int, what: str) -> tuple[int, int]:
        """(first sector in the image, sectors) of ``size`` bytes at ``lbn``, inside the
        image."""
        start, n = self.sector(ref, lbn), -(-size // SECTOR)
        if start + n > self.img.sectors:
            raise _Unreadable(f"{what}: extent at sector {start} runs past the end of the image")
        return start, n


def _long_ad(data: bytes, at: int) -> tuple[int, int, int]:
    """(length in bytes, logical block, partition reference)."""
    length, lbn, ref = struct.unpack_from("<IIH", data, at)
    return length & 0x3FFFFFFF, lbn, ref


def _entry(vol: _Volume, icb: tuple[int, int, int]) -> tuple[int, int, Extents]:
    """A (extended) file entry: (file type, information length, data extents)."""
    _, lbn, ref = icb
    sector = vol.sector(ref, lbn)
    fe = vol.img.descriptor(sector, (261, 266), lbn, need=176)
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
        raise _Unreadable(f"file entry at {sector}: allocation descriptors overrun")
    _tagged(fe, (261, 266), lbn, f"file entry at {sector}", start + ad)
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
                raise _Unreadable(f"file entry at {sector}: extent type {how}")
            extents.append(vol.extent(ref_, lbn_, size, f"file entry at {sector}"))
    elif length:
        raise _Unreadable(f"file entry at {sector}: allocation descriptor type {kind}")
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


def _directory(vol: _Volume, icb: tuple[int, int, int], where: str) -> list[tuple[bytes, int]]:
    """The file identifiers of the directory at ``icb``: (descriptor, bytes used), each tag
    checked (ECMA-167 4/14.4) — its location is the block holding its first byte, in the
    directory's own partition (an extent in another partition is refused, never guessed)."""
    file_type, length, extents = _entry(vol, icb)
    if file_type != 4:
        raise _Unreadable(f"{where} is not a directory")
    if length > _MAX_DIRECTORY:
        raise _Unreadable(f"directory {where} of {length} bytes")
    if sum(n for _, n in extents) * SECTOR < length:
        raise _Unreadable(f"directory {where}: extents shorter than its length")
    # (offset in the directory's data, its logical block in the directory's partition) of
    # each extent read: only the directory's length, never the rest of its extents
    parts: list[bytes] = []
    firsts: list[tuple[int, int]] = []
    left = length
    for start, n in extents:
        if left <= 0:
            break
        firsts.append((length - left, start - vol.starts[icb[2]]))
        parts.append(vol.img.read(start, min(n * SECTOR, left)))
        left -= n * SECTOR
    data = b"".join(parts)

    def block_of(pos: int) -> int:
        offset, first = next((o, f) for o, f in reversed(firsts) if o <= pos)
        return first + (pos - offset) // SECTOR

    out: list[tuple[bytes, int]] = []
    pos = 0
    while pos < len(data):
        if pos + 38 > len(data):
            raise _Unreadable(f"directory {where}: a file identifier cut off at {pos}")
        name_len = data[pos + 19]
        (iu,) = struct.unpack_from("<H", data, pos + 36)
        used = 38 + iu + name_len
        if pos + used > len(data):
            raise _Unreadable(f"directory {where}: a file identifier cut off at {pos}")
        fid = data[pos : pos + ((used + 3) & ~3)]
        _tagged(fid, 257, block_of(pos), f"directory {where} at {pos}", used)
        out.append((fid, used))
        pos += (used + 3) & ~3
    return out


def udf_extents(image: Path) -> dict[str, tuple[int, Extents]]:
    """{path: (size, [(first sector, sectors), ...])} of every file in the UDF tree ("/"-joined
    paths, as 7-Zip lists them). Raises ``UdfError`` naming ``image`` for metadata this reader
    cannot follow to the end (a damaged descriptor, an extent outside the image, a loop)."""
    fd = os.open(image, os.O_RDONLY)
    try:
        vol = _Volume(_Image(fd))
        _, fsd_lbn, fsd_ref = vol.fsd
        fsd = vol.img.descriptor(vol.sector(fsd_ref, fsd_lbn), 256, fsd_lbn, need=416)
        out: dict[str, tuple[int, Extents]] = {}
        todo = [("", _long_ad(fsd, 400))]
        seen: set[tuple[int, int]] = set()  # the (block, partition) of every entry read
        named: set[str] = set()
        while todo:
            prefix, icb = todo.pop()
            if (icb[1], icb[2]) in seen:
                raise _Unreadable(f"directory {prefix or '/'} is reached twice")
            seen.add((icb[1], icb[2]))
            for fid, used in _directory(vol, icb, prefix or "/"):
                if len(out) > _MAX_FILES:
                    raise _Unreadable("too many files")
                chars = fid[18]
                child = _long_ad(fid, 20)
                (iu,) = struct.unpack_from("<H", fid, 36)
                if chars & 0x08 or chars & 0x04:  # the parent, a deleted entry
                    continue
                name = _name(fid[38 + iu : used])
                path = f"{prefix}/{name}" if prefix else name
                if path in named:
                    raise _Unreadable(f"{path} is listed twice")
                named.add(path)
                if chars & 0x02:
                    todo.append((path, child))
                    continue
                if (child[1], child[2]) in seen:
                    raise _Unreadable(f"{path}: its file entry is reached twice")
                seen.add((child[1], child[2]))
                kind, size, parts = _entry(vol, child)
                if kind != 5:
                    raise _Unreadable(f"{path}: file type {kind}")
                if sum(n for _, n in parts) * SECTOR < size:
                    raise _Unreadable(f"{path}: extents shorter than the file")
                out[path] = (size, parts)
        return out
    except (_Unreadable, struct.error, IndexError, UnicodeDecodeError, ValueError) as exc:
        raise UdfError(
            f"映像的 UDF 元数据无法读取，不能确认各文件的位置 / the image's UDF metadata cannot "
            f"be followed, so no file's place in it is trusted: {exc}",
            where=str(image),
        ) from exc
    finally:
        os.close(fd)
