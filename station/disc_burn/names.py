"""Names on a disc, pure functions.

Each file gets four names, one per file system tree, and MANIFEST.json maps between them:

- ``path``: the full name, Chinese allowed, used by Rock Ridge (Linux, macOS) and UDF (Windows,
  macOS): only characters no system refuses, at most 255 UTF-8 bytes per component (Rock
  Ridge) and 126 UTF-16 units, or 253 Latin-1 characters (UDF, as pycdlib enforces it).
- ``joliet_path``: Windows without UDF. pycdlib refuses a Joliet component longer than 64 UTF-8
  bytes (about 21 Chinese characters, HARNESS.md), so longer names are shortened there,
  keeping the extension, and made unique per folder, case-insensitively.
- ``iso_path``: plain ISO 9660 (level 3): upper-case A–Z, 0–9 and ``_``, names of at most 30
  characters; every reader can fall back to it.

The volume id (R12 label, the disc's name in a file manager) is at most 16 d-characters so it
fits the Joliet volume descriptor.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

RR_MAX_BYTES = 255
UDF_LATIN1_MAX = 253
UDF_UTF16_MAX = 126
JOLIET_MAX_BYTES = 64
ISO_NAME_MAX = 26  # + "." + 3-character extension <= 30 (ECMA-119 7.5.2)
ISO_DIR_MAX = 31
VOLUME_ID_MAX = 16

_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_NOT_D = re.compile(r"[^A-Z0-9_]")


def _truncate_utf8(text: str, limit: int) -> str:
    out = text
    while len(out.encode("utf-8")) > limit:
        out = out[:-1]
    return out


def _split_ext(name: str) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > 8:
        return name, ""
    return stem, "." + ext


def clean(name: str) -> str:
    """A full (Rock Ridge / UDF) name component: readable, safe on every system."""
    text = unicodedata.normalize("NFC", name)
    text = _FORBIDDEN.sub("_", text)
    text = re.sub(r"\s+", " ", text).strip().rstrip(". ")
    text = text.lstrip("-") or "_"
    if text in (".", ".."):
        text = "_"
    stem, ext = _split_ext(text)
    stem = _truncate_utf8(stem, RR_MAX_BYTES - len(ext.encode("utf-8")))
    while stem[:-1] and not udf_fits(stem + ext):
        stem = stem[:-1]
    return stem + ext


def udf_fits(name: str) -> bool:
    """pycdlib's UDF limits: 253 characters when the name is Latin-1, else 126 UTF-16 units."""
    if all(ord(ch) < 256 for ch in name):
        return len(name) <= UDF_LATIN1_MAX
    return len(name.encode("utf-16-be")) // 2 <= UDF_UTF16_MAX


def joliet(name: str) -> str:
    """A Joliet component: ``name`` shortened to fit 64 UTF-8 bytes, extension kept."""
    if len(name.encode("utf-8")) <= JOLIET_MAX_BYTES:
        return name
    stem, ext = _split_ext(name)
    return _truncate_utf8(stem, JOLIET_MAX_BYTES - len(ext.encode("utf-8"))).rstrip() + ext


def iso9660(name: str, *, is_dir: bool) -> str:
    """A plain ISO 9660 component (no ``;1``): d-characters only."""
    ascii_text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    if is_dir:
        out = _NOT_D.sub("_", ascii_text.upper()).strip("_")[:ISO_DIR_MAX]
        return out or "DIR"
    stem, ext = _split_ext(ascii_text)
    stem = _NOT_D.sub("_", stem.upper()).strip("_")[:ISO_NAME_MAX] or "FILE"
    ext = _NOT_D.sub("_", ext[1:].upper())[:3]
    return f"{stem}.{ext}" if ext else stem


class Folder:
    """Names already taken in one folder, per tree, so every tree gets unique names."""

    def __init__(self) -> None:
        self.used: dict[str, set[str]] = {"path": set(), "joliet": set(), "iso": set()}

    def _unique(self, tree: str, name: str, limit_bytes: int | None, fold: bool) -> str:
        used = self.used[tree]
        key = name.casefold() if fold else name
        candidate, n = name, 1
        while key in used:
            n += 1
            stem, ext = _split_ext(name)
            suffix = f"~{n}"
            if tree == "iso":
                stem = stem[: max(1, (ISO_DIR_MAX if not ext else ISO_NAME_MAX) - len(suffix))]
                suffix = f"_{n}"
            elif limit_bytes is not None:
                stem = _truncate_utf8(stem, limit_bytes - len((suffix + ext).encode("utf-8")))
            while tree == "path" and stem[:-1] and not udf_fits(stem + suffix + ext):
                stem = stem[:-1]
            candidate = stem + suffix + ext
            key = candidate.casefold() if fold else candidate
        used.add(key)
        return candidate

    def add(self, name: str, *, is_dir: bool) -> tuple[str, str, str]:
        """Names for a new entry: (full, joliet, iso9660)."""
        full = self._unique("path", clean(name), RR_MAX_BYTES, fold=True)
        jol = self._unique("joliet", joliet(full), JOLIET_MAX_BYTES, fold=True)
        iso = self._unique("iso", iso9660(full, is_dir=is_dir), None, fold=True)
        return full, jol, iso


def _ascii(ch: str) -> str:
    """ASCII for one character: itself, its compatibility form (full-width digits), else ``_``."""
    if ch.isascii():
        return ch
    return unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode() or "_"


_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def unit_code(unit_id: str, station_id: str) -> str:
    """Four d-characters naming the producing unit and station in a volume id: base 36 of
    SHA-256(unit id / station id) — 36⁴ ≈ 1.7 million values, so discs of two bureaus (or two
    stations of one bureau, whose job numbers both start at 1) get different volume ids. The
    full unit id and station id are in the volume set id and MANIFEST.json."""
    n = int.from_bytes(hashlib.sha256(f"{unit_id}/{station_id}".encode()).digest()[:8], "big")
    out = ""
    for _ in range(4):
        n, r = divmod(n, 36)
        out += _BASE36[r]
    return out


def volume_set_id(unit_id: str, station_id: str, job_id: int) -> str:
    """The volume set id (up to 128 d-characters): unit id, station id and job, in full."""
    raw = f"{unit_id}_{station_id}_JOB_{job_id}".upper()
    return re.sub(r"_+", "_", _NOT_D.sub("_", "".join(_ascii(ch) for ch in raw)))[:128]


def volume_id(case_numbers: list[str], job_id: int, disc_no: int, copy: str, unit: str = "") -> str:
    """The volume id of one copy of one disc: ``[<unit>_]<case>_<disc><copy>``, at most 16
    d-characters.

    ``unit`` (``unit_code``) comes first, so two bureaus' discs differ (``K3F9_026_0012_1A``).
    A job of one case whose number has enough ASCII letters or digits uses them (its tail when
    it is long); a case number that does not fit (Chinese only) or a job of several cases uses
    the job number (``JOB00007_1A``). The full case names and numbers are on the label and in
    MANIFEST.json (R12); the volume id only has to be short, valid and distinct per copy.
    """
    suffix = f"_{disc_no}{copy}"
    prefix = f"{unit}_" if unit else ""
    room = VOLUME_ID_MAX - len(suffix) - len(prefix)
    base = ""
    if len(case_numbers) == 1:
        ascii_text = "".join(_ascii(ch) for ch in case_numbers[0])
        base = re.sub(r"_+", "_", _NOT_D.sub("_", ascii_text.upper())).strip("_")
        alnum = sum(ch.isalnum() for ch in base)
        if alnum < 3 or len(base) > room:
            # keep the informative tail (the serial part of most case numbers) if it still reads
            tail = base[-room:].strip("_")
            base = tail if alnum >= 3 and sum(ch.isalnum() for ch in tail) >= 4 else ""
    if not base:
        base = f"JOB{job_id:05d}"
        if len(base) > room:  # with a unit code: J and the job number's last digits
            base = "J" + str(job_id).zfill(room - 1)[-(room - 1) :]
    return prefix + base + suffix
