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
NO_JSON = {"demo", "run", "sim recorder"}


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


def test_command_index_is_current() -> None:
    """station/cli_index.py lists every command with its module and help (regenerate with
    scripts/readme_commands.py)."""
    from station.cli import _COMMAND_MODULES
    from station.cli_index import INDEX
    from station.cli_lazy import build_index

    assert build_index(main, _COMMAND_MODULES) == INDEX


_PROBE = """
import io, sys, contextlib
from station.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        main(sys.argv[1:], prog_name="station")
    except SystemExit:
        pass
loaded = sorted(m for m in sys.modules if m.startswith(("station", "structlog", "sqlite_utils")))
print("\\n".join(["---"] + loaded), file=sys.stderr)
print(out.getvalue())
"""


def _run_probe(*args: str, home: Path | None = None) -> tuple[str, set[str]]:
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    if home is not None:
        env["STATION_HOME"] = str(home)
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, env=env, check=True
    )
    loaded = set(proc.stderr.split("---\n", 1)[1].split())
    return proc.stdout, loaded


def test_help_lists_every_command_without_importing_them() -> None:
    out, loaded = _run_probe("--help")
    for name, cmd in main.commands.items():
        if not cmd.hidden:
            assert re.search(rf"^  {re.escape(name)}\s", out, re.M), name
    from station.cli import _COMMAND_MODULES

    assert not loaded & set(_COMMAND_MODULES)
    assert "structlog" not in loaded and "sqlite_utils" not in loaded


def test_a_command_imports_only_its_own_module(tmp_path: Path) -> None:
    """`station status` loads the dock's command module and no other command's code."""
    _out, loaded = _run_probe("status", "--json", home=tmp_path)
    from station.cli import _COMMAND_MODULES

    assert loaded & set(_COMMAND_MODULES) == {"station.usb_dock.cli"}
    # sqlite_utils is loaded: status reads the clock's verdict from the catalog (R9, clockguard)


def test_shared_group_lists_sub_commands_of_every_module() -> None:
    out, loaded = _run_probe("recordings", "--help")
    for name in main.commands["recordings"].commands:  # type: ignore[attr-defined]
        assert re.search(rf"^  {re.escape(name)}\s", out, re.M), name
    assert "station.cases.recordings_cli" not in loaded


def test_help_text_matches_an_eager_listing() -> None:
    """The lazy listing prints exactly what click prints for the loaded tree."""
    eager = click.Group(name="station", commands=dict(main.commands))
    ctx = click.Context(eager, info_name="station", max_content_width=100)
    fmt = ctx.make_formatter()
    eager.format_commands(ctx, fmt)
    out, _ = _run_probe("--help")
    assert fmt.getvalue().strip() in out


def test_a_lazily_loaded_command_checks_its_arguments(tmp_path: Path) -> None:
    """A command loaded on demand (not by walking the tree) still refuses non-UTF-8 input."""
    import subprocess
    import sys

    bad = b"\xff\xfe".decode("utf-8", "surrogateescape")
    probe = (
        "import sys; from station.cli import main; "
        "main(['--home', sys.argv[1], 'recordings', 'show', sys.argv[2]], prog_name='station')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "home"), bad], capture_output=True
    )
    assert proc.returncode == 15, proc.stderr
    assert "UTF-8" in proc.stderr.decode("utf-8", "replace")
