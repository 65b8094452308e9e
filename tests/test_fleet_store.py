"""Fleet replication against a real single-node Ceph (radosgw, S3 Object Lock) and a real
PostgreSQL, both brought up once for the session (tests/fleet_engines.py). R19."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from fleet_engines import Ceph, Postgres
from fleet_support import cli, configure, ingest, pg_rows, random_clip, s3, sync

from station.catalog import open_catalog
from station.fleet.store import PART_SIZE
from station.fleet.sync import Fleet
from station.timeutil import utcnow
from station.vault import Vault

pytestmark = pytest.mark.slow


def _objects(vault: Vault) -> list[dict]:
    db = open_catalog(vault.catalog_path)
    try:
        return [dict(r) for r in db.query("select * from fleet_objects order by key")]
    finally:
        db.close()


def _audit(vault: Vault, event: str) -> list[dict]:
    db = open_catalog(vault.catalog_path)
    try:
        return [dict(r) for r in db.query("select * from audit_log where event = ?", [event])]
    finally:
        db.close()


def _alerts(vault: Vault) -> set[str]:
    db = open_catalog(vault.catalog_path)
    try:
        return {r[0] for r in db.execute("select code from alerts where acknowledged_at is null")}
    finally:
        db.close()


@pytest.fixture
def station(
    vault: Vault, volume: Path, ceph: Ceph, postgres: Postgres, request: pytest.FixtureRequest
) -> tuple[Vault, str, str, list[str]]:
    """A station with the simulated recorder's clips ingested by the real engine, configured
    for its own bucket and its own central database."""
    dsn = postgres.create_db(f"t_{request.node.name[:40].lower()}_{time.monotonic_ns() % 10**6}")
    bucket = configure(vault, ceph, dsn)
    assert cli(vault, "init")[0] == 0
    shas = ingest(vault, volume)
    return vault, bucket, dsn, shas


def test_docked_session_replicated_and_confirmed(station, ceph: Ceph) -> None:
    vault, bucket, dsn, shas = station
    assert cli(vault, "checkpoint", "make")[0] == 0
    code, rep = sync(vault)
    assert code == 0, rep
    assert rep["bucket_created"] and rep["uploaded"] == 4 and rep["errors"] == []
    objs = {o["key"]: o for o in _objects(vault)}
    assert {o["state"] for o in objs.values()} == {"confirmed"}
    assert {o["kind"] for o in objs.values()} == {"original", "checkpoint"}
    client = s3(ceph)
    # The bucket was created with Object Lock; each original is there bit-exact, locked
    # COMPLIANCE until the station's retention decision (R9: six months from recording).
    lock = client.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    db = open_catalog(vault.catalog_path)
    for sha in shas:
        key = f"originals/{sha[:2]}/{sha}"
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == sha
        ret = client.get_object_retention(Bucket=bucket, Key=key)["Retention"]
        assert ret["Mode"] == "COMPLIANCE"
        recorded = db.execute("select recorded_at from recordings where sha256 = ?", [sha])
        rec_at = dt.datetime.fromisoformat(recorded.fetchone()[0])
        assert ret["RetainUntilDate"] >= rec_at + dt.timedelta(days=180)
        assert objs[key]["retain_until"] is not None
        head = client.head_object(Bucket=bucket, Key=key)
        assert head["Metadata"]["sha256"] == sha and head["Metadata"]["station"] == "STATION-T1"
    assert len(_audit(vault, "fleet.replicated")) == 4
    # The central catalog: this station's recordings, and its audit log entry by entry.
    central = {
        r[0]
        for r in pg_rows(dsn, "select sha256 from recordings where station_id = %s", ["STATION-T1"])
    }
    assert central == set(shas)
    local = [(r[0], r[1]) for r in db.execute("select seq, entry_hash from audit_log order by seq")]
    db.close()
    remote = pg_rows(
        dsn,
        "select seq, entry_hash from audit_log where station_id = %s order by seq",
        ["STATION-T1"],
    )
    assert [tuple(r) for r in remote] == local
    # A second pass has nothing to do.
    code, rep = sync(vault)
    assert code == 0 and rep["uploaded"] == 0 and rep["adopted"] == 0


def test_object_lock_refuses_delete_before_retention(station, ceph: Ceph) -> None:
    vault, bucket, _dsn, shas = station
    assert sync(vault)[0] == 0
    client = s3(ceph)
    key = f"originals/{shas[0][:2]}/{shas[0]}"
    version = client.head_object(Bucket=bucket, Key=key)["VersionId"]
    with pytest.raises(ClientError) as err:
        client.delete_object(Bucket=bucket, Key=key, VersionId=version)
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    with pytest.raises(ClientError):  # retention can not be shortened either
        client.put_object_retention(
            Bucket=bucket,
            Key=key,
            VersionId=version,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": soon},
        )
    assert (
        hashlib.sha256(client.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest()
        == shas[0]
    )


def test_case_link_extends_retention_and_hold_is_mirrored(station, ceph: Ceph) -> None:
    vault, bucket, _dsn, _shas = station
    # two routine recordings (R9: tagged so by a clerk; unclassified footage is kept without
    # end, like the IMP-marked clip)
    db = open_catalog(vault.catalog_path)
    shas = [r[0] for r in db.execute("select sha256 from recordings where important = 0")]
    db.close()
    assert len(shas) == 2
    assert cli(vault, "recordings", "tag", *shas, "--category", "patrol")[0] == 0
    assert sync(vault)[0] == 0
    client = s3(ceph)
    key = f"originals/{shas[0][:2]}/{shas[0]}"
    before = client.get_object_retention(Bucket=bucket, Key=key)["Retention"]["RetainUntilDate"]
    assert cli(vault, "cases", "create", "案-2026-001", "--name", "测试案件")[0] == 0
    assert cli(vault, "cases", "link", "案-2026-001", shas[0])[0] == 0
    code, rep = sync(vault)
    assert code == 0 and rep["locks_updated"] == 1, rep
    after = client.get_object_retention(Bucket=bucket, Key=key)["Retention"]["RetainUntilDate"]
    assert after > before + dt.timedelta(days=100)  # open case: kept on, never shortened
    assert len(_audit(vault, "fleet.lock_updated")) == 1
    # Legal hold: placed on the station → on the object; released → off.
    other = f"originals/{shas[1][:2]}/{shas[1]}"
    assert client.get_object_legal_hold(Bucket=bucket, Key=other)["LegalHold"]["Status"] == "OFF"
    assert cli(vault, "recordings", "hold", shas[1], "--reason", "复议 / review")[0] == 0
    assert sync(vault)[0] == 0
    assert client.get_object_legal_hold(Bucket=bucket, Key=other)["LegalHold"]["Status"] == "ON"
    assert cli(vault, "recordings", "release", shas[1])[0] == 0
    assert sync(vault)[0] == 0
    assert client.get_object_legal_hold(Bucket=bucket, Key=other)["LegalHold"]["Status"] == "OFF"
    # The case link's retention stays; nothing shortened it.
    again = client.get_object_retention(Bucket=bucket, Key=key)["Retention"]["RetainUntilDate"]
    assert again >= after


def test_wrong_key_is_refused_and_nothing_counted(vault: Vault, volume: Path, ceph: Ceph) -> None:
    configure(vault, ceph, None, secret="not-the-right-secret-key")
    assert cli(vault, "init")[0] == 0
    ingest(vault, volume)
    code, rep = sync(vault)
    assert code == 17
    assert rep["errors"][0]["code"] == "fleet_credentials"
    assert {o["state"] for o in _objects(vault)} == {"queued"}
    assert "fleet_credentials" in _alerts(vault)
    code, out, _ = cli(vault, "fleet", "status", "--json")
    st = json.loads(out)
    assert st["queued"] == 3 and st["last_error"] and st["alerts"]


def test_bucket_without_lock_refused(vault: Vault, volume: Path, ceph: Ceph) -> None:
    bucket = configure(vault, ceph, None)
    s3(ceph).create_bucket(Bucket=bucket)  # plain bucket: no Object Lock
    assert cli(vault, "init")[0] == 0
    ingest(vault, volume)
    code, rep = sync(vault)
    assert code == 17 and rep["errors"][0]["code"] == "fleet_bucket_without_lock"
    assert "Object Lock" in rep["errors"][0]["message"]
    assert "fleet_bucket_without_lock" in _alerts(vault)
    assert s3(ceph).list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert {o["state"] for o in _objects(vault)} == {"queued"}


def test_clock_skew_refused(vault: Vault, volume: Path, ceph: Ceph) -> None:
    configure(vault, ceph, None)
    assert cli(vault, "init")[0] == 0
    ingest(vault, volume)
    settings = vault.settings()
    ahead = Fleet(vault, settings, clock=lambda: utcnow() + dt.timedelta(minutes=10))
    rep = ahead.sync()
    assert [e["code"] for e in rep.errors] == ["fleet_clock_skew"]
    assert rep.uploaded == 0
    assert {o["state"] for o in _objects(vault)} == {"queued"}
    assert "fleet_clock_skew" in _alerts(vault)


def test_free_local_copies_then_fetch_bit_exact(station, ceph: Ceph, tmp_path: Path) -> None:
    vault, _bucket, _dsn, shas = station
    # Not configured to free: confirmed copies stay.
    assert sync(vault)[0] == 0
    db = open_catalog(vault.catalog_path)
    paths = {
        sha: vault.home
        / db.execute("select vault_path from recordings where sha256 = ?", [sha]).fetchone()[0]
        for sha in shas
    }
    db.close()
    originals = {sha: p.read_bytes() for sha, p in paths.items()}
    assert all(p.exists() for p in paths.values())
    text = vault.settings_path.read_text().replace(
        "[fleet]\n", "[fleet]\nfree_local_after_days = 0\n"
    )
    vault.settings_path.write_text(text)
    code, rep = sync(vault)
    assert code == 0 and rep["freed"] == 3, rep
    assert not any(p.exists() for p in paths.values())
    assert len(_audit(vault, "fleet.local_freed")) == 3
    st = json.loads(cli(vault, "fleet", "status", "--json")[1])
    assert st["freed_local"] == 3
    # Fetch one to a file elsewhere, and one back into the vault: both bit-exact.
    out = tmp_path / "copy.mp4"
    code, _out, err = cli(vault, "fleet", "fetch", shas[0], "--out", str(out), "--json")
    assert code == 0, err
    assert out.read_bytes() == originals[shas[0]]
    code, _o, err = cli(vault, "fleet", "fetch", shas[1], "--json")
    assert code == 0, err
    assert paths[shas[1]].read_bytes() == originals[shas[1]]
    assert paths[shas[1]].stat().st_mode & 0o777 == 0o444
    # The station's own verify counts the restored file and not the freed ones as missing.
    code, out_v, _ = cli(vault, "verify", "--json")
    findings = json.loads(out_v)["findings"]
    assert not [f for f in findings if f["code"] == "file.missing"], findings


def test_radosgw_killed_mid_upload_resumes_without_duplicates(
    vault: Vault, ceph: Ceph, postgres: Postgres, tmp_path: Path
) -> None:
    configure(vault, ceph, None, extra="bandwidth_mbps = 120\n")
    # bandwidth_mbps sits in [fleet]: the extra line follows the table
    assert cli(vault, "init")[0] == 0
    size = 5 * PART_SIZE + 12345
    clip = random_clip(tmp_path / "vol", "DSJ0002_100002_20261201080000_0001.MP4", size, 7)
    want = hashlib.sha256(clip.read_bytes()).hexdigest()
    (sha,) = ingest(vault, tmp_path / "vol")
    assert cli(vault, "recordings", "tag", sha, "--category", "patrol")[0] == 0
    assert sha == want
    key = f"originals/{sha[:2]}/{sha}"
    client = s3(ceph)
    result: dict[str, object] = {}

    def first_pass() -> None:
        result["report"] = Fleet(vault, vault.settings()).sync()

    t = threading.Thread(target=first_pass)
    t.start()
    # Wait until the store holds at least one part of the upload, then kill radosgw.
    deadline = time.monotonic() + 120
    upload_id = None
    while time.monotonic() < deadline:
        obj = _objects(vault)
        upload_id = obj[0]["upload_id"] if obj else None
        if upload_id:
            try:
                parts = client.list_parts(Bucket=ceph_bucket(vault), Key=key, UploadId=upload_id)
                if parts.get("Parts"):
                    break
            except ClientError:
                pass
        time.sleep(0.05)
    assert upload_id, "the upload never started"
    ceph.kill_rgw()
    t.join(timeout=300)
    try:
        rep = result["report"]
        assert [e["code"] for e in rep.errors] == ["fleet_store_unreachable"]  # type: ignore[attr-defined]
        assert _objects(vault)[0]["state"] == "queued"
        assert _objects(vault)[0]["upload_id"] == upload_id  # kept, to resume
        assert "fleet_store_unreachable" in _alerts(vault)
    finally:
        ceph.start_rgw()
    import structlog
    from structlog.testing import capture_logs

    structlog.reset_defaults()  # the commands above set the level to warnings for a terminal
    with capture_logs() as logs:
        rep2 = Fleet(vault, vault.settings()).sync()
    assert rep2.ok, rep2.errors
    resumed = [e for e in logs if e["event"] == "fleet.upload_resumed"]
    assert resumed and resumed[0]["upload_id"] == upload_id and resumed[0]["parts"] >= 1
    obj = _objects(vault)[0]
    assert obj["state"] == "confirmed" and obj["upload_id"] is None
    versions = client.list_object_versions(Bucket=ceph_bucket(vault), Prefix=key)
    assert len(versions.get("Versions", [])) == 1 and not versions.get("DeleteMarkers")
    assert not client.list_multipart_uploads(Bucket=ceph_bucket(vault)).get("Uploads")
    body = client.get_object(Bucket=ceph_bucket(vault), Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == sha
    assert obj["etag"].endswith("-6")


def ceph_bucket(vault: Vault) -> str:
    return vault.settings().fleet.bucket


def test_postgres_down_then_back_queue_drains_in_order(station, postgres: Postgres) -> None:
    vault, _bucket, dsn, shas = station
    assert sync(vault)[0] == 0
    postgres.stop()
    try:
        assert cli(vault, "cases", "create", "C-9", "--name", "离线案件")[0] == 0
        assert cli(vault, "cases", "link", "C-9", *shas)[0] == 0
        code, rep = sync(vault)
        assert code == 17
        assert [e["code"] for e in rep["errors"]] == ["fleet_central_unreachable"]
        st = json.loads(cli(vault, "fleet", "status", "--json")[1])
        assert st["outbox"] > 0 and st["central_audit_lag"] > 0
        assert "fleet_central_unreachable" in _alerts(vault)
    finally:
        postgres.start()
    code, rep = sync(vault)
    assert code == 0, rep
    st = json.loads(cli(vault, "fleet", "status", "--json")[1])
    assert st["outbox"] == 0 and st["central_audit_lag"] == 0
    db = open_catalog(vault.catalog_path)
    local = [tuple(r) for r in db.execute("select seq, entry_hash from audit_log order by seq")]
    db.close()
    remote = [
        tuple(r)
        for r in pg_rows(
            dsn,
            "select seq, entry_hash from audit_log where station_id = 'STATION-T1' order by seq",
        )
    ]
    assert remote == local
    assert [r[0] for r in remote] == list(range(1, len(remote) + 1))
    links = pg_rows(dsn, "select sha256 from case_recordings where case_number = 'C-9'")
    assert sorted(r[0] for r in links) == shas


def test_daemon_service_replicates_and_reports(station) -> None:
    from station.fleet.service import FleetService
    from station.usb_dock.cli import build_daemon

    vault, _bucket, _dsn, _shas = station
    daemon = build_daemon(vault, vault.settings())
    services = [s for s in daemon.services if isinstance(s, FleetService)]
    assert len(services) == 1  # configured: the daemon runs the fleet pass as a service
    svc = FleetService(vault, vault.settings(), interval_s=3600)
    seen: list[dict] = []
    svc.listeners.append(seen.append)
    svc.start()
    try:
        deadline = time.monotonic() + 120
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        svc.stop()
    assert seen and seen[0]["queued"] == 0 and seen[0]["outbox"] == 0
    assert {o["state"] for o in _objects(vault)} == {"confirmed"}
    assert svc.last is not None and svc.last.ok


def test_purge_removes_central_copy_only_after_its_retention(
    vault: Vault, ceph: Ceph, tmp_path: Path
) -> None:
    bucket = configure(vault, ceph, None, extra="[retention]\ngrace_days = 0\n")
    assert cli(vault, "init")[0] == 0
    # Recorded in January 2025: routine footage past its six months (R9).
    random_clip(tmp_path / "vol", "DSJ0009_100009_20250101080000_0001.MP4", 50_000, 9)
    (sha,) = ingest(vault, tmp_path / "vol")
    assert cli(vault, "recordings", "tag", sha, "--category", "patrol")[0] == 0
    # The shortest lock, for footage already expired: short here so the test can see it end.
    min_lock = dt.timedelta(seconds=25)
    rep = Fleet(vault, vault.settings(), min_lock=min_lock).sync()
    assert rep.ok and rep.uploaded == 1
    obj = _objects(vault)[0]
    until = dt.datetime.fromisoformat(obj["retain_until"])
    assert until <= utcnow() + min_lock + dt.timedelta(seconds=2)
    # The station purges it (proposed, approved by a supervisor (R9), then purged: grace 0
    # days), keeping a tombstone.
    assert cli(vault, "retention", "run")[0] == 0
    assert cli(vault, "retention", "approve", "--all", "--reason", "无保存意义")[0] == 0
    assert cli(vault, "retention", "run")[0] == 0
    db = open_catalog(vault.catalog_path)
    assert db.execute("select state from recordings").fetchone()[0] == "purged"
    db.close()
    client = s3(ceph)
    key = obj["key"]
    # Its central copy is still locked: the pass waits, the store keeps it.
    rep = Fleet(vault, vault.settings(), min_lock=min_lock).sync()
    assert rep.ok and rep.central_waiting == 1 and rep.central_deleted == 0
    assert client.head_object(Bucket=bucket, Key=key, VersionId=obj["version_id"])
    # Once the retention is over, the central copy goes, recorded beside the tombstone.
    time.sleep(max(0.0, (until - utcnow()).total_seconds()) + 3)
    rep = Fleet(vault, vault.settings(), min_lock=min_lock).sync()
    assert rep.ok and rep.central_deleted == 1, rep.errors
    with pytest.raises(ClientError):
        client.head_object(Bucket=bucket, Key=key, VersionId=obj["version_id"])
    db = open_catalog(vault.catalog_path)
    purge = dict(next(db.query("select * from fleet_central_purges")))
    assert purge["recording"] == sha and purge["version_id"] == obj["version_id"]
    assert db.execute("select count(*) from tombstones where sha256 = ?", [sha]).fetchone()[0]
    assert db.execute("select state from fleet_objects").fetchone()[0] == "deleted"
    db.close()
    assert len(_audit(vault, "fleet.central_purged")) == 1


def test_derivatives_and_their_new_versions_replicated(station, ceph: Ceph) -> None:
    vault, bucket, _dsn, shas = station
    code, _out, err = cli(vault, "transcode", "run-once", "--json")
    assert code == 0, err
    rep = sync(vault)[1]
    assert rep["ok"], rep["errors"]
    derivs = [o for o in _objects(vault) if o["kind"] == "derivative"]
    assert len(derivs) == 3 and {o["state"] for o in derivs} == {"confirmed"}
    client = s3(ceph)
    for o in derivs:
        head = client.head_object(Bucket=bucket, Key=o["key"])
        assert head["Metadata"]["recording"] == o["recording"]
        assert head["ObjectLockMode"] == "COMPLIANCE"
    # A case linked later re-tags the derivative as a new version: that version goes too.
    assert cli(vault, "cases", "create", "C-7", "--name", "转码案件")[0] == 0
    assert cli(vault, "cases", "link", "C-7", shas[0])[0] == 0
    code, _out, err = cli(vault, "transcode", "run-once", "--json")
    assert code == 0, err
    rep = sync(vault)[1]
    assert rep["ok"], rep["errors"]
    mine = [o for o in _objects(vault) if o["kind"] == "derivative" and o["recording"] == shas[0]]
    assert len(mine) == 2 and {o["state"] for o in mine} == {"confirmed"}
    db = open_catalog(vault.catalog_path)
    now_sha = db.execute(
        "select sha256 from derivatives where original_sha256 = ?", [shas[0]]
    ).fetchone()[0]
    db.close()
    assert now_sha in {o["sha256"] for o in mine}


def test_shared_central_copy_kept_while_another_station_keeps_it(
    tmp_path: Path, ceph: Ceph, postgres: Postgres
) -> None:
    dsn = postgres.create_db(f"shared_{time.monotonic_ns() % 10**8}")
    bucket = f"fleet-shared-{time.monotonic_ns() % 10**8}"
    clip = random_clip(tmp_path / "src", "DSJ0005_100005_20250101080000_0001.MP4", 40_000, 5)
    stations = []
    for sid in ("STATION-A", "STATION-B"):
        v = Vault(tmp_path / sid)
        configure(
            v, ceph, dsn, bucket=bucket, station_id=sid, extra="[retention]\ngrace_days = 0\n"
        )
        assert cli(v, "init")[0] == 0
        vol = tmp_path / f"vol-{sid}"
        vol.mkdir()
        (vol / clip.name).write_bytes(clip.read_bytes())
        (sha,) = ingest(v, vol)
        assert cli(v, "recordings", "tag", sha, "--category", "patrol")[0] == 0
        rep = Fleet(v, v.settings()).sync()
        assert rep.ok, rep.errors
        stations.append(v)
    a, b = stations
    assert Fleet(a, a.settings()).sync().ok  # A learns of B's rows through the central DB
    # A purges its copy (expired R9, grace 0); B still keeps the same recording.
    assert cli(a, "retention", "run")[0] == 0
    assert cli(a, "retention", "approve", "--all", "--reason", "无保存意义")[0] == 0
    assert cli(a, "retention", "run")[0] == 0
    rep = Fleet(a, a.settings()).sync()
    assert rep.ok and rep.central_deleted == 0
    obj = _objects(a)[0]
    assert obj["state"] == "released"
    assert s3(ceph).head_object(Bucket=bucket, Key=obj["key"])["ContentLength"] == 40_000
    assert len(_audit(a, "fleet.central_kept_shared")) == 1
    assert _objects(b)[0]["state"] == "confirmed"
