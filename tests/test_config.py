import os
from pathlib import Path

import pytest
import sqlite_utils

from station.config import Settings, load_settings, parse_settings
from station.errors import ConfigError


def test_defaults_run_out_of_the_box(tmp_path: Path) -> None:
    s = load_settings(tmp_path / "missing.toml")
    assert s == Settings()
    assert s.retention.routine_months == 6  # R9
    assert s.ingest.deadline_hours == 24  # R1


def test_unknown_key_named_with_file(tmp_path: Path) -> None:
    f = tmp_path / "station.toml"
    f.write_text("[ingest]\nchunk_kb = 64\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_settings(f)
    assert "ingest.chunk_kb" in str(e.value)
    assert str(f) in str(e.value)


def test_unknown_section() -> None:
    with pytest.raises(ConfigError, match="unknown key 'retnetion'"):
        parse_settings({"retnetion": {}})


def test_wrong_type() -> None:
    with pytest.raises(ConfigError, match="dock.max_sessions"):
        parse_settings({"dock": {"max_sessions": "four"}})
    with pytest.raises(ConfigError, match="expected an integer"):
        parse_settings({"dock": {"max_sessions": True}})


def test_r9_minimum_only_upwards() -> None:
    with pytest.raises(ConfigError, match="R9"):
        parse_settings({"retention": {"routine_months": 3}})
    assert parse_settings({"retention": {"routine_months": 12}}).retention.routine_months == 12


def test_bad_regex_and_timezone() -> None:
    with pytest.raises(ConfigError, match=r"filename_patterns\[0\]"):
        parse_settings({"ingest": {"filename_patterns": ["(unclosed"]}})
    with pytest.raises(ConfigError, match="time zone"):
        parse_settings({"station": {"timezone": "Mars/Olympus"}})


def test_bad_toml(tmp_path: Path) -> None:
    f = tmp_path / "station.toml"
    f.write_text("[ingest\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(f)


def test_float_accepts_int() -> None:
    assert parse_settings({"dock": {"drift_threshold_s": 5}}).dock.drift_threshold_s == 5.0


def test_verify_off_with_clearing_is_refused() -> None:
    """DESIGN.md invariant 2: nothing is cleared unless its vault copy was re-read; settings that
    would clear without the re-read are refused, naming the keys."""
    for clearing in ({}, {"dock": {"clear_policy": "off"}}, {"inbox": {"after_verify": "keep"}}):
        with pytest.raises(ConfigError, match="verify_after_write") as e:
            parse_settings({"ingest": {"verify_after_write": False}, **clearing})
        assert "clear_policy" in e.value.render() or "after_verify" in e.value.render()
    ok = parse_settings(
        {
            "ingest": {"verify_after_write": False},
            "dock": {"clear_policy": "off"},
            "inbox": {"after_verify": "keep"},
        }
    )
    assert ok.ingest.verify_after_write is False


def test_verify_off_with_clearing_refused_at_start(tmp_path: Path) -> None:
    """`station config check`, `station ingest` and `station run` all refuse it, before doing
    anything, with the configuration error's exit code and no traceback."""
    import subprocess
    import sys

    home = tmp_path / "home"
    env = {**os.environ, "STATION_HOME": str(home), "STATION_USER": "tester"}

    def station(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "station", "--home", str(home), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    assert station("init").returncode == 0
    (home / "station.toml").write_text(
        '[ingest]\nverify_after_write = false\n[dock]\nclear_policy = "after-verify"\n',
        encoding="utf-8",
    )
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "A.MP4").write_bytes(b"clip")
    for args in (("config", "check"), ("ingest", str(vol)), ("run",)):
        res = station(*args)
        assert res.returncode == ConfigError.exit_code, (args, res.stdout, res.stderr)
        assert "verify_after_write" in res.stderr and "Traceback" not in res.stderr
    catalog = sqlite_utils.Database(home / "catalog.sqlite")
    assert catalog.execute("select count(*) from sessions").fetchone()[0] == 0
    catalog.close()
