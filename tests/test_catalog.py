import sqlite3

import pytest
import sqlite_utils

from station.audit import GENESIS, append, entry_hash
from station.audit.log import entry_body
from station.catalog import migrations, open_catalog, write_txn
from station.errors import CatalogError
from station.vault import Vault


def test_migrations_numbered_and_idempotent(vault: Vault) -> None:
    db = open_catalog(vault.catalog_path)
    numbers = [r["number"] for r in db.query("select number from _migrations order by number")]
    assert numbers == [m.number for m in migrations.discover()]
    assert migrations.apply(db) == []  # nothing left to do
    assert db.execute("pragma journal_mode").fetchone()[0] == "wal"


def _schema(db: sqlite_utils.Database) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in db.execute("select name, sql from sqlite_master order by name")]


def test_failed_migration_leaves_catalog_unchanged(tmp_path) -> None:
    """migrations.apply runs every pending migration in one transaction: when the last one
    fails, the ones before it (which succeeded) are rolled back too, with their _migrations
    rows, and the catalog keeps its old schema — for a new catalog and for an upgrade."""

    def good(d: sqlite_utils.Database) -> None:
        d.execute("create table upgraded (x)")
        d.execute("alter table recordings add column upgraded_note text")

    def bad(d: sqlite_utils.Database) -> None:
        d.execute("create table half (x)")
        raise RuntimeError("boom")

    # an upgrade: the real catalog, then two new migrations of which the second fails
    db = open_catalog(tmp_path / "c.sqlite")
    before, done = _schema(db), migrations.applied(db)
    extra = [migrations.Migration(9998, "good", good), migrations.Migration(9999, "bad", bad)]
    with pytest.raises(CatalogError, match="9999_bad.*boom"):
        migrations.apply(db, [*migrations.discover(), *extra])
    assert _schema(db) == before and migrations.applied(db) == done
    assert not db.conn.in_transaction
    # a new catalog: all real migrations and the failing one — nothing but the bookkeeping table
    fresh = sqlite_utils.Database(tmp_path / "new.sqlite")
    with pytest.raises(CatalogError):
        migrations.apply(fresh, [*migrations.discover(), extra[1]])
    assert fresh.table_names() == ["_migrations"] and migrations.applied(fresh) == set()
    # the same list without the failing one applies, so the failure was the one migration
    assert [m.number for m in migrations.apply(db, [*migrations.discover(), extra[0]])] == [9998]
    assert "upgraded" in db.table_names()


def test_audit_chain_and_append_only(db: sqlite_utils.Database) -> None:
    with write_txn(db):
        s1 = append(db, "test.one", actor="a", subject="x", data={"k": "值"})
        s2 = append(db, "test.two", actor="b")
    rows = list(db.query("select * from audit_log order by seq"))
    assert [r["seq"] for r in rows] == [s1, s2] == [1, 2]
    assert rows[0]["prev_hash"] == GENESIS
    assert rows[1]["prev_hash"] == rows[0]["entry_hash"]
    body = entry_body(1, rows[0]["at"], "a", "test.one", "x", {"k": "值"}, GENESIS)
    assert rows[0]["entry_hash"] == entry_hash(body)
    # R7: the log refuses edits and removals.
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("update audit_log set actor = 'mallory' where seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("delete from audit_log where seq = 1")


def test_audit_outside_transaction_refused(db: sqlite_utils.Database) -> None:
    with pytest.raises(RuntimeError, match="write transaction"):
        append(db, "test.loose", actor="a")


def test_audit_rolls_back_with_the_change(db: sqlite_utils.Database) -> None:
    with pytest.raises(ValueError), write_txn(db):
        db.execute("insert into units (unit_id, name) values ('u1', 'U')")
        append(db, "unit.created", actor="a", subject="u1")
        raise ValueError("change failed")
    assert db.execute("select count(*) from audit_log").fetchone()[0] == 0
    assert db.execute("select count(*) from units").fetchone()[0] == 0


def _cached_pages(path) -> int:
    """Pages of ``path`` in the page cache, read by util-linux ``fincore`` (an independent
    reader of mincore(2))."""
    import subprocess

    out = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--raw", "--output", "RES", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out.split()[0]) // 4096


def test_read_ahead_brings_a_whole_catalog_scan_into_memory_first(tmp_path) -> None:
    """A command that reads the whole catalog (a retention plan, the compliance report) asks the
    kernel to read the catalog's file in the background first; never when the file is larger
    than its share of the memory available, and never for an in-memory catalog."""
    import os
    import time

    from station.catalog.db import read_ahead
    from station.transcode.fileops import fsync_file

    db = open_catalog(tmp_path / "catalog.sqlite")
    with write_txn(db):
        db.execute("create table filler (x blob)")
        db.conn.executemany("insert into filler values (randomblob(4000))", [()] * 2000)
    db.execute("pragma wal_checkpoint(truncate)")
    path = tmp_path / "catalog.sqlite"
    fsync_file(path)  # flushed, then dropped from the page cache
    pages = os.path.getsize(path) // 4096
    if _cached_pages(path) >= pages // 2:
        pytest.skip("the temporary folder's file system keeps its pages (tmpfs)")

    assert read_ahead(db, share_of_memory=1e-9) is False  # too large for its share: left alone
    assert read_ahead(db) is True
    deadline = time.monotonic() + 60  # a wait for the kernel's reads, not a speed check
    while _cached_pages(path) < pages * 0.9 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _cached_pages(path) >= pages * 0.9
    assert read_ahead(open_catalog(":memory:")) is False
