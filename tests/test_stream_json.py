"""JSON written row by row (``stream_json``) is the same document ``print_json`` gives, for any
number of rows and at every batch boundary."""

from __future__ import annotations

import json

import pytest

from station.cli_util import stream_json

COLUMNS = ("sha256", "name", "size", "note")


def _rows(n: int) -> list[tuple[object, ...]]:
    return [(f"{i:064x}", f"执法记录{i}.MP4", i, None if i % 2 else "重要") for i in range(n)]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 6, 7])
def test_stream_json_round_trips(n: int, capsys: pytest.CaptureFixture[str]) -> None:
    stream_json(COLUMNS, iter(_rows(n)), batch=3)
    out = capsys.readouterr().out
    assert json.loads(out) == [dict(zip(COLUMNS, r, strict=True)) for r in _rows(n)]
    assert out.endswith("]\n")
    # one object a line, so a million rows can be grepped and paged
    assert len(out.splitlines()) == (1 if n == 0 else n + 2)


def test_stream_json_keeps_chinese_readable(capsys: pytest.CaptureFixture[str]) -> None:
    stream_json(COLUMNS, iter(_rows(1)))
    assert "执法记录0.MP4" in capsys.readouterr().out
