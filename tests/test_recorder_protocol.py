"""ZFY-LINE/1 framing: round trips, and a fuzzed parser that only ever raises ProtocolError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from station.recorder import protocol
from station.recorder.protocol import Frame, ProtocolError

keys = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
values = st.text(max_size=30)
verbs = st.from_regex(r"[A-Z][A-Z_]{0,10}", fullmatch=True)


@given(st.integers(0, 9999), verbs, st.dictionaries(keys, values, max_size=5))
def test_round_trip(seq: int, verb: str, fields: dict[str, str]) -> None:
    frame = Frame(seq, verb, fields)
    try:
        wire = protocol.encode(frame)
    except ValueError:
        return  # too long for one frame: the sender refuses it
    assert wire.endswith(b"\n") and wire.count(b"\n") == 1
    assert protocol.decode(wire) == frame


@settings(max_examples=400)
@given(st.binary(max_size=1500))
def test_garbage_never_crashes_the_parser(data: bytes) -> None:
    try:
        frame = protocol.decode(data)
    except ProtocolError as exc:
        assert exc.message
    else:
        assert isinstance(frame, Frame)


@settings(max_examples=300)
@given(st.integers(0, 9999), st.dictionaries(keys, values, max_size=4), st.data())
def test_corrupted_frames_are_rejected(
    seq: int, fields: dict[str, str], data: st.DataObject
) -> None:
    wire = protocol.encode(Frame(seq, "OK", fields))
    i = data.draw(st.integers(0, len(wire) - 2))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != wire[i]))
    bad = wire[:i] + bytes([new]) + wire[i + 1 :]
    # Any one changed byte is caught (CRC-32 detects every single-byte error).
    with pytest.raises(ProtocolError):
        protocol.decode(bad)


@settings(max_examples=200)
@given(st.integers(0, 9999), st.dictionaries(keys, values, max_size=4), st.data())
def test_partial_frames_are_rejected(seq: int, fields: dict[str, str], data: st.DataObject) -> None:
    wire = protocol.encode(Frame(seq, "OK", fields))
    cut = data.draw(st.integers(0, len(wire) - 2))
    with pytest.raises(ProtocolError):
        protocol.decode(wire[:cut])


def test_oversized_frame_is_rejected() -> None:
    with pytest.raises(ProtocolError, match="exceeds"):
        protocol.decode(b"1 OK x=" + b"a" * 2000 + b" #00000000\n")
    with pytest.raises(ValueError):
        protocol.encode(Frame(1, "OK", {"x": "长" * 400}))


def test_chinese_values_travel_percent_encoded() -> None:
    wire = protocol.encode(Frame(7, "OK", {"officer_name": "张三 李", "unit_name": "城管局"}))
    assert wire.isascii()
    assert protocol.decode(wire).fields["officer_name"] == "张三 李"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "empty"),
        (b"1 OK\n", "too short"),
        (b"1 OK #zzzzzzzz\n", "checksum"),
        (b"\xff\xfe OK #00000000\n", "non-ASCII"),
        (b"12345 OK #00000000\n", "checksum"),
    ],
)
def test_specific_rejections(line: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        protocol.decode(line)


def test_field_accessors_name_the_problem() -> None:
    f = Frame(3, "OK", {"pct": "140", "x": "abc"})
    with pytest.raises(ProtocolError, match="out of range"):
        f.get_int("pct", 0, 100)
    with pytest.raises(ProtocolError, match="not an integer"):
        f.get_int("x", 0, 100)
    with pytest.raises(ProtocolError, match="lacks the field 'free'"):
        f.get("free")


def test_the_documented_example_is_exact() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs/recorder-protocol.md").read_text()
    req = "3 INFO #2eb5f85b"
    rep = (
        "3 OK serial=ZFY0001 officer=100001 officer_name=%E5%BC%A0%E4%B8%89 unit=110101000001"
        " unit_name=%E5%9F%8E%E7%AE%A1%E5%B1%80 #2f1fdf5e"
    )
    assert req in doc and rep in doc
    assert protocol.encode(Frame(3, "INFO")) == (req + "\n").encode()
    reply = protocol.decode(rep.encode())
    assert reply.fields["officer_name"] == "张三" and reply.fields["unit_name"] == "城管局"
