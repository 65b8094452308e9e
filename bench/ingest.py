"""Ingest benchmark: verified ingest against the naive verified copy, same run.

    sudo .venv/bin/python bench/ingest.py [--size-mb 2048] [--files 8] [--rate 35000000]
                                          [--small 10000] [--rounds 3] [--skip-throttled]
                                          [--skip-small] [--work DIR]

Every scenario runs its sides alternated round by round (``bench.harness.alternate``: the order
flips every round), caches dropped before every run; medians, spreads and the median of the
per-round ratios are printed.

The source volume is an ext4 file system on a loop device; for the USB 2.0 case its reads are
throttled with the cgroup v1 blkio controller. Caches are dropped before every run. Each run is a
child process, so its time and peak RSS are its own.

- naive verified copy: ``cp -r SRC DST``, caches dropped, ``openssl dgst -sha256`` of every
  source file and every copy;
- station ingest: one read of the source while hashing, fsync, evict, re-read from disk to
  verify, rename, catalog commit;
- copy phase: the station ingest with ``verify_after_write = false``, against ``cp -r`` + ``sync``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import alternate, load_average, loop_fs, need_root, throttle

PY = sys.executable


def child(home: str, src: str, verify: str) -> None:
    from station import log
    from station.catalog import open_catalog
    from station.ingest import IngestContext, ingest_volume
    from station.vault import Vault

    log.configure("info", json=True, stream=open(os.devnull, "w"))  # noqa: SIM115 (daemon-like)
    vault = Vault(Path(home))
    vault.init()
    if verify == "noverify":
        vault.settings_path.write_text(
            "[ingest]\nverify_after_write = false\n"
            '[dock]\nclear_policy = "off"\n'
            '[inbox]\nafter_verify = "keep"\n'
        )
    db = open_catalog(vault.catalog_path)
    rep = ingest_volume(
        vault, db, vault.settings(), Path(src), IngestContext(kind="cli"), actor="bench"
    )
    assert rep.ok, rep.summary()
    print(json.dumps(rep.summary()))


def make_files(root: Path, count: int, size: int) -> None:
    block = bytearray(os.urandom(1 << 20))
    for i in range(count):
        d = root / f"D{i // 1000:03d}"
        d.mkdir(parents=True, exist_ok=True)
        with open(d / f"F{i:05d}.MP4", "wb") as f:
            left, off = size, 0
            while left > 0:
                n = min(left, len(block))
                block[:16] = f"{i:08d}{off:08d}".encode()[:16]
                f.write(block[:n])
                left -= n
                off += 1


def naive_cmd(src: Path, dst: Path) -> list[str]:
    # openssl uses the CPU's SHA code paths (coreutils sha256sum does not: ~160 MB/s here);
    # caches dropped after the copy, so both hashes read from the disks as the station's do
    return [
        "sh",
        "-c",
        f'cp -r "{src}" "{dst}" && sync && echo 3 > /proc/sys/vm/drop_caches && '
        f'find "{src}" -type f -print0 | xargs -0 openssl dgst -sha256 >/dev/null && '
        f'find "{dst}" -type f -print0 | xargs -0 openssl dgst -sha256 >/dev/null',
    ]


def station_cmd(src: Path, home: Path, verify: bool = True) -> list[str]:
    return [PY, __file__, "--child", str(home), str(src), "verify" if verify else "noverify"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--rate", type=int, default=35_000_000)
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3, help="alternated rounds per scenario")
    ap.add_argument("--skip-throttled", action="store_true")
    ap.add_argument("--skip-small", action="store_true")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temp dir)")
    ap.add_argument("--child", nargs=3)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    need_root()
    # a folder given by --work is made if missing; only what this run put there is removed
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    total = args.size_mb << 20
    results: dict[str, object] = {
        "size_mb": args.size_mb,
        "files": args.files,
        "rounds": args.rounds,
        "load_before": load_average(),
    }
    src_mnt = work / "src"
    img_size = total + args.small * 80 * 1024 + (256 << 20)
    outs = ("home", "home-c", "naive", "cp")

    def clean(_side: str) -> None:
        for d in outs:
            shutil.rmtree(work / d, ignore_errors=True)

    with loop_fs(work / "src.img", img_size, src_mnt) as loop:
        big = src_mnt / "big"
        make_files(big, args.files, total // args.files)
        small = src_mnt / "small"
        if not args.skip_small:
            make_files(small, args.small, 64 * 1024)
        if not args.skip_throttled:
            with throttle("station-bench-ingest", loop, args.rate) as procs:
                pr = alternate(
                    {
                        "station ingest": station_cmd(big, work / "home"),
                        "cp + openssl both sides": naive_cmd(big, work / "naive"),
                    },
                    args.rounds,
                    before=clean,
                    procs=procs,
                )
            base = "cp + openssl both sides"
            st = pr.median("station ingest")
            results["throttled"] = {
                "throttle_MBps": args.rate / 1e6,
                "station_MBps": round(total / st / 1e6, 1),
                "station_pct_of_throttle": round(100 * total / st / args.rate, 1),
                "naive_MBps": round(total / pr.median(base) / 1e6, 1),
                "station_over_naive": round(pr.ratio("station ingest", base), 3),
                "station_peak_rss_mb": round(max(pr.rss_mb["station ingest"]), 1),
            }
            for side in pr.seconds:
                print(pr.line(side, base), flush=True)
            print(json.dumps(results["throttled"]), flush=True)
        for label, src in (("unthrottled_big", big), ("unthrottled_small", small)):
            if label.endswith("small") and args.skip_small:
                continue
            pr = alternate(
                {
                    "station ingest": station_cmd(src, work / "home"),
                    "station copy phase (no verify)": station_cmd(src, work / "home-c", False),
                    "cp + openssl both sides": naive_cmd(src, work / "naive"),
                    "cp + sync": ["sh", "-c", f'cp -r "{src}" "{work / "cp"}" && sync'],
                },
                args.rounds,
                before=clean,
            )
            results[label] = {
                "station_s": round(pr.median("station ingest"), 2),
                "naive_s": round(pr.median("cp + openssl both sides"), 2),
                "station_over_naive": round(
                    pr.ratio("station ingest", "cp + openssl both sides"), 3
                ),
                "copy_phase_s": round(pr.median("station copy phase (no verify)"), 2),
                "cp_sync_s": round(pr.median("cp + sync"), 2),
                "copy_phase_over_cp_sync": round(
                    pr.ratio("station copy phase (no verify)", "cp + sync"), 3
                ),
                "station_peak_rss_mb": round(max(pr.rss_mb["station ingest"]), 1),
            }
            print(label, flush=True)
            for side in pr.seconds:
                print(pr.line(side, "cp + openssl both sides"), flush=True)
            print(json.dumps({label: results[label]}), flush=True)
        clean("")
    (work / "src.img").unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        src_mnt.rmdir()
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    results["load_after"] = load_average()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
