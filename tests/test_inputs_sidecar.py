"""Hostile drop sidecars (R5 producer, R6 tags come from them): bounded size, nesting and
numbers, duplicate keys refused; the drop is held with an error file and the pass goes on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_inbox_support import write_file

from station.errors import SidecarError
from station.inbox.sidecar import parse_sidecar, read_sidecar
from station.safeload import MAX_DEPTH
from station.vault import Vault

BIG_INT_JSON = b'{"officer": ' + b"9" * 5000 + b"}"
# Unclosed, as in the report: under the 64 KiB size limit, so only the depth bound stops them.
DEEP_JSON = b'{"officer": "1", "device": ' + b"[" * 60000
DEEP_TOML = b'officer = "1"\ndevice = ' + b"[" * 20000
DEEP_TOML_TABLES = b'officer = "1"\ndevice = ' + b"{a=" * 20000
DUP_JSON = b'{"officer": "100001", "officer": "999999"}'
BIG_INT_TOML = b"officer = " + b"9" * 5000 + b"\n"


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (BIG_INT_JSON, "station.json", "digits"),
        (DEEP_JSON, "station.json", "nested deeper"),
        (DEEP_TOML, "station.toml", "nested deeper"),
        (DEEP_TOML_TABLES, "station.toml", "nested deeper"),
        (DUP_JSON, "station.json", "given twice"),
        (BIG_INT_TOML, "station.toml", "4300 digits"),
        (b'{"officer": NaN}', "station.json", "NaN"),
        (b'{"officer": 1e999}', "station.json", "not finite"),
        (b'{"officer": 99999999999999999999999}', "station.json", "64 bits"),
        (b'{"officer": 12345678901}', "station.json", None),  # ordinary numbers still work
    ],
    ids=[
        "int-5000-digits",
        "json-60000-deep",
        "toml-20000-deep-arrays",
        "toml-20000-deep-tables",
        "json-duplicate-key",
        "toml-int-5000-digits",
        "json-nan",
        "json-inf",
        "json-int-beyond-64-bits",
        "json-ordinary-number",
    ],
)
def test_hostile_sidecar_is_a_sidecar_error(data: bytes, name: str, message: str | None) -> None:
    if message is None:
        assert parse_sidecar(data, name=name).officer == "12345678901"
        return
    with pytest.raises(SidecarError) as e:
        parse_sidecar(data, name=name)
    assert message in e.value.render() and name in e.value.render()


def test_toml_sidecar_duplicate_keys_refused() -> None:
    with pytest.raises(SidecarError, match="not valid TOML"):
        parse_sidecar(b'officer = "1"\nofficer = "2"\n', name="station.toml")


def test_sidecar_that_is_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "station.json"
    os.mkfifo(fifo)
    with pytest.raises(SidecarError, match="not a regular file"):
        read_sidecar(fifo)


def test_depth_limit_leaves_room_for_ordinary_sidecars() -> None:
    assert MAX_DEPTH >= 8
    d = parse_sidecar(b'{"officer": "1", "case": "[2026]{7}"}', name="station.json")
    assert d.case == "[2026]{7}"


def _age(path: Path, seconds: float = 60) -> None:
    t = time.time() - seconds
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(p, (t, t), follow_symlinks=False)


def test_rescan_holds_hostile_drops_and_takes_the_rest(vault: Vault, tmp_path: Path) -> None:
    """`station inbox rescan` with four hostile sidecars before a good drop: no traceback, each
    hostile drop held with its error file, the good drop ingested in the same pass (R5/R6)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    vault.settings_path.write_text(f'[inbox]\nfolders = ["{inbox}"]\nsettle_seconds = 0.5\n')
    hostile = {
        "a-bigint": ("station.json", BIG_INT_JSON),
        "b-deepjson": ("station.json", DEEP_JSON),
        "c-deeptoml": ("station.toml", DEEP_TOML),
        "d-dupkeys": ("station.json", DUP_JSON),
    }
    for i, (drop, (side, data)) in enumerate(hostile.items()):
        write_file(inbox / drop / f"CLIP{i}.WAV", f"audio {drop}".encode())
        (inbox / drop / side).write_bytes(data)
    good = write_file(inbox / "e-good" / "CLIP9.WAV", b"good audio")
    (inbox / "e-good" / "station.json").write_text(json.dumps({"officer": "100001"}))
    # a single-file drop with its sidecar beside it
    write_file(inbox / "f-single.WAV", b"single audio")
    (inbox / "f-single.WAV.station.json").write_bytes(DEEP_JSON)
    _age(inbox)
    env = {**os.environ, "STATION_HOME": str(vault.home), "STATION_USER": "clerk1"}
    subprocess.run([sys.executable, "-m", "station", "init"], env=env, check=True)
    res = subprocess.run(
        [sys.executable, "-m", "station", "inbox", "rescan", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    assert res.returncode == 0, res.stderr[-3000:]
    out = {p["name"]: p for p in json.loads(res.stdout)["processed"]}
    for drop in hostile:
        assert out[drop]["state"] == "held", out[drop]
        err = (inbox / drop / "station-error.txt").read_text(encoding="utf-8")
        assert "station." in err and "原因 / reason" in err
    assert out["f-single.WAV"]["state"] == "held"
    assert (inbox / "f-single.WAV.station-error.txt").exists()
    assert "given twice" in (inbox / "d-dupkeys" / "station-error.txt").read_text()
    assert out["e-good"]["state"] == "done"
    listed = subprocess.run(
        [sys.executable, "-m", "station", "recordings", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert good in {r["sha256"] for r in json.loads(listed.stdout)}
