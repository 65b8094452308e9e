"""``station verify`` alongside the real retention executor (R9, R7): footage pending purge (left
in place, read-only, for the grace period) and footage purged with a tombstone are not reported
as missing or unknown — but a pending file that is changed still is."""

from __future__ import annotations

import datetime as dt
import os

import sqlite_utils
from helpers_retention import approve_all

from station.audit import checkpoint
from station.cases import tags
from station.config import Settings
from station.retention import executor
from station.vault import Vault
from station.verify import run_verify
from tests.integrity_support import store_derivative, store_recording

LATER = dt.datetime(2027, 6, 1, tzinfo=dt.UTC)


def pend(vault: Vault, db: sqlite_utils.Database) -> dict:  # type: ignore[type-arg]
    settings = Settings()
    rec = store_recording(vault, db, os.urandom(4000))
    store_derivative(vault, db, rec, os.urandom(3000))
    tags.tag(db, [rec["sha256"]], category="patrol", actor="clerk")  # R9: known routine
    checkpoint.make_checkpoint(vault, db, settings)
    executor.run(vault, db, settings, now=LATER, actor="sup", wall_now=LATER)
    assert approve_all(vault, db, settings, LATER) == [rec["sha256"]]
    return rec


def test_pending_then_purged_footage_verifies_clean(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    rec = pend(vault, db)
    assert (vault.home / rec["vault_path"]).is_file()  # kept in place through the grace period
    clean = run_verify(vault, db, Settings())
    assert clean.findings == [] and clean.files_checked == 2
    after = LATER + dt.timedelta(days=8)
    rep = executor.run(vault, db, Settings(), now=after, actor="sup", wall_now=after)
    assert rep.purged == [rec["sha256"]]
    purged = run_verify(vault, db, Settings())
    assert purged.findings == [] and purged.files_checked == 0


def test_changed_parked_original_is_found(vault: Vault, db: sqlite_utils.Database) -> None:
    rec = pend(vault, db)
    parked = vault.home / rec["vault_path"]
    os.chmod(parked, 0o644)
    parked.write_bytes(b"changed while waiting for purge")
    os.chmod(parked, 0o444)
    found = run_verify(vault, db, Settings())
    assert [(f.code, f.where) for f in found.findings] == [("file.changed", str(parked))]
