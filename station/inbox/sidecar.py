"""Drop sidecars: ``station.json`` / ``station.toml`` naming who and what a drop belongs to.

A folder drop carries its sidecar inside (``<drop>/station.json``); a single-file drop carries it
beside the file (``<file>.station.json``). Keys: ``officer``, ``device``, ``unit``, ``case``,
``method``. ``officer`` is required (R5 producer); without a sidecar the drop waits in
"needs details" until a clerk assigns them — details are never guessed (R5, R6).

Parsing is pure: bytes in, :class:`DropDetails` or :class:`SidecarError` out.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from station.errors import SidecarError
from station.safeload import LoadError, loads_json, loads_toml, read_bounded

SIDECAR_NAMES = ("station.json", "station.toml")
SIDECAR_SUFFIXES = (".station.json", ".station.toml")
KEYS = ("officer", "device", "unit", "case", "method")
REQUIRED = ("officer",)
_MAX_BYTES = 64 * 1024
_ID = re.compile(r"^[\w\-.]{1,64}$")  # officer, device, unit numbers (word characters incl. CJK)
_FREE_MAX = {"case": 100, "method": 200}  # case numbers have spaces, brackets, CJK


@dataclass(frozen=True)
class DropDetails:
    """Who and what a drop belongs to (R5 producer, R6 classification tags)."""

    officer: str
    device: str | None = None
    unit: str | None = None
    case: str | None = None
    method: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def sidecar_paths(drop: Path, *, is_dir: bool) -> list[Path]:
    """Where the sidecar of ``drop`` may live, in order of preference."""
    if is_dir:
        return [drop / n for n in SIDECAR_NAMES]
    return [drop.with_name(drop.name + s) for s in SIDECAR_SUFFIXES]


def is_sidecar_name(name: str) -> bool:
    return name in SIDECAR_NAMES or name.endswith(SIDECAR_SUFFIXES)


def parse_sidecar(data: bytes, *, name: str) -> DropDetails:
    """Parse a sidecar's bytes; ``name`` (``station.json`` / ``….toml``) picks the format.

    Raises :class:`SidecarError` whose ``where`` is the key (or ``name`` for syntax errors).
    """
    if len(data) > _MAX_BYTES:
        raise SidecarError(f"说明文件过大 / sidecar larger than {_MAX_BYTES} bytes", where=name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SidecarError("不是 UTF-8 文本 / not UTF-8 text", where=name) from exc
    raw: Any
    # Bounded parsing (station.safeload): nesting, number length and duplicate keys are refused
    # before a parser could recurse or convert without limit (R5/R6 details come from here).
    try:
        raw = loads_toml(text) if name.endswith(".toml") else loads_json(text)
    except LoadError as exc:
        raise SidecarError(str(exc), where=name) from exc
    if not isinstance(raw, dict):
        raise SidecarError("应为键值对象 / expected an object of keys", where=name)
    return details_from_mapping(raw, where=name)


def read_sidecar(path: Path) -> DropDetails:
    """Read and parse the sidecar at ``path``: a regular file of at most ``_MAX_BYTES`` (a FIFO
    or a huge file put there is refused, never waited on or read to the end)."""
    try:
        data = read_bounded(path, _MAX_BYTES)
    except LoadError as exc:
        raise SidecarError(str(exc), where=path.name) from exc
    return parse_sidecar(data, name=path.name)


def details_from_mapping(raw: dict[str, Any], *, where: str) -> DropDetails:
    unknown = sorted(k for k in raw if k not in KEYS)
    if unknown:
        raise SidecarError(
            f"未知字段 / unknown key {unknown[0]!r}",
            where=f"{where}: {unknown[0]}",
            hint=f"允许 / allowed: {', '.join(KEYS)}",
        )
    values: dict[str, str | None] = {}
    for key in KEYS:
        value = raw.get(key)
        if value is None or value == "":
            values[key] = None
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise SidecarError(
                f"应为文本 / expected text, got {type(value).__name__}", where=f"{where}: {key}"
            )
        text = str(value).strip()
        if key in _FREE_MAX:
            if len(text) > _FREE_MAX[key] or not text.isprintable():
                raise SidecarError(
                    f"取值无效 / bad value {text!r}",
                    where=f"{where}: {key}",
                    hint=f"printable text, at most {_FREE_MAX[key]} characters",
                )
        elif not _ID.match(text):
            raise SidecarError(
                f"取值无效 / bad value {text!r}",
                where=f"{where}: {key}",
                hint="1–64 letters, digits, '-', '_' or '.'",
            )
        values[key] = text
    for key in REQUIRED:
        if not values.get(key):
            raise SidecarError(
                f"缺少必填字段 / missing required key {key!r}", where=f"{where}: {key}"
            )
    officer = values.pop("officer")
    assert officer is not None
    return DropDetails(officer=officer, **values)
