"""Shared fixtures. Tests never read the developer's real environment: every test gets its own
station home in a temporary folder, and STATION_HOME points there."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils
from fleet_engines import ceph, postgres  # noqa: F401 (session engines of the fleet tests)

from station.catalog import open_catalog
from station.config import Settings
from station.vault import Vault

#: Fixtures that need root (loop devices, mounts, device nodes, acting as another user): a test
#: using one is marked ``root`` at collection, like a test marked by hand.
ROOT_FIXTURES = frozenset({"small_vault", "small_disk", "small_archival", "udev_station"})


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that needs root carries the ``root`` marker (so ``-m root`` and
    ``-m "not root"`` select exactly them); without root such a test is skipped, saying why."""
    for item in items:
        if ROOT_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.root)
        if item.get_closest_marker("root") is not None and os.geteuid() != 0:
            item.add_marker(pytest.mark.skip(reason="needs root (marker root)"))


@pytest.fixture
def vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Vault:
    home = tmp_path / "home"
    monkeypatch.setenv("STATION_HOME", str(home))
    monkeypatch.setenv("STATION_USER", "tester")
    v = Vault(home)
    v.init()
    return v


@pytest.fixture
def db(vault: Vault) -> Iterator[sqlite_utils.Database]:
    database = open_catalog(vault.catalog_path)
    yield database
    database.close()


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def sim_clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated recorder volume made once per test run (real H.264/AAC clips)."""
    from station.sim.volume import make_volume

    root = tmp_path_factory.mktemp("simvol")
    make_volume(
        root, device="DSJ0001", officer="100001", clips=3, seconds=1.0, size="160x120", important=1
    )
    return root


@pytest.fixture
def volume(tmp_path: Path, sim_clips: Path) -> Path:
    """A fresh copy of the simulated volume, owned by one test."""
    import shutil

    dst = tmp_path / "volume"
    shutil.copytree(sim_clips, dst)
    return dst


@pytest.fixture(autouse=True)
def _own_runtime_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Login tickets live in the user's runtime folder: each test gets its own, never the
    developer's."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("xdg-runtime")))
    monkeypatch.delenv("STATION_SERVICE", raising=False)


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """structlog's configuration is global: a CLI test that set 'warning' must not hide the
    info events the next test looks for."""
    import structlog

    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture
def small_vault(tmp_path: Path) -> Iterator[Vault]:
    """A vault on a real 24 MiB ext4 file system on a loop device: a real "disk full"."""
    import os
    import shutil
    import subprocess

    if os.geteuid() != 0 or shutil.which("losetup") is None:
        pytest.skip("needs root for a loop device")
    img = tmp_path / "vault.img"
    with open(img, "wb") as f:
        f.truncate(24 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(img)], check=True)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    loop = subprocess.run(
        ["losetup", "-f", "--show", str(img)], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        subprocess.run(["mount", loop, str(mnt)], check=True)
        v = Vault(mnt / "home")
        v.init()
        yield v
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
        subprocess.run(["losetup", "-d", loop], check=False)
