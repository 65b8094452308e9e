"""Regenerate the README's generated tables between their markers, and the command index
station/cli_index.py that lets ``station`` start without importing every command:

    .venv/bin/python scripts/readme_commands.py          # write them
    .venv/bin/python scripts/readme_commands.py --check  # exit 1 naming what is stale

Tables: the commands ("<!-- commands:start -->" … "<!-- commands:end -->"), the command → role
table ("<!-- roles:start -->", from station.access.commands) and the exit codes
("<!-- exit-codes:start -->", from station.errors.EXIT_CODES). tests/test_readme_generated.py
runs ``--check``; tests/test_cli_surface.py fails when a command is missing from the README."""

import re
import sys
from pathlib import Path

import click

from station.cli import _COMMAND_MODULES, main
from station.cli_lazy import build_index, render_index

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
INDEX = ROOT / "station" / "cli_index.py"


def command_table() -> str:
    rows = ["| command | what it does |", "|---|---|"]
    for name, cmd in sorted(main.commands.items()):
        subs = "|".join(sorted(cmd.commands)) if isinstance(cmd, click.Group) else ""
        label = f"station {name}" + (f" {subs}" if subs else "")
        label = label.replace("|", "\\|")
        rows.append(f"| `{label}` | {(cmd.help or '').splitlines()[0]} |")
    return "\n".join(rows)


def exit_code_table() -> str:
    from station.errors import ERROR_CLASSES, EXIT_CODES

    rows = ["| code | meaning | class |", "|---|---|---|"]
    for code, meaning in EXIT_CODES.items():
        cls = ERROR_CLASSES.get(code)
        rows.append(f"| {code} | {meaning} | {f'`{cls.__name__}`' if cls else ''} |")
    return "\n".join(rows)


def role_table() -> str:
    from station.access.commands import markdown_table

    return markdown_table()


def _put(text: str, marker: str, body: str) -> str:
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    if start not in text or end not in text:
        raise SystemExit(f"README.md has no {start} … {end} markers")
    block = f"{start}\n{body}\n{end}"
    return re.sub(f"{re.escape(start)}.*?{re.escape(end)}", lambda m: block, text, flags=re.S)


def generated() -> tuple[str, str]:
    """The README and the command index as they should be."""
    text = README.read_text(encoding="utf-8")
    text = _put(text, "commands", command_table())
    text = _put(text, "roles", role_table())
    text = _put(text, "exit-codes", exit_code_table())
    return text, render_index(build_index(main, _COMMAND_MODULES))


def main_(argv: list[str]) -> int:
    readme, index = generated()
    if "--check" in argv:
        stale = [
            str(path.relative_to(ROOT))
            for path, want in ((README, readme), (INDEX, index))
            if path.read_text(encoding="utf-8") != want
        ]
        if stale:
            print(
                "stale: " + ", ".join(stale) + " — run .venv/bin/python scripts/readme_commands.py",
                file=sys.stderr,
            )
            return 1
        return 0
    README.write_text(readme, encoding="utf-8")
    INDEX.write_text(index, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main_(sys.argv[1:]))
