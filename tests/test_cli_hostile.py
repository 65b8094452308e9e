"""Every command of the CLI against hostile arguments: no traceback, an exit code from the table.

The click tree is walked; each parameter of each command gets hostile values for its type
(non-UTF-8 bytes, NaN, infinities, huge numbers, over-long and control-character text, paths that
are files, /proc paths, missing paths) while the other required parameters get ordinary values
that reach the command's body (a real recording, a real case). Every command line runs as its own
process (forked from one process that imported the station once, see ``hostile_runner.py``).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import click
import pytest

from station.cli import main
from station.errors import EXIT_CODES, InternalError

HERE = Path(__file__).resolve().parent
PW = "hostile-pw-1"

NONUTF8 = b"\xff\xfe\xc3(bad".decode("utf-8", "surrogateescape")
LONG = "长" * 5000
CTRL = "a\nb\r\x1b[31m\u202eevil\u2066\x07"
HUGE = "9" * 400
TEXT_VALUES = [NONUTF8, LONG, CTRL, "/proc/self/mem", "", HUGE]
INT_VALUES = [HUGE, "-" + HUGE, "-1", "nan", NONUTF8]
FLOAT_VALUES = ["nan", "inf", "-inf", "1e308", "-1e308", "1e-320", NONUTF8]

# Small work for commands that make clips (sim volume, demo) when a value is accepted.
FAST = {"clips": "1", "seconds": "0.5", "size": "64x64"}

# Commands that run until stopped by design; given ordinary values they serve forever, so only
# their refusals are exercised (a hostile value must be refused, not served).
LONG_RUNNING = {"run", "sim recorder", "web"}


def leaves(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    out: list[tuple[tuple[str, ...], click.Command]] = []
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            out.extend(leaves(cmd, (*prefix, name)))
        else:
            out.append(((*prefix, name), cmd))
    return out


def _is_path(p: click.Parameter) -> bool:
    return isinstance(p.type, click.Path | click.File)


def ordinary(p: click.Parameter, fx: dict[str, str]) -> str:
    """A value for ``p`` that lets the command reach its body."""
    name = (p.name or "").lower()
    if name in fx:
        return fx[name]
    t = p.type
    if isinstance(t, click.Choice):
        return str(t.choices[0])
    if isinstance(t, click.IntRange | click.FloatRange):
        return str(t.min if t.min is not None else 1)
    if isinstance(t, click.types.IntParamType):
        return "1"
    if isinstance(t, click.types.FloatParamType):
        return "1"
    if _is_path(p):
        if isinstance(t, click.Path) and not t.dir_okay:
            return fx["a_file"]
        return fx["a_dir"]
    return "1"


def hostile(p: click.Parameter, fx: dict[str, str]) -> list[str]:
    t = p.type
    if isinstance(t, click.Choice):
        return [NONUTF8, "x" * 300]
    if isinstance(t, click.types.IntParamType):
        return INT_VALUES
    if isinstance(t, click.types.FloatParamType):
        return FLOAT_VALUES
    if _is_path(p):
        return [
            fx["a_file"],
            fx["a_dir"],
            "/proc/self/mem",
            "/proc/self/fd",
            fx["a_zero"],
            fx["a_fifo"],
            "/proc/nonexistent/x",
            fx["a_dir"] + "/" + NONUTF8,
            fx["a_file"] + "/under-a-file",
            "x" * 5000,
        ]
    return TEXT_VALUES


def value_params(cmd: click.Command) -> list[click.Parameter]:
    """The parameters that take a value (flags and --help take none)."""
    return [
        p
        for p in cmd.params
        if not (isinstance(p, click.Option) and (p.is_flag or p.count)) and p.name != "help"
    ]


def build(
    path: tuple[str, ...],
    cmd: click.Command,
    fx: dict[str, str],
    target: click.Parameter | None = None,
    value: str = "",
) -> list[str]:
    """The command line of ``path``: ``value`` for ``target``, ordinary values elsewhere."""
    args = [*path]
    for p in value_params(cmd):
        if p is target:
            v = value
        elif p.required or p.name in FAST:
            v = ordinary(p, fx) if p.name not in FAST else FAST[p.name]
        else:
            continue
        if isinstance(p, click.Argument):
            args.extend([v] * (p.nargs if p.nargs > 0 else 1))
        else:
            args.extend([max(p.opts, key=len), v])
    return args


def command_lines(fx: dict[str, str]) -> list[dict[str, object]]:
    """One case per hostile value of each parameter, plus hostile global options."""
    lines: list[dict[str, object]] = []
    for path, cmd in leaves(main):
        term = {"term_after": 2} if " ".join(path) in LONG_RUNNING else {}
        for p in value_params(cmd):
            for v in hostile(p, fx):
                lines.append({"args": build(path, cmd, fx, p, v), **term})
        # The global options, hostile, before an ordinary command line.
        base = build(path, cmd, fx)
        for opt, v in [
            ("--user", NONUTF8),
            ("--user", CTRL),
            ("--user", LONG),
            ("--home", fx["a_file"]),
            ("--home", "/proc/self/mem"),
            ("--home", fx["a_file"] + "/sub"),
            ("--home", fx["a_zero"]),
            ("--home", NONUTF8),
        ]:
            lines.append({"args": [opt, v, *base], **term})
    return lines


def station(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    e = {**os.environ, "STATION_HOME": str(home), "STATION_USER": "admin", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "station", *args],
        env=e,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.fixture
def hostile_home(tmp_path: Path, volume: Path) -> dict[str, str]:
    return make_home(tmp_path, volume)


def make_home(tmp_path: Path, volume: Path) -> dict[str, str]:
    """A station home with an admin, one ingested volume and one case holding a recording."""
    home = tmp_path / "home"
    assert station(home, "init").returncode == 0
    r = station(home, "users", "add", "admin", "--role", "admin", env={"STATION_NEW_PASSWORD": PW})
    assert r.returncode == 0, r.stderr
    pw = {"STATION_PASSWORD": PW}
    r = station(home, "ingest", str(volume), "--json", env=pw)
    assert r.returncode == 0, r.stderr
    sha = json.loads(r.stdout)["files_detail"][0]["sha256"]
    r = station(home, "cases", "create", "CASE-1", "--name", "占道经营", env=pw)
    assert r.returncode == 0, r.stderr
    assert station(home, "cases", "link", "CASE-1", sha, env=pw).returncode == 0
    a_file = tmp_path / "a-file.txt"
    a_file.write_text("not a folder\n")
    a_dir = tmp_path / "a-dir"
    a_dir.mkdir()
    a_fifo = tmp_path / "a-fifo"
    os.mkfifo(a_fifo)
    # An endless character device like /dev/zero, but our own: a command that wrongly replaced
    # or removed a path it was given must not damage the machine's /dev.
    a_zero = tmp_path / "a-zero"
    if os.geteuid() == 0:
        os.mknod(a_zero, 0o666 | stat.S_IFCHR, os.makedev(1, 5))
    else:
        a_zero.write_text("not root: a plain file stands in\n")
    return {
        "home": str(home),
        "a_file": str(a_file),
        "a_dir": str(a_dir),
        "a_fifo": str(a_fifo),
        "a_zero": str(a_zero),
        "sha256": sha,
        "number": "CASE-1",
        "cases": "CASE-1",
        "name": "officer9",
        "device_id": "DSJ0001",
        "volume": str(volume),
        "directory": str(a_dir),
    }


def test_every_command_survives_hostile_arguments(hostile_home: dict[str, str]) -> None:
    given = {k: os.lstat(hostile_home[k]).st_mode for k in ("a_file", "a_fifo", "a_zero")}
    lines = command_lines(hostile_home)
    env = {
        "STATION_HOME": hostile_home["home"],
        "STATION_USER": "admin",
        "STATION_PASSWORD": PW,
        "STATION_NEW_PASSWORD": PW,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    proc = subprocess.run(
        [sys.executable, str(HERE / "hostile_runner.py"), "40", "2"],
        input=json.dumps({"env": env, "cases": lines}, ensure_ascii=True),
        capture_output=True,
        text=True,
        check=False,
        timeout=3000,
        cwd=hostile_home["a_dir"],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout)
    assert len(results) == len(lines) > 500
    bad = []
    for r in results:
        if r["code"] == InternalError.exit_code:
            r["code"] = "70 (internal error: a validation gap)"
        shown = " ".join(
            a.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")[:40]
            for a in r["args"]
        )
        if r["signal"] is not None:
            bad.append(
                f"station {shown}: killed by signal {r['signal']} (hang?)\n{r['stderr'][-600:]}"
            )
        elif r["code"] not in EXIT_CODES:
            bad.append(f"station {shown}: exit {r['code']} not in the table\n{r['stderr'][-600:]}")
        elif "Traceback" in r["stderr"]:
            bad.append(f"station {shown}: traceback\n{r['stderr'][-1500:]}")
    assert not bad, f"{len(bad)} of {len(results)} failed:\n\n" + "\n\n".join(bad[:40])
    # No command replaced or removed a file, FIFO or device it was only given as an argument.
    for k, mode in given.items():
        assert os.lstat(hostile_home[k]).st_mode == mode, f"{k} was replaced or changed"
