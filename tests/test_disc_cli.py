"""From "case marked long-term" to two verified images with labels, through the real command
line: simulated recorder volume (real ffmpeg clips), the ingest engine, the cases commands, then
``station disc …`` (R11–R13). Also burning: no drive, a real xorrecord burn to xorriso's
``stdio:`` pseudo-drive with read-back, and a burn recorded as done elsewhere."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from station.catalog import open_catalog
from station.cli import main
from station.disc_burn.burn import choose_target, drives_from_properties, find_drives
from station.vault import Vault
from tests.disc_helpers import LABEL_TOML

CASE = "城管罚字〔2026〕第12号"


def run(vault: Vault, *args: str, code: int = 0) -> Result:
    res = CliRunner().invoke(main, ["--home", str(vault.home), "--user", "clerk1", *args])
    assert res.exit_code == code, (res.output, res.stderr if res.stderr_bytes else "")
    return res


def js(vault: Vault, *args: str) -> Any:
    return json.loads(run(vault, *args, "--json").stdout)


@pytest.fixture
def case(vault: Vault, tmp_path: Path) -> list[str]:
    run(vault, "init")
    (vault.home / "station.toml").write_text(LABEL_TOML, encoding="utf-8")  # R12 label facts
    volume = tmp_path / "vol"
    run(vault, "sim", "volume", str(volume), "--device", "DSJ0001", "--officer", "100001",
        "--clips", "2", "--seconds", "1", "--size", "320x180")  # fmt: skip
    ingested = js(vault, "ingest", str(volume))
    shas = [f["sha256"] for f in ingested["files_detail"]]
    assert len(shas) == 2
    run(vault, "cases", "create", CASE, "--name", "某路口占道经营案", "--party", "李四")
    run(vault, "cases", "link", CASE, *shas)
    return shas


def test_two_commands_from_long_term_to_verified_images(vault: Vault, case: list[str]) -> None:
    # not yet long-term: refused with the R11 hint, and logged
    res = run(vault, "disc", "build", CASE, code=22)
    assert "R11" in res.stderr and "long-term" in res.stderr
    # the two commands of the README
    run(vault, "cases", "mark-long-term", CASE, "--reason", "2", "--note", "申请复议")
    built = js(vault, "disc", "build", CASE, "--media", "dvd")
    assert [(i["copy"], i["verified"]) for i in built["images"]] == [("A", True), ("B", True)]
    for image in built["images"]:
        assert Path(image["image"]).is_file() and Path(image["label_pdf"]).is_file()
        assert len(image["volume_id"]) <= 16
    job = built["job_id"]
    # the daemon's status / screen can follow it: run/disc-status.json
    status = json.loads((vault.run / "disc-status.json").read_text("utf-8"))
    assert status["state"] == "done" and status["job_id"] == job
    assert status["phase"] in ("hash", "verify-xorriso", "verify-7zip")

    plan = js(vault, "disc", "plan", CASE)
    assert plan["discs_total"] == 1 and {f["sha256"] for f in plan["discs"][0]["files"]} == set(
        case
    )
    listed = js(vault, "disc", "list")
    assert (
        listed[0]["id"] == job and listed[0]["state"] == "verified" and listed[0]["cases"] == CASE
    )
    shown = js(vault, "disc", "show", str(job))
    assert [d["state"] for d in shown["discs"]] == ["verified", "verified"]
    assert all(d["verify_result"]["ok"] for d in shown["discs"])
    again = js(vault, "disc", "verify", str(job), "--copy", "B")
    assert len(again) == 1 and again[0]["ok"] and again[0]["copy"] == "B"

    # retention side: both copies verified, none burned yet
    report = js(vault, "report", "discs")
    assert report[0]["case"] == CASE and report[0]["both_verified"]
    assert not report[0]["both_burned"]


def test_burning(vault: Vault, case: list[str], tmp_path: Path) -> None:
    run(vault, "cases", "mark-long-term", CASE, "--reason", "3")
    job = str(js(vault, "disc", "build", CASE)["job_id"])

    # no drive on this machine (or a device that is not there): a clear error, nothing recorded
    res = run(vault, "disc", "burn", job, "--copy", "A", "--device", "/dev/sr9", code=27)
    assert "no drive at /dev/sr9" in res.stderr and "mark-burned" in res.stderr
    with pytest.raises(Exception, match="no drive found"):
        choose_target(None, [])
    if not find_drives():  # the real udev answer on a machine without an optical drive
        res = run(vault, "disc", "burn", job, "--copy", "A", code=27)
        assert "no drive found" in res.stderr and "mark-burned" in res.stderr
        assert json.loads(run(vault, "disc", "drives", "--json").stdout) == []

    # a real burn with xorrecord onto xorriso's stdio pseudo-drive, read back and compared
    drive = tmp_path / "drive.img"
    burned = js(vault, "disc", "burn", job, "--copy", "A", "--device", f"stdio:{drive}",
                "--location", "档案柜 1")  # fmt: skip
    assert burned[0]["state"] == "burned" and burned[0]["burn_readback"] == "match"
    image = Path(burned[0]["image_path"])
    assert drive.read_bytes()[: image.stat().st_size] == image.read_bytes()

    # copy B burned elsewhere
    marked = js(vault, "disc", "mark-burned", job, "--copy", "B", "--by", "王五",
                "--location", "档案室 A-3")  # fmt: skip
    assert marked[0]["state"] == "burned" and marked[0]["location"] == "档案室 A-3"
    report = js(vault, "report", "discs", "--all")
    assert report[0]["both_burned"] and report[0]["location_B"] == "档案室 A-3"
    assert js(vault, "report", "discs") == []  # nothing incomplete left

    db = open_catalog(vault.catalog_path)
    audit = [r[0] for r in db.execute("select event from audit_log order by seq")]
    db.close()
    assert "disc.burned" in audit and "disc.marked_burned" in audit


def test_unverified_images_are_not_burned(vault: Vault, case: list[str], tmp_path: Path) -> None:
    run(vault, "cases", "mark-long-term", CASE, "--reason", "1")
    built = js(vault, "disc", "build", CASE, "--no-verify")
    assert [i["verified"] for i in built["images"]] == [False, False]
    job = str(built["job_id"])
    res = run(vault, "disc", "burn", job, "--copy", "A", "--device", f"stdio:{tmp_path}/d", code=29)
    assert "disc verify" in res.stderr
    run(vault, "disc", "mark-burned", job, "--copy", "A", "--by", "x", "--location", "y", code=29)
    assert js(vault, "disc", "verify", job)[0]["ok"]
    assert js(vault, "disc", "show", job)["discs"][0]["state"] == "verified"


def test_empty_case_from_the_command_line(vault: Vault) -> None:
    run(vault, "init")
    (vault.home / "station.toml").write_text(LABEL_TOML, encoding="utf-8")
    run(vault, "cases", "create", "2026-0001", "--name", "空案件")
    run(vault, "cases", "mark-long-term", "2026-0001", "--reason", "5")
    res = run(vault, "disc", "build", "2026-0001", code=20)
    assert "2026-0001" in res.stderr and "no recordings" in res.stderr
    # the error once, for people; the logged event goes to the home's log file, not the terminal
    assert res.stderr.count("no recordings") == 1 and "disc.plan_refused" not in res.stderr
    assert "disc.plan_refused" in (vault.home / "log" / "station-cli.log").read_text("utf-8")
    status = json.loads((vault.run / "disc-status.json").read_text("utf-8"))
    assert status["state"] == "failed" and "no recordings" in status["error"]
    assert js(vault, "disc", "list") == []


def test_label_placeholders_are_refused(vault: Vault, case: list[str], tmp_path: Path) -> None:
    """R12: a label never says 执法单位 or the login name. A fresh station's placeholders are
    refused with the key to set; the producer is a person's name, from disc.producer or
    --producer; the volume ids start with the unit's code."""
    from station.disc_burn import names

    run(vault, "cases", "mark-long-term", CASE, "--reason", "2")
    (vault.home / "station.toml").unlink()
    res = run(vault, "disc", "build", CASE, code=3)
    assert "station.unit_name" in res.stderr and "执法单位" in res.stderr and "R12" in res.stderr
    no_id = LABEL_TOML.replace('unit_id = "440300000001"', 'unit_id = "000000000000"')
    (vault.home / "station.toml").write_text(no_id, encoding="utf-8")
    assert "station.unit_id" in run(vault, "disc", "build", CASE, code=3).stderr
    no_producer = LABEL_TOML.replace('producer = "王五"', "")
    (vault.home / "station.toml").write_text(no_producer, encoding="utf-8")
    res = run(vault, "disc", "build", CASE, code=3)
    assert "disc.producer" in res.stderr and "--producer" in res.stderr
    assert js(vault, "disc", "list") == []  # nothing was started
    built = js(vault, "disc", "build", CASE, "--producer", "李四")
    code = names.unit_code("440300000001", "STATION-01")
    assert all(i["volume_id"].startswith(code + "_") for i in built["images"])
    out = tmp_path / "MANIFEST.json"
    subprocess.run(
        ["xorriso", "-osirrox", "on", "-indev", built["images"][0]["image"],
         "-extract", "/MANIFEST.json", str(out)],
        capture_output=True, check=True,
    )  # fmt: skip
    manifest_producer = json.loads(out.read_text("utf-8"))["disc"]["producer"]
    assert manifest_producer == "李四"


def test_drive_discovery_reads_udev_cdrom_properties() -> None:
    props = {
        "ID_CDROM": "1",
        "ID_CDROM_BD_R": "1",
        "ID_CDROM_DVD_PLUS_R": "1",
        "ID_CDROM_MEDIA": "1",
        "ID_CDROM_MEDIA_BD_R": "1",
        "ID_CDROM_MEDIA_STATE": "blank",
        "ID_MODEL": "BD-RE_BH16NS55",
    }
    found = drives_from_properties([("/dev/sda", {"ID_TYPE": "disk"}), ("/dev/sr0", props)])
    assert len(found) == 1
    drive = found[0]
    assert (drive.devnode, drive.media, drive.blank) == ("/dev/sr0", "BD_R", True)
    assert drive.writes == ["BD_R", "DVD_PLUS_R"] and drive.model == "BD-RE BH16NS55"
    assert choose_target(None, found) == "/dev/sr0"
    with pytest.raises(Exception, match="several drives"):
        choose_target(None, [drive, drive])
