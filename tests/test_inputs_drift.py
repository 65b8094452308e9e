"""`station ingest --drift` is bounded like the dock's own measurement (R3): finite numbers only,
at most ``dock.implausible_drift_s`` either way; a refusal names the option and stores nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from station.vault import Vault


def station(vault: Vault, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STATION_HOME": str(vault.home), "STATION_USER": "clerk1"}
    return subprocess.run(
        [sys.executable, "-m", "station", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def recordings(vault: Vault) -> list[dict[str, object]]:
    r = station(vault, "recordings", "list", "--json")
    assert r.returncode == 0, r.stderr
    return list(json.loads(r.stdout))


@pytest.mark.parametrize(
    "drift",
    ["315360000", "-315360000", "86401", "nan", "inf", "-inf", "1e308", "-1e308"],
    ids=[
        "10-years",
        "minus-10-years",
        "a-day-and-a-second",
        "nan",
        "inf",
        "-inf",
        "1e308",
        "-1e308",
    ],
)
def test_implausible_or_not_finite_drift_is_refused(vault: Vault, volume: Path, drift: str) -> None:
    assert station(vault, "init").returncode == 0
    r = station(vault, "ingest", str(volume), "--drift", drift)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 15, r.stderr  # InputError in station.errors.EXIT_CODES
    assert "--drift" in r.stderr
    assert recordings(vault) == []  # nothing stored with a wrong time (R3)


def test_drift_bound_follows_the_dock_setting(vault: Vault, volume: Path) -> None:
    assert station(vault, "init").returncode == 0
    vault.settings_path.write_text("[dock]\nimplausible_drift_s = 100\n")
    r = station(vault, "ingest", str(volume), "--drift", "150")
    assert r.returncode == 15 and "100" in r.stderr and "dock.implausible_drift_s" in r.stderr
    r = station(vault, "ingest", str(volume), "--drift", "-40", "--json")
    assert r.returncode == 0, r.stderr
    rows = recordings(vault)
    assert len(rows) == 3


def test_not_finite_dock_bound_is_a_config_error(vault: Vault) -> None:
    assert station(vault, "init").returncode == 0
    vault.settings_path.write_text("[dock]\nimplausible_drift_s = inf\n")
    r = station(vault, "config", "check")
    assert r.returncode == 3 and "dock.implausible_drift_s" in r.stderr, r.stderr
