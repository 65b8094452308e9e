"""Benchmark: the commands that read a whole catalog, end to end, against ``sqlite3`` reading
the same rows in the same run.

    python bench/outputs.py                                  # 100,000 recordings, 5,000 cases
    python bench/outputs.py --recordings 1000000 --cases 50000 --keep /tmp/cat1m.sqlite

Each side is the command a user runs (``station …`` from this checkout) or the ``sqlite3`` CLI,
writing to /dev/null, in its own child process timed with its own peak RSS; the page cache is
dropped before every timed run of either side (root), the sides alternated round by round (the
order flips every round). Baselines:

- ``recordings list --json --limit N``: ``sqlite3 -json`` of the same query (same columns, same
  filter, same order and limit);
- ``retention run --dry-run --json`` and both reports: ``sqlite3 -json`` of the columns the
  retention decision reads, for every stored or pending recording (the scan every one of them
  makes).

Goals: list ≤ 3 × its baseline and < 100 MB; dry run ≤ 3 × and < 300 MB; each report ≤ 3 × and
< 300 MB (the 3 s of the goal, stated against the scan on this machine).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import alternate, need_root  # noqa: E402

NOW = "2026-12-01T00:00:00Z"
SCAN = (
    "select sha256, recorded_at, ingested_at, important, size, state from recordings"
    " where state in ('stored', 'pending_purge')"
)
LIST = (
    "select sha256, recorded_at, device_id, officer_id, unit_id, media_kind, size, duration_s,"
    " important, damaged, state, original_name from recordings where state = 'stored'"
    " order by recorded_at desc limit {n}"
)
GOALS = {  # side -> (baseline, ratio, MB)
    "station recordings list --json": ("sqlite3 -json list", 3.0, 100),
    "station retention run --dry-run --json": ("sqlite3 -json scan", 3.0, 300),
    "station report retention --json": ("sqlite3 -json scan", 3.0, 300),
    "station report compliance --json": ("sqlite3 -json scan", 3.0, 300),
}


def to_null(*cmd: str) -> list[str]:
    return ["sh", "-c", 'exec "$@" > /dev/null', "sh", *cmd]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--recordings", type=int, default=100_000)
    ap.add_argument("--cases", type=int, default=5_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", help="keep the generated catalog at this path (reused if there)")
    ap.add_argument(
        "--before",
        metavar="DIR",
        help="also run the dry run and both reports with the station package in DIR"
        " (e.g. `git archive REV station | tar -x -C DIR`), in the same rounds",
    )
    ap.add_argument("--no-list", action="store_true", help="leave out the two list sides")
    args = ap.parse_args()
    need_root()
    tmp = Path(tempfile.mkdtemp(prefix="station-bench-"))
    try:
        cat = Path(args.keep) if args.keep else tmp / "gen.sqlite"
        if not cat.exists():
            subprocess.run(  # generated in a child: its memory is not this process's
                [
                    sys.executable,
                    "-c",
                    "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
                    "from bench.retention import generate;"
                    "generate(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))",
                    str(ROOT),
                    str(cat),
                    str(args.recordings),
                    str(args.cases),
                ],
                check=True,
            )
            subprocess.run(["sqlite3", str(cat), "pragma wal_checkpoint(truncate);"], check=True)
        home = tmp / "home"
        env = {"STATION_HOME": str(home), "PATH": "/usr/bin:/bin", "HOME": str(tmp)}
        subprocess.run(
            [sys.executable, "-m", "station", "init"], env=env, check=True, capture_output=True
        )
        shutil.copyfile(cat, home / "catalog.sqlite")
        db = str(home / "catalog.sqlite")
        n = args.recordings
        st = [sys.executable, "-m", "station"]
        sides = {
            "sqlite3 -json list": to_null("sqlite3", "-json", db, LIST.format(n=n)),
            "station recordings list --json": to_null(
                *st, "recordings", "list", "--json", "--limit", str(n)
            ),
            "sqlite3 -json scan": to_null("sqlite3", "-json", db, SCAN),
            "station retention run --dry-run --json": to_null(
                *st, "retention", "run", "--dry-run", "--json", "--now", NOW
            ),
            "station report retention --json": to_null(
                *st, "report", "retention", "--json", "--now", NOW
            ),
            "station report compliance --json": to_null(
                *st, "report", "compliance", "--json", "--now", NOW, "--from", "2025-12-01"
            ),
        }
        if args.before:
            # run from DIR: ``python -m`` puts the working directory first on sys.path
            before = ["sh", "-c", 'cd "$0" && exec "$@" > /dev/null', args.before, *st]
            sides["before: station retention run --dry-run --json"] = [
                *before,
                "retention",
                "run",
                "--dry-run",
                "--json",
                "--now",
                NOW,
            ]
            sides["before: station report retention --json"] = [
                *before,
                "report",
                "retention",
                "--json",
                "--now",
                NOW,
            ]
            sides["before: station report compliance --json"] = [
                *before,
                "report",
                "compliance",
                "--json",
                "--now",
                NOW,
                "--from",
                "2025-12-01",
            ]
        if args.no_list:
            del sides["sqlite3 -json list"], sides["station recordings list --json"]
        res = alternate(sides, args.rounds, cold=True, env=env)
        print(
            f"catalog: {args.recordings:,} recordings, {args.cases:,} cases; "
            f"{args.rounds} rounds, cold cache, sides alternated"
        )
        for side in sides:
            base = GOALS.get(side, (None,))[0] or (
                "sqlite3 -json scan" if side.startswith("before:") else None
            )
            print(res.line(side, base))
        for side in sides:
            if side.startswith("before: "):
                now_side = side.removeprefix("before: ")
                print(f"{now_side}: {res.ratio(now_side, side):.2f} × the same command before")
        for side, (base, ratio, mb) in GOALS.items():
            if side not in sides:
                continue
            r, rss = res.ratio(side, base), max(res.rss_mb[side])
            ok = r <= ratio and rss < mb
            print(
                f"{side}: {r:.2f} × {base} (goal ≤ {ratio}), peak {rss:.0f} MB (goal < {mb})"
                f" — {'meets' if ok else 'MISSES'}"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
