"""Reading small structured files that anyone may have written (sidecars, settings, checkpoints).

Every limit is checked before the parser can hit it the hard way:

- the file must be a regular file (a FIFO would block, ``/dev/zero`` never ends) and is read
  up to ``max_bytes`` only;
- nesting of arrays and objects/tables is counted by a scan of the text before parsing (Python's
  parsers recurse: 60 000 ``[`` end in ``RecursionError``), at most ``MAX_DEPTH``;
- numbers have at most ``MAX_DIGITS`` digits (a 5000-digit integer trips Python's own limit with a
  ``ValueError``) and must be finite; whole numbers fit in 64 bits;
- a JSON object with a key given twice is refused (the last one would silently win).

Every refusal is a :class:`LoadError` (a ``ValueError``) with a message for people; callers turn
it into their own StationError naming the file.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

MAX_DEPTH = 32
MAX_DIGITS = 40
INT_LIMIT = 2**63 - 1


class LoadError(ValueError):
    """The file cannot be taken in; the message says why (bilingual)."""


def read_bounded(path: Path, max_bytes: int) -> bytes:
    """The bytes of regular file ``path``, refusing more than ``max_bytes``.

    Raises LoadError for something that is not a regular file or is too large, OSError for a
    file that cannot be read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise LoadError("不是普通文件 / not a regular file")
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(65536, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise LoadError(f"文件过大 / larger than {max_bytes} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def nesting_depth(text: str, *, toml: bool = False) -> int:
    """The deepest nesting of ``[``/``{`` outside strings (and, for TOML, comments)."""
    depth = deepest = 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"' or (toml and ch == "'"):
            triple = toml and text.startswith(ch * 3, i)
            end = ch * 3 if triple else ch
            i += len(end)
            while i < n and not text.startswith(end, i):
                if ch == '"' and text[i] == "\\":
                    i += 1
                i += 1
            i += len(end)
            continue
        if toml and ch == "#":
            nl = text.find("\n", i)
            i = n if nl < 0 else nl
            continue
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(depth - 1, 0)
        i += 1
    return deepest


def _number(text: str) -> str:
    digits = sum(c.isdigit() for c in text)
    if digits > MAX_DIGITS:
        raise LoadError(f"数字过长 / a number with more than {MAX_DIGITS} digits")
    return text


def _int(text: str) -> int:
    value = int(_number(text))
    if abs(value) > INT_LIMIT:
        raise LoadError(f"数值超出范围 / a whole number beyond 64 bits: {text[:24]}")
    return value


def _float(text: str) -> float:
    value = float(_number(text))
    if not math.isfinite(value):
        raise LoadError(f"数值不是有限数 / a number that is not finite: {text[:24]}")
    return value


def _no_constant(name: str) -> Any:
    raise LoadError(f"不允许 {name} / {name} is not a number the station accepts")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise LoadError(f"重复的字段 / the key {key!r} is given twice")
        out[key] = value
    return out


def _check_values(value: Any, path: str = "", depth: int = 0) -> None:
    """Walk a parsed TOML value: whole numbers within 64 bits, finite floats; a refusal names
    the dotted key (``dock.implausible_drift_s``)."""
    where = path or "(top)"
    if depth > MAX_DEPTH:
        raise LoadError(f"嵌套过深 / nested deeper than {MAX_DEPTH} levels at {where}")
    if isinstance(value, bool):
        return
    if isinstance(value, int) and abs(value) > INT_LIMIT:
        raise LoadError(f"数值超出范围 / {where}: a whole number beyond 64 bits")
    if isinstance(value, float) and not math.isfinite(value):
        raise LoadError(f"数值不是有限数 / {where}: {value} is not a finite number")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_values(v, f"{path}.{k}" if path else str(k), depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_values(v, f"{path}[{i}]", depth + 1)


def loads_json(text: str) -> Any:
    """Parse JSON within the limits above; LoadError on any refusal or syntax error."""
    if nesting_depth(text) > MAX_DEPTH:
        raise LoadError(f"嵌套过深 / nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_int=_int,
            parse_float=_float,
            parse_constant=_no_constant,
        )
    except json.JSONDecodeError as exc:
        raise LoadError(
            f"JSON 格式错误 / not valid JSON: {exc.msg} (line {exc.lineno}, col {exc.colno})"
        ) from exc
    except RecursionError as exc:  # the scan above should make this unreachable
        raise LoadError(f"嵌套过深 / nested deeper than {MAX_DEPTH} levels") from exc


def loads_toml(text: str) -> dict[str, Any]:
    """Parse TOML within the limits above; LoadError on any refusal or syntax error."""
    if nesting_depth(text, toml=True) > MAX_DEPTH:
        raise LoadError(f"嵌套过深 / nested deeper than {MAX_DEPTH} levels")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LoadError(f"TOML 格式错误 / not valid TOML: {exc}") from exc
    except LoadError:
        raise
    except (ValueError, RecursionError) as exc:  # int() past Python's digit limit, deep tables
        raise LoadError(f"TOML 无法读取 / TOML the station cannot take in: {exc}") from exc
    _check_values(data)
    return data
