"""Input a person can type, as the real command line gets it (argv bytes, a real subprocess):
clear errors naming the argument and an exit code from ``station.errors.EXIT_CODES``, never a
traceback; tables that show control characters escaped; bounded names."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from station.errors import EXIT_CODES
from station.vault import Vault

BAD = b"\xff\xfe\xc3("


def station(
    vault: Vault, *args: str | bytes, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    e = {
        **os.environ,
        "STATION_HOME": str(vault.home),
        "STATION_USER": "clerk1",
        "LANG": "C.UTF-8",
        **(env or {}),
    }
    argv = [os.fsencode(sys.executable), b"-m", b"station"]
    argv += [a if isinstance(a, bytes) else a.encode() for a in args]
    return subprocess.run(argv, env=e, capture_output=True, check=False, timeout=300)


def err(r: subprocess.CompletedProcess[bytes]) -> str:
    return r.stderr.decode("utf-8", "backslashreplace")


def clean(r: subprocess.CompletedProcess[bytes], code: int) -> str:
    text = err(r)
    assert "Traceback" not in text, text
    assert r.returncode == code, text
    assert code in EXIT_CODES
    return text


@pytest.fixture
def home(vault: Vault) -> Vault:
    assert station(vault, "init").returncode == 0
    return vault


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((b"cases", b"create", b"AB" + BAD, b"--name", b"x"), "NUMBER"),
        ((b"cases", b"create", b"C-1", b"--name", BAD), "--name"),
        ((b"recordings", b"hold", b"a" * 64, b"--reason", BAD), "--reason"),
        ((b"recordings", b"search", b"--officer", BAD), "--officer"),
        ((b"transcode", b"retry", BAD), "SHA256"),
        ((b"--user", BAD, b"cases", b"list"), "--user"),
    ],
    ids=["cases-create-number", "cases-create-name", "hold-reason", "search-officer",
         "transcode-retry", "user"],
)  # fmt: skip
def test_non_utf8_argument_is_refused_by_name(
    home: Vault, args: tuple[bytes, ...], named: str
) -> None:
    text = clean(station(home, *args), 15)
    assert named in text and "UTF-8" in text and "\\xff" in text


def test_non_utf8_ingest_device(home: Vault, volume: Path) -> None:
    text = clean(station(home, "ingest", str(volume), b"--device", BAD), 15)
    assert "--device" in text
    assert json.loads(station(home, "recordings", "list", "--json").stdout) == []


def test_non_utf8_user_from_the_environment(home: Vault) -> None:
    env = {"STATION_USER": BAD.decode("utf-8", "surrogateescape")}
    text = clean(station(home, "cases", "list", env=env), 15)
    assert "STATION_USER" in text


def test_checkpoint_verify_of_a_binary_file(home: Vault, tmp_path: Path) -> None:
    blob = tmp_path / "photo.jpg"
    blob.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8)
    text = clean(station(home, "checkpoint", "verify", str(blob)), 15)
    assert "not a checkpoint" in text and str(blob) in text


def test_checkpoint_verify_of_a_fifo_does_not_wait(home: Vault, tmp_path: Path) -> None:
    fifo = tmp_path / "cp.note"
    os.mkfifo(fifo)
    text = clean(station(home, "checkpoint", "verify", str(fifo)), 15)
    assert "not a regular file" in text


@pytest.mark.parametrize("where", ["under-a-file", "proc"])
def test_checkpoint_export_to_an_unwritable_place(home: Vault, tmp_path: Path, where: str) -> None:
    a_file = tmp_path / "f"
    a_file.write_text("x")
    dest = str(a_file / "sub") if where == "under-a-file" else "/proc/station-cannot-write"
    text = clean(station(home, "checkpoint", "export", "--to", dest), 16)
    assert "cannot write the checkpoint" in text and dest in text


@pytest.mark.parametrize("form", ["option", "env", "under-a-file", "dev-null"])
def test_home_that_is_not_a_folder(vault: Vault, tmp_path: Path, form: str) -> None:
    a_file = tmp_path / "home-file"
    a_file.write_text("x")
    if form == "option":
        r = station(vault, "--home", str(a_file), "status")
    elif form == "env":
        r = station(vault, "status", env={"STATION_HOME": str(a_file)})
    elif form == "under-a-file":
        r = station(vault, "--home", str(a_file / "sub"), "recordings", "list")
    else:
        r = station(vault, "--home", "/dev/null", "init")
    text = err(r)
    assert "Traceback" not in text and r.returncode in EXIT_CODES and r.returncode != 0, text
    assert "home" in text.lower()


def test_catalog_locked_by_another_process(home: Vault) -> None:
    """Another process holds the catalog's write lock past the busy timeout: a clear error
    naming the catalog file, exit 14 (STATION_CATALOG_BUSY_S shortens the 30 s wait)."""
    conn = sqlite3.connect(home.catalog_path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        r = station(
            home, "cases", "create", "C-9", "--name", "x", env={"STATION_CATALOG_BUSY_S": "1"}
        )
    finally:
        conn.execute("ROLLBACK")
        conn.close()
    text = clean(r, 14)
    assert "locked by another process" in text and str(home.catalog_path) in text


def test_names_with_line_breaks_and_overrides_are_escaped_in_tables(
    home: Vault, tmp_path: Path, volume: Path
) -> None:
    """A recorder file named with a newline, an ESC sequence and a right-to-left override:
    `recordings list` keeps one row per recording and shows the characters escaped."""
    src = next(p for p in sorted(volume.rglob("*")) if p.is_file())
    hostile = src.with_name("A\nB\x1b[31m\u202eevil.MP4")
    src.rename(hostile)
    r = station(home, "ingest", str(volume), "--json")
    assert r.returncode == 0, err(r)
    r = station(home, "recordings", "list")
    out = r.stdout.decode()
    assert r.returncode == 0
    assert "\x1b" not in out and "\u202e" not in out
    assert "A\\nB\\x1b[31m\\u202eevil.MP4" in out
    lines = out.splitlines()
    sep = next(i for i, line in enumerate(lines) if line.startswith("----"))
    rows = [line for line in lines[sep + 1 :] if re.match(r"^[0-9a-f]{16}\s", line)]
    assert len(rows) == 3, out  # three recordings, three rows: the name's line break no split
    # the hostile name sits whole on its own row (long names wrap into the name column only)
    assert any(line.endswith("A\\nB\\x1b[31m\\u202eevil.MP4") for line in rows), out


@pytest.mark.parametrize(
    ("option", "value", "shown"),
    [
        ("--name", "案" * 201, "longer than 200"),
        ("--party", "李" * 201, "longer than 200"),
        ("--cause", "x" * 201, "longer than 200"),
        ("--name", "A\nB", "control character"),
        ("--party", "evil\u202eexe", "control character"),
    ],
    ids=["name-too-long", "party-too-long", "cause-too-long", "name-newline", "party-rlo"],
)
def test_case_names_are_bounded(home: Vault, option: str, value: str, shown: str) -> None:
    args = ["cases", "create", "C-1", "--name", "ok"]
    if option == "--name":
        args[-1] = value
    else:
        args += [option, value]
    text = clean(station(home, *args), 15)
    assert option in text and shown in text
    assert json.loads(station(home, "cases", "list", "--json").stdout) == []


def test_case_texts_bounded_in_the_store_too(home: Vault) -> None:
    """The limit lives in the cases part, not only on the command line."""
    from station.cases.store import create_case
    from station.catalog import open_catalog
    from station.errors import InputError

    db = open_catalog(home.catalog_path)
    try:
        with pytest.raises(InputError, match="case name"):
            create_case(db, "C-2", name="x" * 201, actor="t")
        with pytest.raises(InputError, match="control character"):
            create_case(db, "C-2", name="ok", party="a\u2066b", actor="t")
    finally:
        db.close()


def test_over_long_note_and_reason_are_refused(home: Vault) -> None:
    text = clean(station(home, "recordings", "hold", "a" * 64, "--reason", "r" * 2001), 15)
    assert "--reason" in text and "2000" in text


def test_unexpected_error_is_logged_not_shown(tmp_path: Path) -> None:
    """The safety net at the top: an unexpected exception prints one bilingual line and exit 70;
    the traceback goes to the error log, not the terminal."""
    import click
    from click.testing import CliRunner

    from station.cli_guard import StationGroup
    from station.cli_util import App

    home = Vault(tmp_path / "h")
    home.init()

    @click.group(cls=StationGroup)
    @click.pass_context
    def top(ctx: click.Context) -> None:
        ctx.obj = App(vault=home, actor="t")

    @top.command("boom")
    def boom() -> None:
        raise RuntimeError("a bug, not an input")

    res = CliRunner().invoke(top, ["boom"])
    assert res.exit_code == 70 and res.exit_code in EXIT_CODES
    assert "internal error" in res.stderr and "Traceback" not in res.stderr
    logged = (home.run / "internal-errors.log").read_text()
    assert "Traceback" in logged and "a bug, not an input" in logged


def test_sim_recorder_never_replaces_a_path_it_is_given(home: Vault, tmp_path: Path) -> None:
    """`--pty-link` naming an existing file (or /dev/zero) is refused: only a symbolic link (of an
    earlier run) is ever replaced, so nothing a person named is replaced or deleted at exit."""
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    text = clean(station(home, "sim", "recorder", "--pty-link", str(precious)), 15)
    assert "not a symbolic link" in text
    assert precious.read_text() == "keep me\n" and not precious.is_symlink()


def test_report_output_to_a_fifo_without_reader_fails_fast(home: Vault, tmp_path: Path) -> None:
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    r = station(home, "report", "retention", "--output", str(fifo))  # the 300 s cap is a hang
    text = err(r)
    assert "Traceback" not in text and r.returncode in EXIT_CODES and r.returncode != 0, text
    assert "cannot write the report" in text
