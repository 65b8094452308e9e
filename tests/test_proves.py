"""R5: 证明对象 (what a recording proves) is asked for when linking to a case, and readable — as
plain UTF-8 text, not escaped JSON — on the disc and in the export package."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import sqlite_utils
from click.testing import CliRunner

from station.access.users import create_user
from station.cli import main
from station.vault import Vault

PW = "correct horse 1"
CASE = "住建罚〔2026〕7号"
PROVES = "施工单位未设置围挡即开挖路面"


def run(vault: Vault, user: str, *args: str) -> str:
    env = {"STATION_USER": user, "STATION_PASSWORD": PW}
    res = CliRunner().invoke(main, ["--home", str(vault.home), "--user", user, *args], env=env)
    assert res.exit_code == 0, res.output
    return res.stdout


def test_proves_on_the_disc_and_in_the_export(
    vault: Vault, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    volume = tmp_path / "vol"
    run(vault, "x", "sim", "volume", str(volume), "--device", "DSJ0001", "--officer", "100001",
        "--clips", "1", "--seconds", "1", "--size", "160x120")  # fmt: skip
    (sha,) = [
        f["sha256"]
        for f in json.loads(run(vault, "x", "ingest", str(volume), "--json"))["files_detail"]
    ]
    for name, role in [("li", "clerk"), ("zhou", "supervisor")]:
        create_user(db, name, role, PW, actor="setup")
    run(vault, "li", "cases", "create", CASE, "--name", "擅自开挖道路", "--party", "某建设公司")
    linked = json.loads(run(vault, "li", "cases", "link", CASE, sha, "--proves", PROVES, "--json"))
    assert linked["no_proves"] == []
    assert db.execute("select proves from recordings").fetchone()[0] == PROVES

    # On the disc: README.txt says it in words (read back through xorriso).
    built = json.loads(run(vault, "li", "disc", "build", CASE, "--not-long-term", "--json"))
    iso = Path(built["images"][0]["image"])
    out = tmp_path / "disc"
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", "/", str(out)],
                   check=True, capture_output=True)  # fmt: skip
    (readme,) = list(out.rglob("README.txt"))
    text = readme.read_text("utf-8")
    assert f"证明对象 / proves: {PROVES}" in text
    (manifest,) = list(out.rglob("MANIFEST.json"))
    raw = manifest.read_bytes().decode("utf-8")
    assert PROVES in raw  # not \\u-escaped

    # In the export package.
    req = json.loads(run(vault, "li", "access", "request", "--purpose", "export",
                         "--reason", "行政诉讼调取", "--recording", sha[:12],
                         "--for", "某区人民法院", "--json"))  # fmt: skip
    run(vault, "zhou", "access", "approve", str(req["id"]), "--valid-hours", "24")
    dest = tmp_path / "usb"
    dest.mkdir()
    pkg = Path(json.loads(run(vault, "li", "export", str(req["id"]), "--to", str(dest),
                              "--json"))["package"])  # fmt: skip
    text = (pkg / "manifest.json").read_text("utf-8")
    assert PROVES in text
    (entry,) = json.loads(text)["files"]
    assert entry["proves"] == PROVES and entry["producer"]
