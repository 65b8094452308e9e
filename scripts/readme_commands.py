"""Regenerate the README's command table between its markers, and the command index
station/cli_index.py that lets ``station`` start without importing every command:

    .venv/bin/python scripts/readme_commands.py

tests/test_cli_surface.py fails when a command is missing from the README or the index is stale;
the role table between "<!-- roles:start -->" and "<!-- roles:end -->" comes from
station.access.commands."""

import re
from pathlib import Path

import click

from station.cli import _COMMAND_MODULES, main
from station.cli_lazy import build_index, render_index

rows = ["| command | what it does |", "|---|---|"]
for name, cmd in sorted(main.commands.items()):
    subs = "|".join(sorted(cmd.commands)) if isinstance(cmd, click.Group) else ""
    label = f"station {name}" + (f" {subs}" if subs else "")
    label = label.replace("|", "\\|")
    rows.append(f"| `{label}` | {(cmd.help or '').splitlines()[0]} |")
readme = Path(__file__).resolve().parent.parent / "README.md"
s = readme.read_text(encoding="utf-8")
block = "<!-- commands:start -->\n" + "\n".join(rows) + "\n<!-- commands:end -->"
s = re.sub(r"<!-- commands:start -->.*?<!-- commands:end -->", lambda m: block, s, flags=re.S)
readme.write_text(s, encoding="utf-8")

index_py = Path(__file__).resolve().parent.parent / "station" / "cli_index.py"
index_py.write_text(render_index(build_index(main, _COMMAND_MODULES)), encoding="utf-8")

# The command → role → how proven table (station.access.commands; tests/test_access_table.py).
from station.access.commands import markdown_table  # noqa: E402

s = readme.read_text(encoding="utf-8")
block = "<!-- roles:start -->\n" + markdown_table() + "\n<!-- roles:end -->"
s = re.sub(r"<!-- roles:start -->.*?<!-- roles:end -->", lambda m: block, s, flags=re.S)
readme.write_text(s, encoding="utf-8")
