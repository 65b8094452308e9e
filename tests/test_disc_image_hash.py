"""The image SHA-256 computed while pycdlib writes (``HashingWriter``) is the SHA-256 of the
finished file, for images with several files, folders, a file larger than one write block and an
empty file — and a writer that goes back over hashed bytes gives up instead of lying."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pycdlib
import pytest

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


def _layout(tmp_path: Path) -> tuple[Any, dict[str, bytes]]:
    """A real disc layout: three recordings, then the manifest and read-me added after them."""
    from station.disc_burn.layout import lay_out
    from station.disc_burn.manifest import DiscIdentity, build_files
    from station.disc_burn.plan import DiscPlan, PlanFile

    disc = DiscPlan(1)
    for i, size in enumerate([2 * (1 << 20) + 5, 300_000, 1 << 20]):
        data = os.urandom(size)
        sha = hashlib.sha256(data).hexdigest()
        name = f"DSJ0001_100001_20260301{i:06d}_{i + 1:04d}.MP4"
        (tmp_path / name).write_bytes(data)
        disc.files.append(("C-1", PlanFile(sha, sha, "original", size, name, name)))
    layout = lay_out(disc, {"C-1": "测试案件"}, False)
    ident = DiscIdentity(1, 1, 1, "dvd", "C-1", "单位", "tester", "2026-01-01T00:00:00Z")
    return layout, build_files(layout, ident, [], {}, [], [], None)


def test_image_written_in_order_needs_no_second_pass(tmp_path: Path) -> None:
    """A real disc layout (recordings, then the manifest and read-me added after them) is
    hashed while written: no "second pass" event, and the hash is the file's."""
    from structlog.testing import capture_logs

    from station.disc_burn.image import ImageSpec, write_image
    from station.disc_burn.media import MEDIA

    layout, support = _layout(tmp_path)
    out = tmp_path / "T_1A.iso"
    with capture_logs() as logs:
        size, digest = write_image(
            tmp_path, layout, support, ImageSpec("T_1A", 1, 1, 1, "A"), MEDIA["dvd"], out
        )
    assert size == out.stat().st_size
    assert digest == hashlib.sha256(out.read_bytes()).hexdigest()
    assert not [e for e in logs if e["event"] == "disc.image_hash_second_pass"]


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


def test_copies_whose_writes_do_not_line_up_are_written_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If copy B's writes do not line up with copy A's (a different layout), neither image is
    made from the other: each is written on its own, and both are right."""
    from structlog.testing import capture_logs

    from station.disc_burn import image
    from station.disc_burn.media import MEDIA

    layout, support = _layout(tmp_path)
    real_write = image._Recorder.write

    def shifted(self: Any, data: bytes) -> int:  # copy B laid out one byte further on
        self.pos += 1
        return int(real_write(self, data))

    monkeypatch.setattr(image._Recorder, "write", shifted)
    # pycdlib dates the volume and its folders by time.time(): one second, so that a loaded
    # machine writing the two copies seconds apart does not make them differ by more than ids
    monkeypatch.setattr("time.time", lambda: 1_764_600_000.0)
    specs = [image.ImageSpec(f"T_1{c}", 1, 1, 1, c) for c in "AB"]
    outs = [tmp_path / "out" / f"T_1{c}.iso" for c in "AB"]
    with capture_logs() as logs:
        done = image.write_images(tmp_path, layout, support, specs, MEDIA["dvd"], outs)
    assert [e["event"] for e in logs].count("disc.copies_written_apart") == 1
    for (size, digest), out in zip(done, outs, strict=True):
        assert size == out.stat().st_size
        assert digest == hashlib.sha256(out.read_bytes()).hexdigest()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["T_1A.iso", "T_1B.iso"]
    a, b = (o.read_bytes() for o in outs)
    assert a != b and sum(x != y for x, y in zip(a, b, strict=True)) < 200  # volume ids differ
