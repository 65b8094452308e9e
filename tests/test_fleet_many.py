"""Ten simulated stations feed one store and one central database at once and converge: every
station's rows exactly once, every object in one version (R19)."""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from pathlib import Path

import pytest
from fleet_engines import Ceph, Postgres
from fleet_support import cli, configure, ingest, pg_rows, random_clip, s3

from station.catalog import open_catalog
from station.fleet.sync import Fleet, SyncReport
from station.vault import Vault

pytestmark = pytest.mark.slow

N = 10


def _local(vault: Vault, sql: str) -> list[tuple]:
    db = open_catalog(vault.catalog_path)
    try:
        return [tuple(r) for r in db.execute(sql)]
    finally:
        db.close()


def test_ten_stations_converge_without_duplicates(
    tmp_path: Path, ceph: Ceph, postgres: Postgres
) -> None:
    dsn = postgres.create_db(f"ten_{uuid.uuid4().hex[:8]}")
    bucket = f"fleet-ten-{uuid.uuid4().hex[:8]}"
    vaults: list[Vault] = []
    for i in range(N):
        v = Vault(tmp_path / f"station{i:02d}")
        configure(v, ceph, dsn, bucket=bucket, station_id=f"STATION-{i:02d}")
        assert cli(v, "init")[0] == 0
        vol = tmp_path / f"vol{i:02d}"
        for n in range(2):
            name = f"DSJ{i:04d}_1000{i:02d}_2026120108{n:02d}00_{n + 1:04d}.MP4"
            random_clip(vol, name, 300_000 + 1000 * i + n, seed=100 * i + n)
        ingest(v, vol)
        vaults.append(v)
    assert cli(vaults[3], "cases", "create", "C-3", "--name", "案件三")[0] == 0
    rec3 = _local(vaults[3], "select sha256 from recordings")[0][0]
    assert cli(vaults[3], "cases", "link", "C-3", rec3)[0] == 0

    reports: dict[int, SyncReport] = {}
    failures: list[BaseException] = []

    def run(i: int) -> None:
        try:
            reports[i] = Fleet(vaults[i], vaults[i].settings()).sync()
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert all(r.ok for r in reports.values()), [r.errors for r in reports.values()]
    assert sum(r.uploaded for r in reports.values()) == 2 * N
    # Once more, one after another: nothing new to send, nothing duplicated.
    for v in vaults:
        again = Fleet(v, v.settings()).sync()
        assert again.ok and again.uploaded == 0 and again.central_rows == 0

    # The central catalog: per station exactly its own rows, its audit log entry by entry.
    for i, v in enumerate(vaults):
        sid = f"STATION-{i:02d}"
        local_recs = sorted(r[0] for r in _local(v, "select sha256 from recordings"))
        central_recs = sorted(
            r[0] for r in pg_rows(dsn, "select sha256 from recordings where station_id = %s", [sid])
        )
        assert central_recs == local_recs
        local_audit = _local(v, "select seq, entry_hash from audit_log order by seq")
        central_audit = [
            tuple(r)
            for r in pg_rows(
                dsn,
                "select seq, entry_hash from audit_log where station_id = %s order by seq",
                [sid],
            )
        ]
        assert central_audit == local_audit
    dupes = pg_rows(
        dsn,
        "select station_id, seq::text, count(*) from audit_log group by 1, 2 having count(*) > 1"
        " union all select station_id, sha256, count(*) from recordings group by 1, 2"
        " having count(*) > 1",
    )
    assert dupes == []
    assert pg_rows(dsn, "select count(*) from stations")[0][0] == N
    links = pg_rows(dsn, "select station_id, sha256 from case_recordings")
    assert [tuple(r) for r in links] == [("STATION-03", rec3)]

    # The store: one version per object.
    client = s3(ceph)
    pages = client.get_paginator("list_object_versions").paginate(
        Bucket=bucket, Prefix="originals/"
    )
    keys = [v["Key"] for page in pages for v in page.get("Versions", [])]
    assert len(keys) == 2 * N and len(set(keys)) == 2 * N

    # A recording already in the store from another station is adopted, not sent again.
    shared = tmp_path / "shared"
    shared.mkdir()
    src = next((tmp_path / "vol00").iterdir())
    shutil.copy(src, shared / src.name.replace("DSJ0000", "DSJ0001"))
    ingest(vaults[1], shared)
    rep = Fleet(vaults[1], vaults[1].settings()).sync()
    assert rep.ok and rep.adopted == 1 and rep.uploaded == 0
    pages = client.get_paginator("list_object_versions").paginate(
        Bucket=bucket, Prefix="originals/"
    )
    assert len([v for page in pages for v in page.get("Versions", [])]) == 2 * N

    # The supervisor's view across all stations, from the central database.
    code, out, err = cli(vaults[0], "report", "central", "--json")
    assert code == 0, err
    rep_c = json.loads(out)
    by_station = {s["station_id"]: s for s in rep_c["sections"][0]["rows"]}
    assert len(by_station) == N
    assert by_station["STATION-01"]["recordings"] == 3
    assert sum(s["recordings"] for s in by_station.values()) == 2 * N + 1
    retention = {r["station_id"]: r for r in rep_c["sections"][2]["rows"]}
    assert retention["STATION-03"]["open_cases"] == 1
    code, out, _ = cli(vaults[0], "report", "central")
    assert code == 0 and "全单位采集站汇总" in out
