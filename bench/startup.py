"""Benchmark: start-up of the command line, against bare Python and Python importing click.

    python bench/startup.py                 # warm: 9 alternated rounds, page cache kept
    python bench/startup.py --cold          # cold: page cache dropped before every run (root)

Goal: ``station --help`` and ``station status`` each ≤ 0.15 s warm. Each side is a child
process (``python -m station …`` from this checkout's interpreter, so no console-script shim
differs between sides), the sides alternated round by round; the table gives median and spread
and the per-round ratio to ``python -c pass``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import alternate  # noqa: E402

GOAL_S = 0.15


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--cold", action="store_true", help="drop the page cache before every run")
    args = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="station-bench-") as tmp:
        home = Path(tmp) / "home"
        env = {"STATION_HOME": str(home), "PATH": "/usr/bin:/bin", "HOME": tmp}
        sides = {
            "python -c pass": [py, "-c", "pass"],
            'python -c "import click"': [py, "-c", "import click"],
            "station --help": [py, "-m", "station", "--help"],
            "station status --json": [
                "sh",
                "-c",
                f"{py} -m station status --json >/dev/null 2>&1; exit 0",
            ],
            "station recordings --help": [py, "-m", "station", "recordings", "--help"],
        }
        alternate({"warm-up": [py, "-m", "station", "--help"]}, 1, cold=False, env=env)
        res = alternate(sides, args.rounds, cold=args.cold, env=env)
    print(f"start-up, {args.rounds} rounds, {'cold' if args.cold else 'warm'} cache")
    for side in sides:
        print(res.line(side, "python -c pass"))
    for side in ("station --help", "station status --json"):
        med = res.median(side)
        verdict = "meets" if med <= GOAL_S else "misses"
        print(f"{side}: median {med:.3f} s {verdict} the {GOAL_S} s goal")


if __name__ == "__main__":
    main()
