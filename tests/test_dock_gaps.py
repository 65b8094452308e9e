"""R20: gaps in a recorder's file numbers and time line — the pure part, as a table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from station.cli import main
from station.sim.volume import make_volume
from station.usb_dock.gaps import find_gaps
from station.vault import Vault

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


def test_folder_ingest_flags_a_gap_too(tmp_path: Path) -> None:
    """R20 for a card reader or folder: `station ingest` flags the missing number as well."""
    vault = Vault(tmp_path / "home")
    assert CliRunner().invoke(main, ["--home", str(vault.home), "init"]).exit_code == 0
    root = tmp_path / "card"
    make_volume(root, device="DSJ0004", officer="3301020004", clips=3, seconds=0.5,
                size="160x120")  # fmt: skip
    (gone,) = list(root.rglob("*_0002.MP4"))
    gone.unlink()
    res = CliRunner().invoke(main, ["--home", str(vault.home), "ingest", str(root), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert [f["code"] for f in out["flags"]] == ["sequence_gap"]
    assert "缺 1 个" in out["flags"][0]["message"]
