"""Benchmark: replication throughput to a real Ceph RGW, against plain boto3 ``upload_file`` of
the same files in the same run, and the cost of the fleet queue when there is nothing to do.

    python bench/fleet.py                        # 6 x 64 MiB + 64 x 1 MiB, two rounds
    python bench/fleet.py --big 12 --small 200 --rounds 3

A single-node Ceph (mon, BlueStore OSD on a sparse file, radosgw) is brought up in a temporary
folder (the test fixture's recipe) and torn down at the end. The files are ingested by the real
engine; each round then uploads them twice, alternating which goes first, each time into a fresh
bucket: ``baseline`` is boto3's ``upload_file`` (default TransferConfig: 8 MiB parts, 10 threads)
into a plain bucket; ``fleet`` is ``Fleet.sync()`` (Object Lock bucket, COMPLIANCE retention,
SHA-256 + MD5 of every byte, read-back of size, ETag, retention and hold, audit entry per object).
Goal: fleet >= 0.9 x baseline. Idle: a pass with nothing queued, and the CPU the
daemon's fleet service spends while idle.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def make_files(folder: Path, big: int, small: int, seed: int = 14) -> int:
    rnd = random.Random(seed)
    folder.mkdir(parents=True)
    total = 0
    for i in range(big + small):
        size = 64 * 1024 * 1024 if i < big else 1024 * 1024
        name = f"DSJ0001_100001_202612010{i // 100:01d}{i % 100:02d}00_{i + 1:04d}.MP4"
        with (folder / name).open("wb") as f:
            left = size
            while left:
                n = min(left, 8 << 20)
                f.write(rnd.randbytes(n))
                left -= n
        total += size
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--big", type=int, default=6, help="64 MiB files")
    ap.add_argument("--small", type=int, default=64, help="1 MiB files")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    args = ap.parse_args()

    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config
    from click.testing import CliRunner
    from fleet_engines import start_ceph, stop_ceph

    from station.catalog import open_catalog, write_txn
    from station.cli import main as cli
    from station.fleet.service import FleetService
    from station.fleet.sync import Fleet
    from station.vault import Vault

    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    ceph_root = work / "ceph"
    result: dict[str, object] = {"big": args.big, "small": args.small}
    try:
        t = time.monotonic()
        ceph = start_ceph(ceph_root)
        result["ceph_start_s"] = round(time.monotonic() - t, 1)
        vol = work / "vol"
        total = make_files(vol, args.big, args.small)
        result["bytes"] = total
        home = work / "home"
        home.mkdir()
        (home / "s3.secret").write_text(ceph.secret_key)
        os.chmod(home / "s3.secret", 0o600)
        (home / "station.toml").write_text(
            f'[fleet]\ns3_endpoint = "{ceph.endpoint}"\nbucket = "x"\n'
            f'access_key = "{ceph.access_key}"\nsecret_key_file = "{home / "s3.secret"}"\n'
        )
        vault = Vault(home)
        run = CliRunner()
        assert run.invoke(cli, ["--home", str(home), "init"]).exit_code == 0
        res = run.invoke(cli, ["--home", str(home), "ingest", str(vol), "--json"])
        assert res.exit_code == 0, res.output
        db = open_catalog(vault.catalog_path)
        files = [home / r[0] for r in db.execute("select vault_path from recordings")]
        db.close()
        for f in files:  # both sides read from a warm page cache
            f.read_bytes()

        s3 = boto3.client(
            "s3",
            endpoint_url=ceph.endpoint,
            aws_access_key_id=ceph.access_key,
            aws_secret_access_key=ceph.secret_key,
            region_name="us-east-1",
            config=Config(
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                s3={"addressing_style": "path"},
            ),
        )

        def baseline() -> float:
            bucket = f"base-{uuid.uuid4().hex[:10]}"
            s3.create_bucket(Bucket=bucket)
            t0 = time.monotonic()
            for f in files:
                s3.upload_file(str(f), bucket, f.name, Config=TransferConfig())
            return time.monotonic() - t0

        last_bucket: list[str] = []

        def fleet() -> float:
            settings = vault.settings()
            settings.fleet.bucket = f"fleet-{uuid.uuid4().hex[:10]}"
            last_bucket.append(settings.fleet.bucket)
            db = open_catalog(vault.catalog_path)
            with write_txn(db):  # everything queued again, for the fresh bucket
                db.execute(
                    "update fleet_objects set state = 'queued', version_id = null, etag = null,"
                    " retain_until = null, legal_hold = 0, confirmed_at = null"
                )
            db.close()
            t0 = time.monotonic()
            if os.environ.get("BENCH_PROFILE"):
                import cProfile
                import pstats

                prof = cProfile.Profile()
                rep = prof.runcall(Fleet(vault, settings).sync)
                pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
            else:
                rep = Fleet(vault, settings).sync()
            took = time.monotonic() - t0
            assert rep.ok and rep.uploaded == len(files), rep.errors
            return took

        runs: dict[str, list[float]] = {"baseline": [], "fleet": []}
        cpu_s: dict[str, list[float]] = {"baseline": [], "fleet": []}

        def cpu() -> float:
            ru = resource.getrusage(resource.RUSAGE_SELF)
            return ru.ru_utime + ru.ru_stime

        for r in range(args.rounds):
            order = [("baseline", baseline), ("fleet", fleet)]
            if r % 2:
                order.reverse()
            for name, fn in order:
                c0 = cpu()
                runs[name].append(fn())
                cpu_s[name].append(round(cpu() - c0, 2))
        result["cpu_s"] = cpu_s  # this process's CPU time (all threads) per run
        mbs = {k: [round(total / v / 1e6, 1) for v in vs] for k, vs in runs.items()}
        best = {k: max(v) for k, v in mbs.items()}
        result["MB_per_s"] = mbs
        result["ratio_best"] = round(best["fleet"] / best["baseline"], 3)
        result["ratio_mean"] = round(
            (sum(mbs["fleet"]) / len(mbs["fleet"])) / (sum(mbs["baseline"]) / len(mbs["baseline"])),
            3,
        )

        # Idle: a pass with nothing to do, and the service thread waiting between passes.
        print(json.dumps(result), file=sys.stderr)
        settings = vault.settings()
        settings.fleet.bucket = last_bucket[-1]
        t0 = time.monotonic()
        idle = Fleet(vault, settings).sync()
        result["idle_pass_ms"] = round((time.monotonic() - t0) * 1000, 1)
        assert idle.ok and idle.uploaded == 0, idle.errors
        svc = FleetService(vault, settings)
        svc.start()
        time.sleep(2.0)  # its first pass
        before = resource.getrusage(resource.RUSAGE_SELF)
        time.sleep(args.idle_seconds)
        after = resource.getrusage(resource.RUSAGE_SELF)
        svc.stop()
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        result["idle_service_cpu_s"] = round(cpu, 4)
        result["idle_seconds"] = args.idle_seconds
    finally:
        stop_ceph(ceph_root)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
