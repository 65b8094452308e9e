"""The rules' words (RULES.md, terms): 执法人员 / 执法证号, never police terms; certificate
numbers of any length a unit uses; 第十四条 reasons in the source's words."""

from __future__ import annotations

import json

import click
import pytest
import sqlite_utils
from click.testing import CliRunner

from station.cli import main
from station.recorder.base import Identity
from station.retention.policy import R11_REASONS, reason_text
from station.vault import Vault

POLICE = ("警号", "民警", "警员", "警察")


def _walk(cmd: click.Command, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    ctx = click.Context(cmd, info_name=" ".join(path) or "station")
    out = [(path, cmd.get_help(ctx))]
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            out += _walk(sub, (*path, name))
    return out


def test_no_police_words_in_any_help() -> None:
    for path, text in _walk(main):
        for word in POLICE:
            assert word not in text, (path, word)


@pytest.mark.parametrize("number", ["3301020001", "A12345", "湘A00123456", "12"])
def test_enrolment_takes_certificate_numbers_of_any_length(
    vault: Vault, db: sqlite_utils.Database, number: str
) -> None:
    res = CliRunner().invoke(
        main,
        ["--home", str(vault.home), "devices", "enrol", "ZFY0001", "--officer", number,
         "--unit", "110101000001", "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["officer_id"] == number
    assert Identity("ZFY0001", number, None, "110101000001").problems() == []


def test_bad_certificate_number_is_refused_in_words(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    res = CliRunner().invoke(
        main,
        ["--home", str(vault.home), "devices", "enrol", "ZFY0001", "--officer", "1 2",
         "--unit", "110101000001"],
    )  # fmt: skip
    assert res.exit_code != 0 and "执法证号" in res.output


def test_reasons_in_the_words_of_article_14() -> None:
    assert "对执法工作不满、抵触情绪严重" in R11_REASONS[1][0]
    assert "之前发生过执法冲突、纠纷" in R11_REASONS[1][0]
    assert "侮辱" in R11_REASONS[3][0] and "殴打行政执法人员" in R11_REASONS[3][0]
    assert "群体性事件、突发事件" in R11_REASONS[4][0]
    for code in R11_REASONS:
        text = reason_text(code)
        assert text.startswith("第十四条第（") and R11_REASONS[code][0] in text
