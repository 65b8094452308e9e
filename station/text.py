"""Text from people and devices: what may be stored, and how it is shown.

Two rules, used everywhere text crosses into the station or out to a terminal:

- **Input**: a value has a length limit, and no control characters, line or paragraph
  separators, or bidirectional overrides/isolates (which make a name print as something else,
  e.g. ``U+202E`` turning ``exe.pdf`` round). Free-text fields (notes, reasons) may hold line
  breaks and tabs. :func:`check_text` raises :class:`InputError` naming the field.
- **Output**: :func:`escape_text` shows any such character that still arrives (a file name from a
  recorder, a sidecar, an older row) as a visible escape (``\\n``, ``\\x1b``, ``\\u202e``), so
  one value is one line and one cell of a table, and reads as what it is.
"""

from __future__ import annotations

import unicodedata

from station.errors import InputError

# Bidirectional embedding, override and isolate controls, and the marks (category Cf).
BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)

#: Length limits (characters) of the text people type, by kind of field.
LIMITS: dict[str, int] = {
    "id": 64,  # officer, device, unit numbers, user names
    "case_number": 100,
    "name": 200,  # case name, party, cause, display names, unit names
    "place": 500,  # storage location
    "note": 2000,  # notes, reasons, what a recording proves
}


def _unsafe(ch: str, *, multiline: bool) -> bool:
    if multiline and ch in "\n\t":
        return False
    if ch in BIDI_CONTROLS:
        return True
    # Cs: a byte that was not UTF-8, kept as a lone surrogate (file names, argv)
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs")


def unsafe_char(text: str, *, multiline: bool = False) -> str | None:
    """The first character of ``text`` that may not be stored, or None."""
    for ch in text:
        if _unsafe(ch, multiline=multiline):
            return ch
    return None


def check_text(
    value: str,
    *,
    zh: str,
    en: str,
    where: str,
    max_len: int,
    multiline: bool = False,
) -> str:
    """``value`` if it fits ``max_len`` and holds no unsafe character; else InputError.

    ``zh`` / ``en`` name the field for people (``"案件名称"``, ``"the case name"``); ``where``
    names it as the person wrote it (``--name``).
    """
    if len(value) > max_len:
        raise InputError(
            f"{zh}过长 / {en} is longer than {max_len} characters ({len(value)})", where=where
        )
    ch = unsafe_char(value, multiline=multiline)
    if ch is not None:
        raise InputError(
            f"{zh}含控制字符 / {en} contains the control character {escape_text(ch)}",
            where=where,
            hint="请去掉控制字符后重新输入 / retype it without control characters",
        )
    return value


def escape_text(value: str) -> str:
    """``value`` with every control, separator or bidi character shown as an escape."""
    if not any(_unsafe(ch, multiline=False) for ch in value):
        return value
    out = []
    for ch in value:
        if not _unsafe(ch, multiline=False):
            out.append(ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif 0xDC80 <= ord(ch) <= 0xDCFF:  # an undecodable byte (surrogateescape)
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}")
    return "".join(out)


# ---- both languages, one way -------------------------------------------------------------
# Text for people is written once, in one order: Chinese first, then " / ", then English.


def signed_seconds(value: float | None, missing: str = "") -> str:
    """A clock drift for people: ``+12.0 s``, ``-3.5 s``, ``0.0 s`` (never ``-0.0 s``)."""
    if value is None:
        return missing
    tenths = round(value, 1)
    return "0.0 s" if tenths == 0 else f"{tenths:+.1f} s"


def bi(zh: str, en: str) -> str:
    """``zh`` and ``en`` as the station writes every bilingual text: ``中文 / English``."""
    return f"{zh} / {en}"


YES = bi("是", "yes")
NO = bi("否", "no")


def yes_no(flag: object) -> str:
    """``是 / yes`` or ``否 / no`` — the one way a yes/no cell or value is shown to people."""
    return YES if flag else NO
