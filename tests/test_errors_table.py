"""One table of errors and exit codes (station/errors.py), unique, complete and documented."""

from __future__ import annotations

import errno
import importlib
import pkgutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import station
from station.catalog.db import open_catalog, write_txn
from station.errors import (
    ERROR_CLASSES,
    EXIT_CODES,
    IngestError,
    StationError,
    VaultFullError,
    is_disk_full,
)

ROOT = Path(__file__).resolve().parent.parent


def _all_station_errors() -> list[type[StationError]]:
    """Every StationError subclass of every importable module of ``station``."""
    for info in pkgutil.walk_packages(station.__path__, "station."):
        try:
            importlib.import_module(info.name)
        except ImportError:  # an optional extra (e.g. the web stack) not installed here
            continue
    out: list[type[StationError]] = []
    todo: list[type[StationError]] = [StationError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return out


def test_codes_unique_and_every_error_in_the_table() -> None:
    classes = [c for c in _all_station_errors() if c.__module__.startswith("station.")]
    assert len(classes) > 40  # the walk found the tree, not just the base classes
    own: dict[int, list[str]] = {}
    for cls in classes:
        assert cls.exit_code in EXIT_CODES, (cls, cls.exit_code)
        if "exit_code" in vars(cls):
            own.setdefault(cls.exit_code, []).append(cls.__qualname__)
            # a code is given in the one table only
            assert cls.__module__ == "station.errors", (cls, cls.__module__)
    shared = {code: names for code, names in own.items() if len(names) > 1}
    assert not shared, shared
    assert set(own) == set(ERROR_CLASSES)
    # 0 and 2 (click's usage error) belong to no class, and no class may take them
    assert set(EXIT_CODES) - set(ERROR_CLASSES) == {0, 2}


def test_one_stopped_error() -> None:
    names = [c for c in _all_station_errors() if c.__name__ == "StoppedError"]
    assert len(names) == 1, names


def test_table_text_is_bilingual_chinese_first() -> None:
    for code, meaning in EXIT_CODES.items():
        zh, sep, en = meaning.partition(" / ")
        assert sep and zh and en, (code, meaning)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in zh), (code, meaning)
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in en), (code, meaning)


def test_readme_and_command_index_are_generated() -> None:
    """The README's tables (commands, roles, exit codes) and station/cli_index.py match what
    scripts/readme_commands.py makes of the code now."""
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "readme_commands.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr


def test_readme_check_fails_when_stale(tmp_path: Path) -> None:
    """--check can fail: a README whose exit-code table lost a row is stale."""
    import runpy

    mod = runpy.run_path(str(ROOT / "scripts" / "readme_commands.py"), run_name="readme_check")
    readme = tmp_path / "README.md"
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    readme.write_text(text.replace("| 33 |", "| 99 |"), encoding="utf-8")
    index = tmp_path / "cli_index.py"
    index.write_text((ROOT / "station" / "cli_index.py").read_text(encoding="utf-8"))
    mod["main_"].__globals__.update(README=readme, INDEX=index, ROOT=tmp_path)
    assert mod["main_"](["--check"]) == 1
    assert mod["main_"]([]) == 0 and mod["main_"](["--check"]) == 0
    assert "| 33 |" in readme.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "exc, full",
    [
        (OSError(errno.ENOSPC, "No space left on device"), True),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
        (OSError(errno.EIO, "Input/output error"), False),
        (sqlite3.OperationalError("database or disk is full"), True),
        (sqlite3.OperationalError("database is locked"), False),
        (ValueError("disk is full"), False),
    ],
)
def test_is_disk_full(exc: BaseException, full: bool) -> None:
    assert is_disk_full(exc) is full


def test_write_txn_turns_a_full_disk_into_vault_full(tmp_path: Path) -> None:
    """SQLite's own SQLITE_FULL (the page limit reached) and ENOSPC from a step of the
    transaction both leave write_txn as VaultFullError, and nothing of the change is kept."""
    db = open_catalog(tmp_path / "c.sqlite", migrate=False)
    db.execute("CREATE TABLE t (x BLOB)")
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages + 2}")
    with pytest.raises(VaultFullError) as info, write_txn(db):
        db["t"].insert({"x": b"0" * 1_000_000})
    assert isinstance(info.value.__cause__, sqlite3.Error)
    assert info.value.exit_code == 7 and "磁盘已满" in info.value.message
    assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    assert not db.conn.in_transaction
    with pytest.raises(VaultFullError), write_txn(db):
        db["t"].insert({"x": b"1"})
        raise OSError(errno.ENOSPC, "No space left on device")
    assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    with pytest.raises(OSError) as other, write_txn(db):  # any other error passes unchanged
        raise OSError(errno.EIO, "Input/output error")
    assert other.value.errno == errno.EIO


def test_ingest_report_is_a_field() -> None:
    err = IngestError("x")
    assert err.report is None
    from station.ingest.model import IngestReport

    rep = IngestReport(session_id=3)
    assert IngestError("x", report=rep).report is rep
