"""Benchmark: what the retention tallies' triggers (migration 0150) cost an insert into
``recordings``, against the same inserts into a catalog without them, in the same run.

    python bench/tally_ingest.py                  # 20,000 recordings, 5 rounds
    python bench/tally_ingest.py --rows 50000 --base 1000000

Two catalogs with every migration; in one the tally triggers and the ingest-hour index are
dropped. Each round, alternating which goes first, inserts the same ``--rows`` recordings
(the columns ingest writes) into each: once all in one transaction (the triggers' CPU cost
alone) and once each in its own transaction with ``synchronous=FULL`` (as ingest commits a
recording: the fsync the station pays anyway). ``--base`` rows are inserted first (a catalog
that is not empty). Figures: median µs per insert and the ratio with/without.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import load_average  # noqa: E402

COLS = (
    "sha256, size, ext, media_kind, vault_path, device_id, officer_id, unit_id, recorded_at,"
    " end_at, original_name, original_path, important, ingested_at, ingest_delay_s, category"
)


def rows(n: int, seed: int, salt: str) -> list[tuple[object, ...]]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        sha = hashlib.sha256(f"{salt}{i}".encode()).hexdigest()
        rec = f"2026-{rnd.randrange(1, 12):02d}-{rnd.randrange(1, 28):02d}T{rnd.randrange(24):02d}"
        rec += f":{rnd.randrange(60):02d}:{rnd.randrange(60):02d}.{rnd.randrange(10**6):06d}Z"
        out.append(
            (
                sha,
                rnd.randrange(50, 500) * 1_000_000,
                "MP4",
                "video",
                f"originals/{sha[:2]}/{sha}.MP4",
                "D1",
                "000001",
                "U0001",
                rec,
                rec,
                "a.MP4",
                "DCIM/a.MP4",
                int(rnd.random() < 0.01),
                rec,
                100.0,
                rnd.choice(("patrol", "education", None, "enforcement")),
            )
        )
    return out


def make(path: Path, triggers: bool, base: int) -> None:
    from station.catalog import open_catalog
    from station.catalog.migrations.m0150_retention_tally import TRIGGERS

    db = open_catalog(path)
    if not triggers:
        for name in TRIGGERS:
            db.execute(f"drop trigger {name}")
        db.execute("drop index recordings_ingest_hour")
    marks = ", ".join("?" * 16)
    with db.conn:
        db.conn.executemany(
            f"insert into recordings ({COLS}) values ({marks})", rows(base, 1, "base")
        )
    db.close()


def insert(path: Path, batch: list[tuple[object, ...]], one_txn: bool) -> float:
    """Seconds for the inserts (the rows are removed again afterwards, untimed)."""
    from station.catalog import open_catalog

    db = open_catalog(path)
    conn = db.conn
    sql = f"insert into recordings ({COLS}) values ({', '.join('?' * 16)})"
    t0 = time.perf_counter()
    if one_txn:
        with conn:
            for r in batch:
                conn.execute(sql, r)
    else:
        for r in batch:
            with conn:
                conn.execute(sql, r)
    took = time.perf_counter() - t0
    with conn:
        conn.executemany("delete from recordings where sha256 = ?", [(r[0],) for r in batch])
    db.close()
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--base", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--fsync-rows", type=int, default=500, help="rows committed one by one")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tally-bench-"))
    paths = {True: tmp / "with.sqlite", False: tmp / "without.sqlite"}
    for trig, p in paths.items():
        make(p, trig, args.base)
    batch = rows(args.rows, 2, "new")
    times: dict[tuple[bool, bool], list[float]] = {}
    for rnd in range(args.rounds):
        order = (True, False) if rnd % 2 == 0 else (False, True)
        for trig in order:
            times.setdefault((trig, True), []).append(insert(paths[trig], batch, True))
            small = batch[: args.fsync_rows]
            times.setdefault((trig, False), []).append(insert(paths[trig], small, False))
    print(
        f"{args.rows:,} inserts in one transaction, {args.fsync_rows:,} committed one by one,"
        f" into {args.base:,} rows; {args.rounds} rounds alternated; load {load_average()}"
    )
    for one_txn, n, label in (
        (True, args.rows, "one transaction"),
        (False, args.fsync_rows, "a commit each"),
    ):
        w = [t / n * 1e6 for t in times[(True, one_txn)]]
        wo = [t / n * 1e6 for t in times[(False, one_txn)]]
        print(
            f"{label}: with triggers {statistics.median(w):.1f} µs/insert"
            f" ({min(w):.1f}–{max(w):.1f}), without {statistics.median(wo):.1f}"
            f" ({min(wo):.1f}–{max(wo):.1f}): {statistics.median(w) / statistics.median(wo):.2f} ×"
        )
    for p in paths.values():
        for suffix in ("", "-wal", "-shm"):
            Path(str(p) + suffix).unlink(missing_ok=True)
    tmp.rmdir()


if __name__ == "__main__":
    main()
