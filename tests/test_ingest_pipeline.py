"""The ingest stages joined one after the other (tests) or in two threads (production):
``station.ingest.pipeline.run_stages``, and the engine giving the same result both ways."""

from __future__ import annotations

import os
import threading
from collections.abc import Generator
from pathlib import Path

import pytest
import sqlite_utils

from station.catalog import open_catalog
from station.config import Settings
from station.errors import VolumeGoneError
from station.hashing.copy import open_source
from station.hashing.faults import FailingReader
from station.ingest import IngestContext, ingest_volume
from station.ingest.pipeline import run_stages
from station.vault import Vault


def numbers(n: int, log: list[str], fail_at: int | None = None) -> Generator[int, None, None]:
    try:
        for i in range(n):
            if i == fail_at:
                raise OSError(f"producer failed at {i}")
            log.append(f"made {i}")
            yield i
    finally:
        log.append("closed")


def test_sequential_interleaves_one_item_at_a_time() -> None:
    log: list[str] = []
    err = run_stages(numbers(3, log), lambda i: log.append(f"used {i}"), log.append, threaded=False)
    assert err == (None, None)
    assert log == ["made 0", "used 0", "made 1", "used 1", "made 2", "used 2", "closed"]


def test_threaded_consumes_everything_in_order_on_another_thread() -> None:
    log: list[str] = []
    used: list[tuple[int, str]] = []
    err = run_stages(
        numbers(50, log),
        lambda i: used.append((i, threading.current_thread().name)),
        log.append,
        threaded=True,
    )
    assert err == (None, None)
    assert [i for i, _ in used] == list(range(50))
    assert {name for _, name in used} == {"ingest-commit"}
    assert log[-1] == "closed"


@pytest.mark.parametrize("threaded", [False, True], ids=["sequential", "threaded"])
def test_a_failing_consumer_stops_production_and_nothing_is_lost(threaded: bool) -> None:
    log: list[str] = []
    used: list[int] = []
    discarded: list[int] = []

    def consume(i: int) -> None:
        if i == 3:
            raise RuntimeError("vault gone")
        used.append(i)

    produced, consumed = run_stages(numbers(100, log), consume, discarded.append, threaded=threaded)
    assert produced is None and isinstance(consumed, RuntimeError)
    made = [int(e.split()[1]) for e in log if e.startswith("made")]
    assert used == [0, 1, 2] and log[-1] == "closed"
    # every item made was used, failed (3, cleaned by the consumer) or discarded
    assert sorted([*used, 3, *discarded]) == made
    assert len(made) < 100  # production stopped
    if not threaded:
        assert discarded == [] and made == [0, 1, 2, 3]


@pytest.mark.parametrize("threaded", [False, True], ids=["sequential", "threaded"])
def test_a_failing_producer_hands_over_what_it_made(threaded: bool) -> None:
    log: list[str] = []
    used: list[int] = []
    produced, consumed = run_stages(
        numbers(10, log, fail_at=4), used.append, log.append, threaded=threaded
    )
    assert isinstance(produced, OSError) and consumed is None
    assert used == [0, 1, 2, 3]


def _outcomes(vault: Vault, volume: Path, threaded: bool, opener=open_source):  # type: ignore[no-untyped-def]
    vault.init()
    db: sqlite_utils.Database = open_catalog(vault.catalog_path)
    try:
        settings = Settings()
        settings.ingest.chunk_kib = 64
        try:
            rep = ingest_volume(
                vault,
                db,
                settings,
                volume,
                IngestContext(kind="cli"),
                actor="t",
                opener=opener,
                threaded=threaded,
            )
        except VolumeGoneError as exc:
            rep = exc.report  # type: ignore[attr-defined]
        rows = db.execute("select count(*) from recordings").fetchone()[0]
        return (
            sorted((f.rel, f.outcome, f.sha256, f.verified) for f in rep.files),
            rep.aborted,
            rows,
            list(vault.staging.iterdir()),
        )
    finally:
        db.close()


def test_the_engine_gives_the_same_result_both_ways(tmp_path: Path, volume: Path) -> None:
    (volume / "BAD.MP4").write_bytes(os.urandom(300_000))

    def opener(p: Path):  # type: ignore[no-untyped-def]
        inner = open_source(p)
        return FailingReader(inner, "rE", str(p)) if p.name == "BAD.MP4" else inner

    seq = _outcomes(Vault(tmp_path / "a"), volume, False, opener)
    thr = _outcomes(Vault(tmp_path / "b"), volume, True, opener)
    assert seq == thr
    files, aborted, rows, staging = seq
    assert aborted is None and staging == []
    assert ("BAD.MP4", "failed", None, False) in files
    assert rows == sum(1 for f in files if f[1] == "new") >= 3


def test_volume_gone_sequentially_keeps_what_was_verified(tmp_path: Path, volume: Path) -> None:
    names = sorted(p.name for p in volume.rglob("*") if p.is_file())

    def opener(p: Path):  # type: ignore[no-untyped-def]
        pattern = "V" if p.name == names[1] else "r"
        return FailingReader(open_source(p), pattern, str(p))

    files, aborted, rows, staging = _outcomes(Vault(tmp_path / "a"), volume, False, opener)
    assert aborted == "volume gone" and staging == []
    assert [f[0].rsplit("/", 1)[-1] for f in files if f[3]] == names[:1]
    assert rows == 1
