"""The image SHA-256 computed while pycdlib writes (``HashingWriter``) is the SHA-256 of the
finished file, for images with several files, folders, a file larger than one write block and an
empty file — and a writer that goes back over hashed bytes gives up instead of lying."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pycdlib

from station.disc_burn.image import HashingWriter


def _iso(tmp_path: Path, sizes: list[int]) -> pycdlib.PyCdlib:
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", udf="2.60", vol_ident="T")
    iso.add_directory(iso_path="/CASE", rr_name="case", joliet_path="/case", udf_path="/case")
    for i, size in enumerate(sizes):
        path = tmp_path / f"f{i}.mp4"
        path.write_bytes(os.urandom(size))
        iso.add_file(
            str(path),
            iso_path=f"/CASE/F{i}.MP4;1",
            rr_name=f"f{i}.mp4",
            joliet_path=f"/case/f{i}.mp4",
            udf_path=f"/case/f{i}.mp4",
        )
    return iso


def test_hash_while_writing_is_the_file_hash(tmp_path: Path) -> None:
    iso = _iso(tmp_path, [3 * (1 << 20) + 17, 0, 70_000, 5, 1 << 20])
    out = tmp_path / "a.iso"
    with open(out, "wb") as f:
        w = HashingWriter(f)
        iso.write_fp(w, blocksize=1 << 20)
        f.flush()
        size = os.fstat(f.fileno()).st_size
    iso.close()
    assert w.digest(size) == hashlib.sha256(out.read_bytes()).hexdigest()


def test_writing_back_over_hashed_bytes_gives_up() -> None:
    w = HashingWriter(io.BytesIO())
    w.write(b"x" * (1 << 17))
    w.seek(10)
    w.write(b"y" * (1 << 17))
    assert w.digest(1 << 18) is None
