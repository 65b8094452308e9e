"""End to end on real footage: clips made by ffmpeg on a simulated recorder volume, stored by
the real ingest engine, expired by the retention executor (R9), kept by a case (R10) — and
``station verify`` finds nothing wrong before, during the grace period, or after the purge (R7)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlite_utils
from helpers_retention import approve_all

from station.audit import checkpoint
from station.cases import store, tags
from station.config import Settings
from station.ingest import IngestContext, ingest_volume
from station.retention import executor
from station.vault import Vault
from station.verify import run_verify


def test_ingested_footage_expires_cleanly(
    vault: Vault, db: sqlite_utils.Database, settings: Settings, volume: Path
) -> None:
    report = ingest_volume(
        vault, db, settings, volume, IngestContext(kind="cli", drift_s=0.5), actor="dock"
    )
    assert report.count("new") == 3
    rows = list(db.query("select sha256, vault_path from recordings order by sequence"))
    kept = rows[0]["sha256"]
    store.create_case(db, "城管罚字 2026 第 1 号", name="占道经营", actor="clerk")
    store.link(db, "城管罚字 2026 第 1 号", [kept], actor="clerk")
    # R9: only footage classified as routine expires; ingest leaves it unclassified.
    tags.tag(db, [r["sha256"] for r in rows[1:]], category="patrol", actor="clerk")
    checkpoint.make_checkpoint(vault, db, settings)
    assert run_verify(vault, db, settings).findings == []

    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=200)  # past R9's six months
    dry = executor.run(vault, db, settings, now=later, actor="sup", dry_run=True)
    assert sorted(i.sha256 for i in dry.pend) == sorted(r["sha256"] for r in rows[1:])
    executor.run(vault, db, settings, now=later, actor="sup", wall_now=later)
    assert sorted(approve_all(vault, db, settings, later)) == sorted(r["sha256"] for r in rows[1:])
    # During the grace period the files are still checked, and still intact.
    during = run_verify(vault, db, settings)
    assert during.findings == [] and during.files_checked == 3

    purge_day = later + dt.timedelta(days=settings.retention.grace_days)
    rep = executor.run(vault, db, settings, now=purge_day, actor="sup", wall_now=purge_day)
    assert sorted(rep.purged) == sorted(r["sha256"] for r in rows[1:]) and rep.problems == []
    for r in rows[1:]:
        assert not (vault.home / r["vault_path"]).exists()
        tomb = db["tombstones"].get(r["sha256"])
        assert tomb["rule"] == "R9" and tomb["purged_by"] == "sup"
        assert tomb["approved_by"] == "boss"
    assert (vault.home / rows[0]["vault_path"]).is_file()  # case footage never goes (R10)
    checkpoint.make_checkpoint(vault, db, settings)
    after = run_verify(vault, db, Settings())
    assert after.findings == [] and after.files_checked == 1
