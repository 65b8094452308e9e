"""`station config check` and `config show` as an administrator reads them (issue: settings):
every error at once, in Chinese and English, with the key and what is allowed; a missing
station.toml is said (never "valid"); `show` prints TOML that marks the defaults in force."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from click.testing import CliRunner

from station.cli import main
from station.config import Settings, parse_settings, settings_as_dict
from station.vault import Vault

BAD = """[station]
unit_nme = "某市城市管理执法局"
timezone = "Mars/Base"

[disc]
media = "cd"
producer = 5

[ingest]
chunk_kib = 1

[colour]
x = 1
"""


def run(vault: Vault, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["--home", str(vault.home), *args])


def test_every_error_at_once_in_both_languages(vault: Vault) -> None:
    vault.settings_path.write_text(BAD, encoding="utf-8")
    res = run(vault, "config", "check")
    assert res.exit_code == 3
    out = res.output
    assert "6 处错误" in out and "6 error(s)" in out and "valid" not in out.replace("invalid", "")
    # each problem: the key, Chinese then English, what is allowed
    for key, zh, en, allowed in [
        ("station.unit_nme", "未知的配置项", "unknown key", "unit_name"),
        ("station.timezone", "未知时区", "unknown time zone", "Asia/Shanghai"),
        ("disc.producer", "应为文本", "expected str", "text in quotes"),
        ("disc.media", "须为 dvd、bd25、bd50、bd100", "must be dvd", "bd100"),
        ("ingest.chunk_kib", "须在 64 与 65536 之间", "between 64 and 65536", "65536"),
        ("colour", "未知的配置节", "unknown section", "station"),
    ]:
        line = next((x for x in out.splitlines() if f". {key}:" in x), "")
        assert zh in line and en in line and "允许 / allowed" in line and allowed in line, key
    as_json = run(vault, "config", "check", "--json")
    assert as_json.exit_code == 3
    doc = json.loads(as_json.stdout)
    assert doc["valid"] is False and len(doc["errors"]) == 6
    assert {e["key"] for e in doc["errors"]} >= {"disc.media", "disc.producer", "colour"}


def test_a_missing_file_is_not_valid(vault: Vault, tmp_path: Path) -> None:
    assert not vault.settings_path.exists()
    res = run(vault, "config", "check")
    assert res.exit_code == 3 and "valid" not in res.output.replace("invalid", "")
    assert "找不到配置文件" in res.output and "defaults are in force" in res.output
    assert str(vault.settings_path) in res.output
    other = run(vault, "config", "check", str(tmp_path / "nope.toml"))
    assert other.exit_code != 0


def test_valid_file_says_which_defaults_are_in_force(vault: Vault) -> None:
    vault.settings_path.write_text('[disc]\nproducer = "王五"\n', encoding="utf-8")
    res = run(vault, "config", "check")
    assert res.exit_code == 0 and "配置有效 / settings valid" in res.output
    assert "使用默认值 / " in res.output
    doc = json.loads(run(vault, "config", "check", "--json").stdout)
    assert doc["valid"] and "disc.media" in doc["defaults_in_force"]
    assert "disc.producer" not in doc["defaults_in_force"]


def test_show_prints_toml_with_defaults_marked(vault: Vault) -> None:
    vault.settings_path.write_text('[disc]\nproducer = "王五"\n', encoding="utf-8")
    res = run(vault, "config", "show")
    assert res.exit_code == 0
    text = res.output
    shown = tomllib.loads(text)  # real TOML, read back by Python's own reader
    settings = parse_settings(shown)
    assert settings_as_dict(settings) == settings_as_dict(
        parse_settings({"disc": {"producer": "王五"}})
    )
    lines = {x.split(" = ")[0]: x for x in text.splitlines() if " = " in x}
    assert "默认 / default" in lines["media"] and "默认" not in lines["producer"]
    assert json.loads(run(vault, "config", "show", "--json").stdout)["disc"]["producer"] == "王五"
    vault.settings_path.unlink()
    bare = run(vault, "config", "show").output
    assert "没有配置文件" in bare and settings_as_dict(parse_settings(tomllib.loads(bare))) == (
        settings_as_dict(Settings())
    )


def test_settings_that_clash_are_said_chinese_first(vault: Vault) -> None:
    vault.settings_path.write_text(
        '[ingest]\nverify_after_write = false\n[dock]\nclear_policy = "after-verify"\n',
        encoding="utf-8",
    )
    res = run(vault, "config", "check")
    assert res.exit_code == 3
    line = next(x for x in res.output.splitlines() if "1. ingest.verify_after_write" in x)
    assert line.index("关闭写后校验") < line.index("would clear files"), line
