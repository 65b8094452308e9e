"""R20: gaps in a recorder's file numbers and time line — the pure part, as a table."""

from __future__ import annotations

import pytest

from station.usb_dock.gaps import find_gaps

T = "2026-11-20T0{}:00:00.000000Z"


@pytest.mark.parametrize(
    ("previous", "files", "found"),
    [
        (None, [(1, T.format(1)), (2, T.format(2)), (3, T.format(3))], []),
        (None, [(1, T.format(1)), (3, T.format(3))], [("sequence", 1, 3, 1)]),
        (
            None,
            [(4, T.format(4)), (1, T.format(1)), (7, T.format(7))],  # unsorted input
            [("sequence", 1, 4, 2), ("sequence", 4, 7, 2)],
        ),
        ((12, T.format(0)), [(13, T.format(1)), (14, T.format(2))], []),
        ((12, T.format(0)), [(15, T.format(1))], [("sequence", 12, 15, 2)]),
        ((12, T.format(0)), [(1, T.format(1)), (2, T.format(2))], []),  # numbering restarted
        (None, [(1, T.format(5)), (2, T.format(3))], [("timeline", 1, 2, 0)]),
        (None, [(1, T.format(1)), (1, T.format(1))], []),  # the same file seen twice
        (None, [], []),
    ],
)
def test_gap_table(
    previous: tuple[int, str] | None,
    files: list[tuple[int, str]],
    found: list[tuple[str, int, int, int]],
) -> None:
    gaps = find_gaps(previous, files)
    assert [(g.kind, g.after_seq, g.before_seq, g.missing) for g in gaps] == found
    for g in gaps:
        assert " / " in g.detail  # Chinese first, then English
