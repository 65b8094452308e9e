"""Media kinds by extension, and a cheap structural check that flags damaged files.

The check reads only a few headers of the (already verified) vault copy: it never decides to drop
anything — a damaged file is stored bit-exact and flagged for a clerk, like any other evidence.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

KINDS = {
    "video": {
        "mp4",
        "mov",
        "avi",
        "mkv",
        "ts",
        "m2ts",
        "mts",
        "dav",
        "3gp",
        "m4v",
        "mpg",
        "h264",
        "h265",
    },
    "image": {"jpg", "jpeg", "png", "heic", "bmp"},
    "audio": {"wav", "aac", "mp3", "m4a", "amr", "ogg", "opus", "flac"},
}


def ext_of(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    if "." not in base.strip("."):
        return ""
    ext = base.rsplit(".", 1)[1].lower()
    return ext if ext.isalnum() and len(ext) <= 8 else ""


def media_kind(ext: str) -> str:
    for kind, exts in KINDS.items():
        if ext in exts:
            return kind
    return "other"


def damage_check(path: Path, ext: str) -> str | None:
    """Return why the file looks damaged, or None."""
    size = os.path.getsize(path)
    if size == 0:
        return "空文件 / empty file (0 bytes)"
    if ext in ("mp4", "mov", "m4v", "3gp", "m4a"):
        return _check_iso_bmff(path, size)
    if ext in ("jpg", "jpeg"):
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(max(0, size - 2))
            tail = f.read(2)
        if head != b"\xff\xd8":
            return "非 JPEG 文件 / not a JPEG (no SOI marker)"
        if tail != b"\xff\xd9":
            return "JPEG 文件不完整 / truncated JPEG (no EOI marker)"
    return None


def _check_iso_bmff(path: Path, size: int) -> str | None:
    """Walk the top-level boxes of an MP4/MOV: they must tile the file and include ``moov``."""
    seen: set[bytes] = set()
    offset = 0
    with open(path, "rb") as f:
        while offset < size:
            f.seek(offset)
            header = f.read(16)
            if len(header) < 8:
                return f"文件被截断 / truncated: {size - offset} stray bytes at offset {offset}"
            box_size, box_type = struct.unpack(">I4s", header[:8])
            if box_size == 1:
                if len(header) < 16:
                    return f"文件被截断 / truncated box header at offset {offset}"
                box_size = struct.unpack(">Q", header[8:16])[0]
            elif box_size == 0:
                box_size = size - offset
            if box_size < 8:
                return f"文件结构损坏 / corrupt box {box_type!r} at offset {offset}"
            if offset + box_size > size:
                missing = offset + box_size - size
                return (
                    f"文件被截断 / truncated: box {box_type.decode('latin-1')!r} at offset "
                    f"{offset} lacks {missing} bytes"
                )
            seen.add(box_type)
            offset += box_size
    if b"moov" not in seen:
        return "缺少索引 / no index (moov box missing)"
    return None
