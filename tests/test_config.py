from pathlib import Path

import pytest

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
