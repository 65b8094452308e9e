"""Fleet parts that need no store or database: settings, the lock decision, the secret file,
the ETag rule, the queues the catalog triggers fill (R19)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
from pathlib import Path

import pytest
from fleet_support import cli, ingest

from station.catalog import open_catalog, write_txn
from station.config import parse_settings
from station.errors import ConfigError
from station.fleet.locks import MIN_LOCK, RENEW_BEFORE, ROLLING, lock_for
from station.fleet.store import PART_SIZE, Throttle, expected_etag, read_secret
from station.fleet.sync import enable
from station.retention.policy import Decision
from station.vault import Vault

NOW = dt.datetime(2026, 12, 1, 8, 0, 0, 250000, tzinfo=dt.UTC)


def test_fleet_settings_checked() -> None:
    s = parse_settings({})
    assert s.fleet.s3_endpoint == "" and s.fleet.free_local_after_days is None
    ok = {
        "s3_endpoint": "http://127.0.0.1:9000",
        "bucket": "evidence",
        "access_key": "AK",
        "secret_key_file": "/etc/station/s3.secret",
        "bandwidth_mbps": 50,
        "free_local_after_days": 30,
    }
    s = parse_settings({"fleet": ok})
    assert s.fleet.bandwidth_mbps == 50.0 and s.fleet.free_local_after_days == 30
    bad = [
        ({**ok, "bucket": ""}, "fleet.bucket"),
        ({**ok, "secret_key_file": "s3.secret"}, "fleet.secret_key_file"),
        ({**ok, "s3_endpoint": "ftp://x"}, "fleet.s3_endpoint"),
        ({**ok, "bandwidth_mbps": 0}, "fleet.bandwidth_mbps"),
        ({**ok, "free_local_after_days": -1}, "fleet.free_local_after_days"),
        ({**ok, "secret_key": "inline"}, "fleet.secret_key"),
    ]
    for data, where in bad:
        with pytest.raises(ConfigError) as err:
            parse_settings({"fleet": data})
        assert where in str(err.value)


def test_secret_key_file_must_be_private(tmp_path: Path) -> None:
    f = tmp_path / "s3.secret"
    f.write_text("sekret\n")
    os.chmod(f, 0o644)
    with pytest.raises(ConfigError) as err:
        read_secret(str(f))
    assert "0644" in str(err.value) and "chmod 600" in str(err.value)
    os.chmod(f, 0o600)
    assert read_secret(str(f)) == "sekret"
    with pytest.raises(ConfigError):
        read_secret(str(tmp_path / "missing"))


def _decision(until: dt.datetime | None, rule: str = "R9") -> Decision:
    return Decision("a" * 64, until, rule, "why", bool(until and until <= NOW))


@pytest.mark.parametrize(
    ("until", "held", "want_until", "want_renew"),
    [
        # a dated rule: its date, rounded up to the second (the store keeps whole seconds)
        (
            NOW + dt.timedelta(days=180),
            False,
            NOW.replace(microsecond=0) + dt.timedelta(days=180, seconds=1),
            None,
        ),
        # no end (open case, R11, hold): rolling, renewed half way
        (None, True, NOW.replace(microsecond=0) + ROLLING + dt.timedelta(seconds=1), "renew"),
        # already expired: still locked for the minimum
        (
            NOW - dt.timedelta(days=3),
            False,
            NOW.replace(microsecond=0) + MIN_LOCK + dt.timedelta(seconds=1),
            None,
        ),
    ],
)
def test_lock_for_table(
    until: dt.datetime | None, held: bool, want_until: dt.datetime, want_renew: str | None
) -> None:
    lock = lock_for(_decision(until), held, NOW)
    assert lock.retain_until == want_until
    assert lock.legal_hold is held
    if want_renew:
        assert lock.renew_at == NOW + ROLLING - RENEW_BEFORE
    else:
        assert lock.renew_at is None
    assert lock_for(None, False, NOW).rule == "checkpoint"


def test_throttle_spaces_bytes_at_the_rate() -> None:
    stop = threading.Event()
    stop.set()  # never actually sleep here: only the schedule is checked
    t = Throttle(1000.0, stop)
    start = t._next
    t.take(500)
    t.take(1500)
    assert t._next - start >= 2.0 - 1e-6
    Throttle(None).take(10**9)  # no cap: returns at once


def test_expected_etag_single_and_multipart(tmp_path: Path) -> None:
    small = tmp_path / "s"
    small.write_bytes(b"x" * 1000)
    assert expected_etag(small) == hashlib.md5(b"x" * 1000).hexdigest()
    big = tmp_path / "b"
    data = os.urandom(PART_SIZE + 10)
    big.write_bytes(data)
    parts = [hashlib.md5(data[:PART_SIZE]).digest(), hashlib.md5(data[PART_SIZE:]).digest()]
    assert expected_etag(big) == hashlib.md5(b"".join(parts)).hexdigest() + "-2"


def test_queues_filled_in_the_same_transaction(vault: Vault, volume: Path, tmp_path: Path) -> None:
    assert cli(vault, "init")[0] == 0
    shas = ingest(vault, volume)
    db = open_catalog(vault.catalog_path)
    # Not enabled: nothing queued, nothing in the outbox (a station without a central store).
    assert db.execute("select count(*) from fleet_objects").fetchone()[0] == 0
    assert db.execute("select count(*) from fleet_outbox").fetchone()[0] == 0
    # A store only: objects queued, no outbox (nothing would ever drain it).
    assert enable(db, "tester", store=True, central=False) is True
    assert db.execute("select count(*) from fleet_outbox").fetchone()[0] == 0
    assert enable(db, "tester") is True  # and now the central database
    assert enable(db, "tester") is False
    queued = [r[0] for r in db.execute("select recording from fleet_objects order by recording")]
    assert queued == shas
    seqs = [
        json.loads(r[0])[0]
        for r in db.execute("select pk from fleet_outbox where tbl = 'audit_log' order by id")
    ]
    assert (
        seqs == sorted(seqs)
        and seqs[-1] == db.execute("select max(seq) from audit_log").fetchone()[0]
    )
    with write_txn(db):
        db.execute("update fleet_objects set lock_dirty = 0")
    db.close()
    # A case link flags the linked recording's object for a new lock decision.
    assert cli(vault, "cases", "create", "C-1", "--name", "案")[0] == 0
    assert cli(vault, "cases", "link", "C-1", shas[0])[0] == 0
    db = open_catalog(vault.catalog_path)
    dirty = [r[0] for r in db.execute("select recording from fleet_objects where lock_dirty = 1")]
    assert dirty == [shas[0]]
    # New footage after enabling is queued by the trigger, with its audit entry in the outbox.
    before = db.execute("select max(id) from fleet_outbox").fetchone()[0]
    db.close()
    extra = tmp_path / "more"
    extra.mkdir()
    (extra / "DSJ0001_100001_20261201090000_0009.MP4").write_bytes(b"new clip bytes")
    (new,) = ingest(vault, extra)
    db = open_catalog(vault.catalog_path)
    assert db.execute("select state from fleet_objects where recording = ?", [new]).fetchone()
    tbls = {r[0] for r in db.execute("select tbl from fleet_outbox where id > ?", [before])}
    assert {"recordings", "audit_log", "sessions", "fleet_objects"} <= tbls
    db.close()


def test_commands_without_a_central_store(vault: Vault) -> None:
    assert cli(vault, "init")[0] == 0
    code, out, _ = cli(vault, "fleet", "status", "--json")
    assert code == 0 and json.loads(out)["enabled"] is False
    code, out, _ = cli(vault, "fleet", "status")
    assert code == 0 and "未配置中心存储 / no central store configured" in out
    code, _, err = cli(vault, "fleet", "sync")
    assert code == 17 and "no central store or database configured" in err
    code, _, err = cli(vault, "fleet", "fetch", "a" * 64)
    assert code == 5 and "no confirmed central copy" in err


def test_sync_and_fetch_need_a_supervisor(vault: Vault) -> None:
    from click.testing import CliRunner

    from station.access.users import create_user
    from station.cli import main

    assert cli(vault, "init")[0] == 0
    db = open_catalog(vault.catalog_path)
    with write_txn(db):
        create_user(db, "admin1", "admin", "admin-pass-1", actor="setup")
        create_user(db, "li", "clerk", "clerk-pass-1", actor="admin1")
    db.close()
    env = {"STATION_USER": "li", "STATION_PASSWORD": "clerk-pass-1"}
    for args in (["fleet", "sync"], ["fleet", "fetch", "a" * 64]):
        res = CliRunner().invoke(main, ["--home", str(vault.home), *args], env=env)
        assert res.exit_code == 10, res.output


def test_kiosk_shows_how_far_behind_the_central_copy_is() -> None:
    from station.web.feed import RateMeter, kiosk_view

    status = {
        "pid": os.getpid(),
        "state": "ready",
        "slots": [],
        "services": {
            "fleet": {
                "queued": 3,
                "queued_bytes": 5000,
                "lag_s": 90.0,
                "outbox": 2,
                "last_error": "无法连接中心对象存储 / the central store is unreachable",
            }
        },
    }
    view = kiosk_view(status, None, RateMeter(), now=1.0)
    assert view["fleet"] == {
        "queued": 3,
        "queued_bytes": 5000,
        "lag_s": 90.0,
        "outbox": 2,
        "error": True,
    }
    assert kiosk_view({**status, "services": {}}, None, RateMeter(), now=1.0)["fleet"] is None
