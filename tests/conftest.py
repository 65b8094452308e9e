"""Shared fixtures. Tests never read the developer's real environment: every test gets its own
station home in a temporary folder, and STATION_HOME points there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from station.catalog import open_catalog
from station.config import Settings
from station.vault import Vault


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
