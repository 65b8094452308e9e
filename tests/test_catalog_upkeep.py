"""Catalog upkeep for installs and upgrades, on real SQLite files: the online backup, all pending
migrations in one transaction (a failure changes nothing and names the backup), ``station
catalog``, ``station verify --quick`` (R7: no re-hash, but a missing or resized file is found),
and the vault disk's low-space warning and alert."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from station.audit import checkpoint
from station.audit.tree import check_chain
from station.catalog import maintenance, migrations, open_catalog, write_txn
from station.cli import main
from station.config import Settings
from station.errors import CatalogError
from station.vault import Vault
from station.verify.run import record_verify, run_verify, verify_due
from tests.integrity_support import store_recording


def _schema(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as c:
        return c.execute("select name, sql from sqlite_master order by name").fetchall()


def _extra(*migs: migrations.Migration) -> list[migrations.Migration]:
    return [*migrations.discover(), *migs]


def _table(name: str) -> migrations.Migration:
    def up(db: sqlite_utils.Database) -> None:
        db.execute(f"create table {name} (x integer)")
        db.execute(f"insert into {name} values (1)")

    return migrations.Migration(9000 + len(name), name, up)


def test_backup_is_a_consistent_checked_copy(vault: Vault, db: sqlite_utils.Database) -> None:
    rows = [store_recording(vault, db, os.urandom(1000 + i), seq=i) for i in range(1, 4)]
    # a writer holding an open transaction does not leak into the copy
    db.conn.execute("BEGIN IMMEDIATE")
    db.execute("insert into units (unit_id, name) values ('u-uncommitted', 'x')")
    out = maintenance.backup(vault.catalog_path, vault.home / "backups", reason="test")
    db.conn.execute("ROLLBACK")
    assert out.parent == vault.home / "backups" and out.name.endswith("-test.sqlite")
    assert oct(out.stat().st_mode & 0o777) == "0o440"
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temp file left
    with sqlite3.connect(f"file:{out}?mode=ro", uri=True) as c:
        assert c.execute("pragma integrity_check").fetchone()[0] == "ok"
        assert c.execute("pragma journal_mode").fetchone()[0] == "delete"
        shas = {r[0] for r in c.execute("select sha256 from recordings")}
        assert shas == {r["sha256"] for r in rows}
        assert (
            c.execute("select count(*) from units where unit_id = 'u-uncommitted'").fetchone()[0]
            == 0
        )
    # only the newest `keep` stay
    for _ in range(3):
        maintenance.backup(vault.catalog_path, vault.home / "backups", keep=2)
    assert len(list((vault.home / "backups").glob("catalog-*.sqlite"))) == 2


def test_migrate_backs_up_then_applies_all_in_one_transaction(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    store_recording(vault, db, b"evidence" * 100, seq=1)
    db.close()
    extra = _extra(_table("aa"), _table("bbb"))
    result = maintenance.migrate(
        vault.catalog_path, vault.home / "backups", available=extra, actor="pkg"
    )
    assert result.applied == ["9002_aa", "9003_bbb"]
    assert result.backup is not None and "before-m9002" in result.backup.name
    assert "aa" not in dict(_schema(result.backup))  # the backup is the old schema
    db2 = open_catalog(vault.catalog_path, migrate=False)
    assert {9002, 9003} <= migrations.applied(db2)
    entry = db2.execute(
        "select actor, data from audit_log where event = 'catalog.migrated'"
    ).fetchone()
    assert entry[0] == "pkg" and json.loads(entry[1])["applied"] == ["9002_aa", "9003_bbb"]
    assert check_chain(db2).problems == []
    # nothing pending: no new backup
    again = maintenance.migrate(vault.catalog_path, vault.home / "backups", available=extra)
    assert again.applied == [] and again.backup is None
    db2.close()


def test_failed_migration_changes_nothing_and_names_the_backup(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    store_recording(vault, db, b"evidence" * 100, seq=1)
    db.close()
    before = _schema(vault.catalog_path)

    def bad(d: sqlite_utils.Database) -> None:
        d.execute("create table half_done (x)")
        raise sqlite3.OperationalError("no such column: imaginary")

    extra = _extra(_table("good"), migrations.Migration(9100, "bad", bad))
    with pytest.raises(CatalogError) as err:
        maintenance.migrate(vault.catalog_path, vault.home / "backups", available=extra)
    text = err.value.render()
    assert "9100_bad" in text and "nothing was changed" in text and "数据库迁移失败" in text
    saved = next((vault.home / "backups").glob("catalog-*-before-m9004.sqlite"))
    assert str(saved) in text
    # the earlier migration of the same run was rolled back too
    assert _schema(vault.catalog_path) == before
    db2 = open_catalog(vault.catalog_path, migrate=False)
    assert not {9004, 9100} & migrations.applied(db2)
    db2.close()


def test_parallel_openers_apply_migrations_once(vault: Vault) -> None:
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            open_catalog(vault.catalog_path).close()
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with sqlite3.connect(vault.catalog_path) as c:
        numbers = [r[0] for r in c.execute("select number from _migrations order by number")]
    assert numbers == [m.number for m in migrations.discover()]


def test_catalog_cli(vault: Vault, db: sqlite_utils.Database) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["catalog", "migrate", "--check", "--json"])
    assert res.exit_code == 0 and json.loads(res.output) == {"pending": []}
    res = runner.invoke(main, ["catalog", "migrate"])
    assert res.exit_code == 0 and "up to date" in res.output
    res = runner.invoke(main, ["catalog", "backup", "--json"])
    assert res.exit_code == 0, res.output
    assert Path(json.loads(res.output)["backup"]).exists()
    res = runner.invoke(main, ["--home", str(vault.home / "nowhere"), "catalog", "backup"])
    assert res.exit_code != 0 and "station init" in res.output


def test_verify_quick_finds_missing_and_resized_files_without_rehashing(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    rows = [store_recording(vault, db, os.urandom(4000 + i), seq=i) for i in range(1, 4)]
    checkpoint.make_checkpoint(vault, db, Settings())
    clean = run_verify(vault, db, Settings(), quick=True)
    assert clean.ok and clean.findings == [] and clean.mode == "quick"
    assert clean.files_checked == 0 and clean.files_total == 3  # nothing re-read
    # a same-size bit flip: only a full verify, which re-reads, finds it
    flipped = vault.home / rows[0]["vault_path"]
    os.chmod(flipped, 0o644)
    data = bytearray(flipped.read_bytes())
    data[10] ^= 0xFF
    flipped.write_bytes(bytes(data))
    os.chmod(flipped, 0o444)
    assert run_verify(vault, db, Settings(), quick=True).ok
    assert "file.changed" in {f.code for f in run_verify(vault, db, Settings()).findings}
    # missing and resized files are found by the quick one
    (vault.home / rows[1]["vault_path"]).unlink()
    resized = vault.home / rows[2]["vault_path"]
    os.chmod(resized, 0o644)
    with open(resized, "ab") as f:
        f.write(b"x")
    os.chmod(resized, 0o444)
    quick = run_verify(vault, db, Settings(), quick=True)
    assert sorted(f.code for f in quick.findings) == ["file.changed", "file.missing"]
    res = CliRunner().invoke(main, ["verify", "--quick", "--json"])
    assert res.exit_code == 9 and json.loads(res.stdout)["mode"] == "quick"


def test_quick_verify_does_not_stand_in_for_the_periodic_full_one(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    import datetime as dt

    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    record_verify(db, run_verify(vault, db, Settings(), quick=True), actor="t", now=now)
    assert verify_due(db, Settings(), now)
    record_verify(db, run_verify(vault, db, Settings()), actor="t", now=now)
    assert not verify_due(db, Settings(), now)


def test_low_space_warning_and_one_open_alert(vault: Vault, db: sqlite_utils.Database) -> None:
    from station.diskspace import ALERT_CODE, vault_space
    from station.usb_dock import registry
    from station.usb_dock.cli import _space_watch

    (vault.home / "station.toml").write_text("[vault]\nlow_space_percent = 99.99\n")
    settings = vault.settings()
    space = vault_space(vault.home, settings)
    assert space.low and 0 <= space.free_percent < 99.99  # any real disk is below 99.99 % free
    assert not vault_space(vault.home, Settings()).low or space.free_percent < 10
    watch = _space_watch(vault, settings)
    watch.check_once()
    watch.check_once()
    alerts = [a for a in registry.list_alerts(db) if a["code"] == ALERT_CODE]
    assert len(alerts) == 1 and "存储空间不足" in alerts[0]["message"]
    registry.acknowledge(db, alerts[0]["id"], actor="sup")
    watch.check_once()  # still low after the acknowledgement: a new alert
    assert len([a for a in registry.list_alerts(db) if a["code"] == ALERT_CODE]) == 1
    assert (
        db.execute("select count(*) from audit_log where event = 'alert.raised'").fetchone()[0] == 2
    )
    # `station status` warns even with no daemon running
    res = CliRunner().invoke(main, ["status"])
    assert "vault disk low" in res.output and "守护进程未运行" in res.output
    # the threshold is checked
    (vault.home / "station.toml").write_text("[vault]\nlow_space_percent = 100\n")
    res = CliRunner().invoke(main, ["config", "check"])
    assert res.exit_code == 3 and "vault.low_space_percent" in res.output


def test_migrations_share_one_write_transaction(vault: Vault) -> None:
    """Applying inside a caller's transaction nests (savepoint), never commits early."""
    db = open_catalog(vault.catalog_path)
    with pytest.raises(RuntimeError), write_txn(db):
        migrations.apply(db, _extra(_table("nested")))
        raise RuntimeError("caller fails after")
    assert "nested" not in db.table_names()
    db.close()


def test_config_set_validates_keeps_comments_and_audits(
    vault: Vault, db: sqlite_utils.Database
) -> None:
    (vault.home / "station.toml").write_text(
        "# 本站配置 / this station\n[dock]\nmax_sessions = 4\n"
    )
    runner = CliRunner()
    res = runner.invoke(
        main,
        [
            "config",
            "set",
            "station.unit_name=某县城市管理局",
            "station.unit_id=110101000001",
            "vault.low_space_percent=15",
        ],
    )
    assert res.exit_code == 0, res.output
    text = (vault.home / "station.toml").read_text()
    assert text.startswith("# 本站配置 / this station\n") and "max_sessions = 4" in text
    settings = vault.settings()
    assert settings.station.unit_name == "某县城市管理局"
    assert settings.station.unit_id == "110101000001"  # digits kept as text, not a number
    assert settings.vault.low_space_percent == 15.0
    entry = db.execute("select data from audit_log where event = 'settings.changed'").fetchone()
    changes = json.loads(entry[0])["changes"]
    assert changes["station.unit_name"] == [None, "某县城市管理局"]
    # refused: unknown key, wrong type, out of range — the file stays as it was
    for bad in ("station.unit_nam=x", "dock.max_sessions=many", "vault.low_space_percent=0"):
        res = runner.invoke(main, ["config", "set", bad])
        assert res.exit_code == 3, (bad, res.output)
        assert (vault.home / "station.toml").read_text() == text
    # station.id names the audit log and its key: fixed once a checkpoint is signed
    assert runner.invoke(main, ["config", "set", "station.id=ZFZ-01"]).exit_code == 0
    checkpoint.make_checkpoint(vault, db, vault.settings())
    res = runner.invoke(main, ["config", "set", "station.id=ZFZ-02"])
    assert res.exit_code == 3 and "station.id" in res.output
    assert vault.settings().station.id == "ZFZ-01"
    res = runner.invoke(main, ["config", "set", "nodot=1"])
    assert res.exit_code == 2 and "SECTION.KEY=VALUE" in res.output
