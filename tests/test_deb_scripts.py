"""The package's shell scripts run as root on a technician's machine: shellcheck finds nothing
in them, and the shipped units start the command the package installs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAINTAINER = ["preinst", "postinst", "prerm", "postrm", "station.sh"]


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="no shellcheck")
def test_scripts_pass_shellcheck() -> None:
    sh = [str(REPO / "packaging/deb" / name) for name in MAINTAINER]
    p = subprocess.run(["shellcheck", "-s", "sh", *sh], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout
    p = subprocess.run(
        ["shellcheck", str(REPO / "scripts/build-deb.sh")], capture_output=True, text=True
    )
    assert p.returncode == 0, p.stdout


def test_units_start_the_packaged_command() -> None:
    services = sorted((REPO / "systemd").glob("*.service"))
    assert services
    for unit in services:
        starts = [ln for ln in unit.read_text().splitlines() if ln.startswith("ExecStart=")]
        assert starts and all(ln.startswith("ExecStart=/usr/bin/station ") for ln in starts), unit


def test_maintainer_scripts_are_executable_and_strict() -> None:
    for name in MAINTAINER:
        path = REPO / "packaging/deb" / name
        assert path.stat().st_mode & 0o111, path
        text = path.read_text()
        assert text.startswith("#!/bin/sh\n"), path
        if name != "station.sh":
            assert "\nset -e\n" in text and text.rstrip().endswith("exit 0"), path


def test_every_data_file_of_the_package_is_in_the_wheel() -> None:
    """The .deb installs the station from its wheel: a data file the package-data patterns miss
    works in the editable checkout and is absent on an installed station."""
    import fnmatch
    import tomllib

    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["station"]
    tracked = subprocess.run(
        ["git", "ls-files", "station"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    data = [p.removeprefix("station/") for p in tracked if not p.endswith(".py")]
    missed = [
        p
        for p in data
        if not any(
            fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(p, pat.removeprefix("**/"))
            for pat in patterns
        )
    ]
    assert missed == []
