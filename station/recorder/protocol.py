"""The ZFY-LINE/1 recorder line protocol: framing, encoding and parsing (pure, no I/O).

Spelled out for vendors in ``docs/recorder-protocol.md``. One frame is one line::

    <seq> <VERB> [key=value ...] #<crc32>\\n

``seq`` is 1–4 decimal digits, echoed by the reply; ``VERB`` is upper-case ASCII; values are
percent-encoded UTF-8 (so officer names in Chinese and spaces survive); ``crc32`` is 8 lower-case
hex digits over every byte before `` #``. A frame is at most ``MAX_FRAME`` bytes including the
newline. Anything else is a :class:`ProtocolError` — never any other exception (fuzzed with
hypothesis in ``tests/test_recorder_protocol.py``).
"""

from __future__ import annotations

import re
import urllib.parse
import zlib
from dataclasses import dataclass, field

from station.errors import DeviceError

VERSION = 1
MAX_FRAME = 1024
MAX_FIELDS = 32

_VERB = re.compile(r"^[A-Z][A-Z_]{0,15}$")
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_SEQ = re.compile(r"^[0-9]{1,4}$")
_CRC = re.compile(r"^#[0-9a-f]{8}$")
# Bytes allowed in an encoded value: RFC 3986 unreserved plus '%' for escapes.
_VALUE = re.compile(r"^[A-Za-z0-9\-._~%]*$")

# Error codes a device may send in ``ERR code=…`` (documented in docs/recorder-protocol.md).
ERROR_CODES = ("BADFRAME", "UNKNOWN", "BADARG", "AUTH", "BUSY", "INTERNAL", "VERSION")


class ProtocolError(DeviceError):
    """记录仪应答格式错误 / The recorder sent something that is not a valid ZFY-LINE frame."""


@dataclass(frozen=True)
class Frame:
    seq: int
    verb: str
    fields: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str:
        """A required field; a missing one is a protocol error naming the key."""
        try:
            return self.fields[key]
        except KeyError:
            raise ProtocolError(
                f"reply {self.verb} lacks the field {key!r}", where=f"seq {self.seq}"
            ) from None

    def get_int(self, key: str, lo: int, hi: int) -> int:
        text = self.get(key)
        if not re.fullmatch(r"-?[0-9]{1,19}", text):
            raise ProtocolError(f"field {key}={text!r} is not an integer", where=f"seq {self.seq}")
        value = int(text)
        if not lo <= value <= hi:
            raise ProtocolError(
                f"field {key}={value} out of range {lo}..{hi}", where=f"seq {self.seq}"
            )
        return value


def crc(body: bytes) -> str:
    return f"{zlib.crc32(body) & 0xFFFFFFFF:08x}"


def quote(value: str) -> str:
    return urllib.parse.quote(value, safe="", encoding="utf-8")


def encode(frame: Frame) -> bytes:
    """The wire bytes of ``frame``; refuses frames this side could not send validly."""
    if not 0 <= frame.seq <= 9999:
        raise ValueError(f"seq {frame.seq} out of range")
    if not _VERB.match(frame.verb):
        raise ValueError(f"bad verb {frame.verb!r}")
    if len(frame.fields) > MAX_FIELDS:
        raise ValueError("too many fields")
    parts = [str(frame.seq), frame.verb]
    for key, value in frame.fields.items():
        if not _KEY.match(key):
            raise ValueError(f"bad key {key!r}")
        parts.append(f"{key}={quote(value)}")
    body = " ".join(parts).encode("ascii")
    line = body + b" #" + crc(body).encode("ascii") + b"\n"
    if len(line) > MAX_FRAME:
        raise ValueError(f"frame of {len(line)} bytes exceeds {MAX_FRAME}")
    return line


def decode(line: bytes) -> Frame:
    """Parse one received line (with or without its ``\\n`` / ``\\r\\n``)."""
    if len(line) > MAX_FRAME:
        raise ProtocolError(f"frame of {len(line)} bytes exceeds {MAX_FRAME}")
    raw = line.rstrip(b"\n").rstrip(b"\r")
    if b"\n" in raw or b"\r" in raw:
        raise ProtocolError("line break inside a frame")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError(
            "non-ASCII bytes on the wire (values must be percent-encoded)"
        ) from None
    if not text:
        raise ProtocolError("empty frame")
    tokens = text.split(" ")
    if len(tokens) < 3:
        raise ProtocolError(f"frame too short: {text[:60]!r}")
    if not _CRC.match(tokens[-1]):
        raise ProtocolError(f"missing or malformed checksum: {text[-12:]!r}")
    body = text[: -len(tokens[-1]) - 1].encode("ascii")
    if crc(body) != tokens[-1][1:]:
        raise ProtocolError("checksum mismatch")
    seq_text, verb, *pairs = tokens[:-1]
    if not _SEQ.match(seq_text):
        raise ProtocolError(f"bad sequence number {seq_text[:10]!r}")
    if not _VERB.match(verb):
        raise ProtocolError(f"bad verb {verb[:20]!r}")
    if len(pairs) > MAX_FIELDS:
        raise ProtocolError(f"too many fields ({len(pairs)})")
    fields: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not _KEY.match(key):
            raise ProtocolError(f"bad field {pair[:40]!r}")
        if key in fields:
            raise ProtocolError(f"field {key!r} repeated")
        if not _VALUE.match(value):
            raise ProtocolError(f"bad characters in field {key!r}")
        try:
            fields[key] = urllib.parse.unquote(value, encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            raise ProtocolError(f"field {key!r} is not UTF-8 after decoding") from None
    return Frame(int(seq_text), verb, fields)


def ok(seq: int, **fields: str) -> Frame:
    return Frame(seq, "OK", dict(fields))


def err(seq: int, code: str, message: str) -> Frame:
    return Frame(seq, "ERR", {"code": code, "msg": message})
