"""R11: footage without a case — a mass incident (第十四条第（四）项) — grouped in an enforcement
activity (执法活动), marked long-term with several reasons, and burned in two copies (R12) that
xorriso and 7-Zip read back. Real commands, real clips, real images."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from station.catalog import open_catalog
from station.cli import main
from station.vault import Vault

ACT = "群体事件〔2026〕3号"
pytestmark = pytest.mark.skipif(
    shutil.which("xorriso") is None or shutil.which("7zz") is None, reason="needs xorriso, 7zz"
)


def run(vault: Vault, *args: str, code: int = 0) -> Result:
    res = CliRunner().invoke(main, ["--home", str(vault.home), "--user", "clerk1", *args])
    assert res.exit_code == code, (res.output, res.stderr if res.stderr_bytes else "")
    return res


def js(vault: Vault, *args: str) -> Any:
    return json.loads(run(vault, *args, "--json").stdout)


def extract(image: Path, dest: Path) -> Path:
    """The image's files through xorriso (Rock Ridge), like the disc tests read them."""
    subprocess.run(
        ["xorriso", "-osirrox", "on", "-indev", str(image), "-extract", "/", str(dest)],
        check=True,
        capture_output=True,
    )
    return dest


def test_reason_4_recording_without_a_case_ends_on_two_verified_discs(
    vault: Vault, tmp_path: Path
) -> None:
    run(vault, "init")
    volume = tmp_path / "vol"
    run(vault, "sim", "volume", str(volume), "--device", "DSJ0001", "--officer", "100001",
        "--clips", "2", "--seconds", "1", "--size", "160x120")  # fmt: skip
    shas = [f["sha256"] for f in js(vault, "ingest", str(volume))["files_detail"]]
    # The recording is marked long-term (reason 4) with no case: it keeps forever, and the
    # words of 第十四条 are shown, never a bare number.
    marked = js(vault, "recordings", "mark-long-term", shas[0], "--reason", "4")
    assert "第十四条第（四）项" in marked["reasons_text"][0]
    assert "群体性事件、突发事件" in marked["reasons_text"][0]
    # An activity has no party.
    res = run(vault, "activities", "create", "X-1", "--name", "x", "--party", "李四", code=2)
    assert "--party" in res.output
    made = js(vault, "activities", "create", ACT, "--name", "某广场群体性事件处置",
              "--recording", shas[0], "--recording", shas[1],
              "--reason", "4", "--reason", "3", "--note", "现场有人辱骂执法人员")  # fmt: skip
    assert made["kind"] == "activity" and made["party"] is None
    assert {r["sha256"] for r in made["recordings"]} == set(shas)
    shown = run(vault, "cases", "show", ACT).stdout
    assert "执法活动" in shown and "第十四条第（四）项" in shown and "侮辱" in shown
    listed = run(vault, "activities", "list").stdout
    assert ACT in listed and "群体性事件" in listed

    built = js(vault, "disc", "build", ACT, "--media", "dvd")
    assert [(i["copy"], i["verified"]) for i in built["images"]] == [("A", True), ("B", True)]
    for image in built["images"]:
        iso = Path(image["image"])
        # 7-Zip tests every file of the image (a second, independent reader).
        seven = subprocess.run(["7zz", "t", str(iso)], capture_output=True, text=True)
        assert seven.returncode == 0 and "Everything is Ok" in seven.stdout
        root = extract(iso, tmp_path / f"x-{image['copy']}")
        (readme,) = list(root.rglob("README.txt"))
        text = readme.read_text("utf-8")
        assert ACT in text and "执法活动" in text
        assert "第十四条第（四）项：行政执法人员参与处置群体性事件、突发事件的" in text
        assert "第十四条第（三）项" in text and "侮辱" in text
        (manifest,) = list(root.rglob("MANIFEST.json"))
        meta = json.loads(manifest.read_text("utf-8"))
        (case,) = meta["cases"]
        assert case["kind"] == "activity" and case["long_term_reasons"] == [4, 3]
        originals = {p.name for p in root.rglob("*.MP4")}
        assert len(originals) == 2
    label = Path(built["images"][0]["label_html"]).read_text("utf-8")
    assert "执法活动或案件名称及编号" in label and ACT in label
    db = open_catalog(vault.catalog_path)
    try:
        marks = db.execute("select long_term_reasons from cases where number = ?", [ACT]).fetchone()
        assert json.loads(marks[0]) == [4, 3]
    finally:
        db.close()
