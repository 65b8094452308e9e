"""Benchmark: decide() over every recording and each supervisor report, on a generated catalog.

    python bench/retention.py                       # small: 10,000 recordings, 500 cases
    python bench/retention.py --recordings 1000000 --cases 50000   # the issue's size

Goal (issue 5): on 1,000,000 recordings and 50,000 cases, decide() over all of them and each
report in under 5 s, under 500 MB RSS. Each measurement runs in a fresh child process so its
peak RSS (ru_maxrss) is its own. The baseline, measured in the same run on the same catalog, is
a plain scan of the recordings table reading the same columns; results are given as seconds and
as ratios to that baseline, because this machine is shared and absolute times wander.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
TASKS = ("baseline", "decide", "dry-run", "retention", "compliance", "devices")
CATEGORIES = ("patrol",) * 6 + ("education", "warning", "city-management", None, "enforcement")


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def generate(path: Path, n_rec: int, n_cases: int, seed: int = 5) -> float:
    """Fill a fresh catalog: executemany in one transaction per table."""
    from station.catalog import open_catalog

    rnd = random.Random(seed)
    t0 = time.perf_counter()
    db = open_catalog(path)
    conn = db.conn
    conn.execute("pragma synchronous = off")
    n_units, n_off = 50, max(20, n_rec // 500)
    span = 730 * 86400  # two years of footage
    with conn:
        conn.executemany(
            "insert into units (unit_id, name, department) values (?, ?, ?)",
            [(f"U{u:04d}", f"第{u}中队", f"执法{u % 5}科") for u in range(n_units)],
        )
        conn.executemany(
            "insert into officers (officer_id, name, unit_id) values (?, ?, ?)",
            [(f"{o:06d}", f"警员{o}", f"U{o % n_units:04d}") for o in range(n_off)],
        )
        conn.executemany(
            "insert into devices (device_id, model, officer_id, unit_id, enrolled)"
            " values (?, ?, ?, ?, 1)",
            [(f"D{o:06d}", "DSJ-X1", f"{o:06d}", f"U{o % n_units:04d}") for o in range(n_off)],
        )
    sessions = []
    for i in range(n_rec // 5):
        o = rnd.randrange(n_off)
        t = NOW - dt.timedelta(seconds=rnd.randrange(120 * 86400))
        flags = '[{"code":"drift"}]' if rnd.random() < 0.05 else "[]"
        sessions.append(
            (
                i + 1,
                "dock",
                f"D{o:06d}",
                iso(t),
                rnd.choice(("done",) * 30 + ("failed",)),
                rnd.randrange(5, 100),
                rnd.gauss(0, 3),
                flags,
            )
        )
    with conn:
        conn.executemany(
            "insert into sessions (id, kind, device_id, started_at, state, battery_pct, drift_s,"
            " flags) values (?, ?, ?, ?, ?, ?, ?, ?)",
            sessions,
        )
    del sessions
    shas = []
    rows = []
    for i in range(n_rec):
        sha = hashlib.sha256(i.to_bytes(8, "big")).hexdigest()
        shas.append(sha)
        o = rnd.randrange(n_off)
        rec = NOW - dt.timedelta(seconds=rnd.randrange(span))
        end = rec + dt.timedelta(seconds=rnd.randrange(60, 1800))
        delay = rnd.expovariate(1 / 20000) if rnd.random() < 0.95 else rnd.uniform(1, 10) * 86400
        ing = end + dt.timedelta(seconds=delay)
        rows.append(
            (
                sha,
                rnd.randrange(50, 500) * 1_000_000,
                "MP4",
                "video",
                f"originals/{sha[:2]}/{sha[2:4]}/{sha}.MP4",
                f"D{o:06d}",
                f"{o:06d}",
                f"U{o % n_units:04d}",
                iso(rec),
                iso(end),
                f"{sha[:8]}.MP4",
                f"DCIM/{sha[:8]}.MP4",
                int(rnd.random() < 0.01),
                iso(ing),
                delay,
                # R9: most footage tagged as known routine, some unclassified or a party's.
                CATEGORIES[rnd.randrange(len(CATEGORIES))],
            )
        )
        if len(rows) == 100_000:
            _insert_recordings(conn, rows)
            rows = []
    _insert_recordings(conn, rows)
    cases, links = [], []
    for c in range(n_cases):
        opened = NOW - dt.timedelta(days=rnd.randrange(1000))
        closed = opened + dt.timedelta(days=rnd.randrange(1, 200))
        is_closed = closed < NOW and rnd.random() < 0.7
        cases.append(
            (
                f"罚字〔{2024 + c % 3}〕第{c}号",
                f"案件{c}",
                "占道经营",
                f"当事人{c}",
                "closed" if is_closed else "open",
                iso(opened),
                iso(closed) if is_closed else None,
                rnd.randint(1, 5) if rnd.random() < 0.05 else None,
                "bench",
            )
        )
        for sha in rnd.sample(shas, 4):
            links.append((cases[-1][0], sha, iso(opened), "bench"))
    with conn:
        conn.executemany(
            "insert into cases (number, name, cause, party, status, opened_at, closed_at,"
            " long_term_reason, created_by) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            cases,
        )
        conn.executemany(
            "insert or ignore into case_recordings (case_number, sha256, linked_at, linked_by)"
            " values (?, ?, ?, ?)",
            links,
        )
        conn.executemany(
            "insert into holds (sha256, reason, placed_at, placed_by) values (?, 'bench', ?, 'b')",
            [(s, iso(NOW)) for s in rnd.sample(shas, max(1, n_rec // 1000))],
        )
    db.close()
    return time.perf_counter() - t0


def _insert_recordings(conn, rows) -> None:  # type: ignore[no-untyped-def]
    with conn:
        conn.executemany(
            "insert into recordings (sha256, size, ext, media_kind, vault_path, device_id,"
            " officer_id, unit_id, recorded_at, end_at, original_name, original_path, important,"
            " ingested_at, ingest_delay_s, category)"
            " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def measure(task: str, path: Path) -> dict[str, object]:
    """Run one task in this (child) process; report seconds, peak RSS and a result count."""
    from station.catalog import open_catalog
    from station.config import Settings
    from station.reports.compliance_report import build_compliance
    from station.reports.devices_report import build_devices
    from station.reports.render import render
    from station.reports.retention_report import build_retention
    from station.retention.executor import make_plan
    from station.retention.facts import iter_facts
    from station.retention.policy import Policy, decide

    db = open_catalog(path)
    s = Settings()
    t0, c0 = time.perf_counter(), time.process_time()
    if task == "baseline":
        n = sum(
            1
            for _ in db.execute(
                "select sha256, recorded_at, ingested_at, important, size, state, vault_path, ext"
                " from recordings"
            )
        )
    elif task == "decide":
        facts = (f for f, _ in iter_facts(db))
        n = sum(d.expired for d in decide(facts, Policy.from_settings(s), NOW))
    elif task == "dry-run":
        n = len(make_plan(db, s, NOW).pend)
    elif task == "retention":
        rep = build_retention(db, s, now=NOW, days=30, disk=(10**13, 4 * 10**12))
        n = len(render(rep, "html"))
    elif task == "compliance":
        rep = build_compliance(db, s, now=NOW, since=NOW - dt.timedelta(days=365))
        n = len(render(rep, "html"))
    else:
        rep = build_devices(db, s, now=NOW, days=90)
        n = len(render(rep, "html"))
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    # VmHWM: this process's own peak (ru_maxrss would carry the parent's over fork + exec).
    status = Path("/proc/self/status").read_text()
    rss_mb = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmHWM"))) / 1024
    return {
        "task": task,
        "seconds": round(secs, 3),
        "cpu": round(cpu, 3),
        "rss_mb": round(rss_mb, 1),
        "result": n,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--recordings", type=int, default=10_000)
    ap.add_argument("--cases", type=int, default=500)
    ap.add_argument("--keep", help="keep the generated catalog at this path (reused if there)")
    ap.add_argument("--task", choices=TASKS, help=argparse.SUPPRESS)  # child process mode
    ap.add_argument("--db", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.task:
        print(json.dumps(measure(args.task, Path(args.db))))
        return
    tmp = Path(tempfile.mkdtemp(prefix="station-bench-"))
    try:
        path = Path(args.keep) if args.keep else tmp / "catalog.sqlite"
        if args.keep and path.exists():
            print(f"catalog: reusing {path} ({path.stat().st_size / 1e6:.0f} MB)")
        else:
            gen = generate(path, args.recordings, args.cases)
            print(
                f"catalog: {args.recordings:,} recordings, {args.cases:,} cases, generated in "
                f"{gen:.1f} s ({path.stat().st_size / 1e6:.0f} MB)"
            )
        with path.open("rb") as f:  # warm the page cache: every task, baseline included, reads
            while f.read(1 << 24):  # the catalog from memory, not from a cold disk
                pass
        results = []
        for task in TASKS:
            out = subprocess.run(
                [sys.executable, __file__, "--task", task, "--db", str(path)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
        base = results[0]["seconds"] or 1e-9
        base_cpu = results[0]["cpu"] or 1e-9
        print(
            f"{'task':<12}{'wall s':>8}{'× base':>8}{'CPU s':>8}{'× base':>8}"
            f"{'peak RSS MB':>13}  result"
        )
        for r in results:
            verdict = ""
            if r["task"] != "baseline":
                fast = r["seconds"] < 5  # wall time: what a person waits for
                verdict = "  ok" if fast and r["rss_mb"] < 500 else "  OVER GOAL (5 s, 500 MB)"
            print(
                f"{r['task']:<12}{r['seconds']:>8.2f}{r['seconds'] / base:>8.1f}"
                f"{r['cpu']:>8.2f}{r['cpu'] / base_cpu:>8.1f}{r['rss_mb']:>13.0f}"
                f"  {r['result']}{verdict}"
            )
        print(f"load average at the end: {Path('/proc/loadavg').read_text().split()[:3]}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
