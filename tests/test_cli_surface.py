"""The command line as users meet it: every command documented in the README, bilingual help,
``--json`` on every command that prints results (sqlite-utils' test_docs is the model)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from station.cli import main

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
CJK = re.compile(r"[\u4e00-\u9fff]")

# Commands that print no result table (they run, or print JSON only)
NO_JSON = {"config show", "demo", "run", "sim recorder"}


def _leaves(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        path = f"{prefix}{name}"
        if isinstance(cmd, click.Group):
            out.extend(_leaves(cmd, path + " "))
        else:
            out.append((path, cmd))
    return out


LEAVES = _leaves(main)


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_top_level_command_is_in_the_readme(name: str) -> None:
    pattern = rf"station (?:--\S+ \S+ )*{re.escape(name)}\b"
    assert re.search(pattern, README), f"README does not mention `station {name}`"


@pytest.mark.parametrize(("path", "cmd"), LEAVES, ids=[p for p, _ in LEAVES])
def test_help_is_bilingual(path: str, cmd: click.Command) -> None:
    text = cmd.help or ""
    assert CJK.search(text), f"`station {path}` help has no Chinese"
    assert re.search(r"[A-Za-z]{3,}", text), f"`station {path}` help has no English"


@pytest.mark.parametrize(("path", "cmd"), LEAVES, ids=[p for p, _ in LEAVES])
def test_json_option(path: str, cmd: click.Command) -> None:
    if path in NO_JSON:
        return
    names = {o for p in cmd.params for o in getattr(p, "opts", [])}
    assert "--json" in names, f"`station {path}` has no --json"
