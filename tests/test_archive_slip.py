"""R13: archived means on the shelf — both disc copies burned, or a storage-location slip with
the five fields per recording and a 材料目录. R5: 证明对象 asked for when linking, shown on
the slip. Real commands on real ingested clips."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from station.cli import main
from station.vault import Vault

CASE = "城管罚字〔2026〕第31号"


def run(vault: Vault, *args: str, code: int = 0) -> Result:
    res = CliRunner().invoke(main, ["--home", str(vault.home), "--user", "clerk1", *args])
    assert res.exit_code == code, (res.output, res.stderr if res.stderr_bytes else "")
    return res


def js(vault: Vault, *args: str) -> Any:
    return json.loads(run(vault, *args, "--json").stdout)


def overdue(vault: Vault) -> set[str]:
    rep = js(vault, "report", "compliance")
    (sec,) = [s for s in rep["sections"] if s["key"] == "cases"]
    return {r["number"] for r in sec["rows"]}


def test_slip_and_burned_copies_are_what_counts_as_archived(vault: Vault, tmp_path: Path) -> None:
    run(vault, "init")
    volume = tmp_path / "vol"
    run(vault, "sim", "volume", str(volume), "--device", "DSJ0001", "--officer", "100001",
        "--clips", "2", "--seconds", "1", "--size", "160x120")  # fmt: skip
    shas = [f["sha256"] for f in js(vault, "ingest", str(volume))["files_detail"]]
    opened = (dt.date.today() - dt.timedelta(days=90)).isoformat()
    closed = (dt.date.today() - dt.timedelta(days=40)).isoformat()
    run(vault, "cases", "create", CASE, "--name", "占道经营", "--party", "李四",
        "--cause", "擅自占用城市道路", "--opened", opened)  # fmt: skip
    # R5: linking without 证明对象 works but says what is missing; with --proves it is set.
    res = run(vault, "cases", "link", CASE, shas[1])
    assert "证明对象" in res.stderr
    linked = js(vault, "cases", "link", CASE, shas[0], "--proves", "当事人在人行道摆摊经营")
    assert linked["linked"] == [shas[0]] and linked["no_proves"] == []
    run(vault, "recordings", "tag", shas[1], "--proves", "执法人员告知当事人权利",
        "--sound-content", "执法人员：您好，我们是城管执法人员……当事人：我马上收摊。")  # fmt: skip
    run(vault, "cases", "close", CASE, "--date", closed)
    assert CASE in overdue(vault)  # closed 40 days ago, nothing archived (30 days, R13)

    # Images built and verified, never burned: not archived.
    built = js(vault, "disc", "build", CASE, "--not-long-term")
    assert all(i["verified"] for i in built["images"])
    assert CASE in overdue(vault)

    # No location yet: the slip cannot be made.
    res = run(vault, "cases", "slip", CASE, code=1)
    assert "--location" in res.stderr
    page = tmp_path / "slip.html"
    run(vault, "cases", "slip", CASE, "--location", "档案室 A-3 第2柜", "-o", str(page))
    text = page.read_text("utf-8")
    for needed in ("音像资料存储位置及说明", "材料目录", "档案室 A-3 第2柜", "制作方法",
                   "制作时间", "制作人", "证明对象", "声音内容", "当事人在人行道摆摊经营",
                   "我马上收摊", "李四", "擅自占用城市道路"):  # fmt: skip
        assert needed in text, needed
    names = [js(vault, "recordings", "show", s)["original_name"] for s in shas]
    first, second = sorted(names)  # the sim names carry the start time: time order
    assert text.index(first) < text.index(second)
    assert "未填写" in text  # the first clip's sound content is not described yet
    slip = js(vault, "cases", "slip", CASE)
    assert slip["archived"] and [r["no"] for r in slip["recordings"]] == [1, 2]
    assert slip["missing_sound"] == [1] and slip["missing_proves"] == []
    assert CASE not in overdue(vault)  # the slip archives it (R13)
