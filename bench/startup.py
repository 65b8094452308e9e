"""Benchmark: start-up of the command line, against bare Python and Python importing click.

    python bench/startup.py                 # warm: 9 alternated rounds, page cache kept
    python bench/startup.py --cold          # cold: page cache dropped before every run (root)

Goal: ``station --help`` and ``station status`` each ≤ 0.15 s warm on a quiet machine, where
``python -c pass`` takes about 0.03 s: stated in the same run as ≤ 5 × ``python -c pass`` (the
absolute figure is printed too; on a loaded machine only the ratio means something). With
``--before DIR`` (a checkout of an earlier ``station`` package, e.g. ``git archive <rev> station |
tar -x -C DIR``) that version runs as further sides, through PYTHONPATH. Each side is a child
process (``python -m station …`` from this checkout's interpreter, so no console-script shim
differs between sides), the sides alternated round by round; the table gives median and spread
and the per-round ratio to ``python -c pass``.
"""

from __future__ import annotations

import argparse
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import alternate  # noqa: E402

GOAL_S = 0.15
GOAL_RATIO = 5.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--cold", action="store_true", help="drop the page cache before every run")
    ap.add_argument("--before", help="folder holding an earlier station package, run beside")
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
        if args.before:
            # -S: no site, so the editable install of this checkout cannot shadow the earlier
            # package; its site-packages come through PYTHONPATH (this favours the earlier
            # version by the cost of ``site``)
            purelib = sysconfig.get_paths()["purelib"]
            old = ["env", f"PYTHONPATH={args.before}:{purelib}", py, "-S", "-P", "-m", "station"]
            sides["before: station --help"] = [*old, "--help"]
            sides["before: station status --json"] = [
                "sh", "-c", f"{' '.join(old)} status --json >/dev/null 2>&1; exit 0"
            ]  # fmt: skip
        alternate({"warm-up": [py, "-m", "station", "--help"]}, 1, cold=False, env=env)
        res = alternate(sides, args.rounds, cold=args.cold, env=env)
    print(f"start-up, {args.rounds} rounds, {'cold' if args.cold else 'warm'} cache")
    for side in sides:
        print(res.line(side, "python -c pass"))
    for side in ("station --help", "station status --json"):
        med, ratio = res.median(side), res.ratio(side, "python -c pass")
        verdict = "meets" if ratio <= GOAL_RATIO else "MISSES"
        print(
            f"{side}: {ratio:.2f} × python -c pass (goal ≤ {GOAL_RATIO:g}) — {verdict}; "
            f"median {med:.3f} s (goal {GOAL_S} s on a quiet machine)"
        )


if __name__ == "__main__":
    main()
