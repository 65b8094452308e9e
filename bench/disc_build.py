"""Benchmark: ``station disc build`` of one case, both copies, read back — the command a clerk
runs — against two ``genisoimage -J -R -udf`` runs of the same files plus one independent
read-back, in the same run.

    python bench/disc_build.py                     # a 1 GiB case in 4 files, 3 rounds
    python bench/disc_build.py --gib 0.5 --rounds 3
    python bench/disc_build.py --keep DIR --before OLD  # reuse the set-up; an earlier package
                                                        # (git archive REV station | tar -x -C OLD)

Set-up (untimed): a fresh station home; ``--gib`` of random bytes in ``--files`` recorder-named
files ingested with ``station ingest``; a case created, the recordings linked, the case marked
long-term (R11) — all through the command line. Each round, sides alternated, caches dropped
before each timed run (root):

- station: ``station disc build CASE --media dvd --json`` (images A and B written with their
  SHA-256 taken while writing, both read back through xorriso and 7-Zip, each file's digest
  checked under its path, labels, catalog);
- baseline: ``genisoimage -J -R -udf`` of the same vault files, twice (A and B), each followed by
  ``sync``, then the page cache dropped and ``7zz t`` of one image (one independent read-back
  from the disk).

- floor: the same two ``genisoimage`` runs, then both images read back from the shell by the
  very tools the station's check runs, copies side by side (per copy: one xorriso listing of
  both ISO trees, ``7zz t`` of the tree whose contents are read, for copy A a UDF listing) — how
  close the station comes to doing only what the independent readers must do.

Goal: station ≤ 1.5 × baseline (median of per-round ratios), peak RSS < 100 MB (ru_maxrss of the
command's process tree as wait4 reports it: the largest of the station process and the readers
it ran). A further side, ``--no-verify``, shows how much of the build is the read-back;
``--before DIR`` runs an earlier ``station`` package beside.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import alternate, load_average, need_root  # noqa: E402

CASE = "城管罚字〔2026〕第99号"
GOAL = 1.5


def mp4_head(work: Path) -> bytes:
    """A 1 s faststart H.264 MP4 (its last atom is ``mdat``): the start of a recording."""
    out = work / "head.mp4"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
         "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(out)],
        check=True,
    )  # fmt: skip
    data = out.read_bytes()
    out.unlink()
    pos = 0
    while pos < len(data):  # top-level atoms: the last one is mdat
        size, kind = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
        if kind == b"mdat" and pos + size == len(data):
            return data
        pos += size
    raise SystemExit("ffmpeg wrote no mdat atom")


def set_up(work: Path, env: dict[str, str], st: list[str], gib: float, files: int) -> None:
    """A station home with one long-term case of ``gib`` GiB in ``files`` recordings, and the
    same vault files hard-linked into ``work/src`` for the baseline (untimed)."""
    home, vol = work / "home", work / "vol"

    def station(*a: str) -> str:
        return subprocess.run([*st, *a], env=env, check=True, capture_output=True, text=True).stdout

    station("init")
    # R12: the label's producing unit and producer (a fresh station's placeholders are refused)
    station("config", "set", "station.unit_name=某市城市管理行政执法局",
            "station.unit_id=440300000001", "disc.producer=王五")  # fmt: skip
    vol.mkdir()
    each = int(gib * 1024**3) // files
    head = mp4_head(work)
    block = os.urandom(1 << 20)
    for i in range(files):
        with open(vol / f"DSJ0001_100001_2026113010{i:04d}_{i + 1:04d}.MP4", "wb") as f:
            # a real MP4 whose media data runs to the end of the file, so ffprobe (the disc's
            # metadata records) reads its header as on a recorder's file, not all of it
            at = head.rindex(b"mdat") - 4
            f.write(head[:at] + (each - at).to_bytes(4, "big") + head[at + 4 :])
            left = each - len(head)
            for n in range(-(-left >> 20)):
                # every MiB of every file differs: the vault keeps one copy of equal files
                data = ((i << 32) | n).to_bytes(8, "little") + block[8:]
                f.write(data[: min(len(data), left)])
                left -= len(data)
    ingested = json.loads(station("ingest", str(vol), "--json"))
    shas = [f["sha256"] for f in ingested["files_detail"]]
    shutil.rmtree(vol)
    station("cases", "create", CASE, "--name", "基准测试案件", "--party", "某某")
    station("cases", "link", CASE, *shas)
    station("cases", "mark-long-term", CASE, "--reason", "2", "--note", "基准测试")
    # the baseline reads the very same vault files, through hard links in one folder
    src = work / "src"
    src.mkdir()
    for row in json.loads(station("recordings", "list", "--json")):
        original = next(home.joinpath("originals").rglob(f"{row['sha256']}.*"))
        os.link(original, src / row["original_name"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--before", help="folder holding an earlier station package, run beside")
    ap.add_argument(
        "--keep", default=None, help="keep the set-up in this folder and reuse it next time"
    )
    args = ap.parse_args()
    need_root()
    if args.keep:
        work = Path(args.keep)
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="bench-disc-build-", dir=args.dir))
    try:
        home = work / "home"
        env = {**os.environ, "STATION_HOME": str(home), "STATION_USER": "clerk1"}
        st = [sys.executable, "-m", "station"]
        if not (work / "src").is_dir():
            set_up(work, env, st, args.gib, args.files)
        src = work / "src"
        out_st, out_base = work / "out-station", work / "out-base"

        def clean(side: str) -> None:
            for d in (out_st, out_base):
                shutil.rmtree(d, ignore_errors=True)
            out_base.mkdir()

        def both(read_b: str) -> str:
            return (
                f"genisoimage -quiet -J -R -udf -o {out_base}/A.iso {src} && sync && "
                f"genisoimage -quiet -J -R -udf -o {out_base}/B.iso {src} && sync && "
                f"echo 3 > /proc/sys/vm/drop_caches && {read_b}"
            )

        baseline = (
            f"genisoimage -quiet -J -R -udf -o {out_base}/A.iso {src} && sync && "
            f"genisoimage -quiet -J -R -udf -o {out_base}/B.iso {src} && sync && "
            # the station reads its images back from the disk, not from the page cache
            f"echo 3 > /proc/sys/vm/drop_caches && 7zz t {out_base}/A.iso > /dev/null"
        )
        # the floor of the station's own check: both copies read back by the same tools the
        # station runs, side by side (copy A's Joliet tree, copy B's UDF tree, both listed)
        floor = both(
            f"(xorriso -indev {out_base}/A.iso -find / -type f -exec report_lba -- "
            f"-print x -read_fs norock -indev {out_base}/A.iso -find / -type f "
            f"-exec report_lba -- >/dev/null 2>&1; 7zz l -slt -tudf {out_base}/A.iso >/dev/null; "
            f"7zz t -tiso -scrcSHA256 {out_base}/A.iso >/dev/null) & "
            f"(xorriso -indev {out_base}/B.iso -find / -type f -exec report_lba -- "
            f"-print x -read_fs norock -indev {out_base}/B.iso -find / -type f "
            f"-exec report_lba -- >/dev/null 2>&1; "
            f"7zz t -tudf -scrcSHA256 {out_base}/B.iso >/dev/null) & wait"
        )
        sides = {
            "genisoimage ×2 + 7zz t": ["sh", "-c", baseline],
            "floor: genisoimage ×2 + both read": ["sh", "-c", floor],
            "station disc build": [
                *st,
                "disc",
                "build",
                CASE,
                "--media",
                "dvd",
                "--out",
                str(out_st),
                "--json",
            ],
            # for the breakdown only: the same build without the read-back
            "station disc build --no-verify": [
                *st, "disc", "build", CASE, "--media", "dvd", "--out", str(out_st), "--json",
                "--no-verify",
            ],
        }  # fmt: skip
        if args.before:
            # an earlier station package (``git archive REV station | tar -x -C DIR``); -S so
            # the editable install of this checkout cannot shadow it
            purelib = sysconfig.get_paths()["purelib"]
            old = ["env", f"PYTHONPATH={args.before}:{purelib}", sys.executable, "-S", "-P",
                   "-m", "station"]  # fmt: skip
            sides["before: station disc build"] = [
                *old, "disc", "build", CASE, "--media", "dvd", "--out", str(out_st), "--json",
            ]  # fmt: skip
        print(f"start {time.strftime('%H:%M:%S', time.gmtime())} UTC, load {load_average()}")
        res = alternate(sides, args.rounds, cold=True, env=env, before=clean)
        print(f"disc build of a {args.gib:g} GiB case in {args.files} files, {args.rounds} rounds,"
              " cold cache, alternated")  # fmt: skip
        base = "genisoimage ×2 + 7zz t"
        for side in sides:
            print(res.line(side, base))
        print(f"end {time.strftime('%H:%M:%S', time.gmtime())} UTC, load {load_average()}")
        floor_ratio = res.ratio("station disc build", "floor: genisoimage ×2 + both read")
        print(f"station disc build: {floor_ratio:.2f} × the floor (the same tools reading both"
              " copies back from the shell)")  # fmt: skip
        r = res.ratio("station disc build", base)
        rss = max(res.rss_mb["station disc build"])
        ok = r <= GOAL and rss < 100
        print(f"station disc build: {r:.2f} × baseline (goal ≤ {GOAL}), peak RSS {rss:.0f} MB "
              f"(goal < 100) — {'meets' if ok else 'MISSES'}")  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
