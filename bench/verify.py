"""Benchmark of ``station verify`` and of the audit log.

1. ``station verify --json`` — the command a user runs, a child process that opens the catalog
   itself — against ``openssl dgst -sha256`` over the same files (one process: the baseline;
   and ``xargs -P2``, the two-core one), in the same run: sides alternated round by round (the
   order flips every round), the page cache dropped before every timed run of either side
   (root: ``bench/harness.py``), median and spread of ``--repeat`` rounds (≥ 3), each run's
   peak RSS, and the load average before and after. ``sha256sum`` (coreutils, no SHA
   instructions here) is left out: it flatters whatever it is compared with.
2. Appending audit entries (``--entries``, default 100,000, ``--batch`` per transaction), then
   the chain check, the tree root, a checkpoint, and a consistency proof from half the log to
   all of it (make + verify). Also the rate of one entry per transaction over a short run.

    python bench/verify.py                 # small default: 24 files × 8 MiB, 100,000 entries
    python bench/verify.py --files 40 --mib 64 --repeat 5 --skip-audit
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from station import log as station_log
from station.audit import append, checkpoint, merkle
from station.audit.seal import stored_recording_seal
from station.audit.tree import check_chain
from station.catalog import open_catalog, write_txn
from station.config import Settings
from station.vault import Vault


def drop_cache(paths: list[Path]) -> None:
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def make_vault(home: Path, files: int, mib: int) -> tuple[Vault, list[Path]]:
    vault = Vault(home)
    vault.init()
    db = open_catalog(vault.catalog_path)
    paths = []
    block = os.urandom(1 << 20)
    for i in range(files):
        h = hashlib.sha256()
        tmp = vault.staging / f"f{i}"
        with open(tmp, "wb") as f:
            for j in range(mib):
                chunk = hashlib.sha256(f"{i}:{j}".encode()).digest() + block[32:]
                f.write(chunk)
                h.update(chunk)
        sha = h.hexdigest()
        dst = vault.original_path(sha, "mp4")
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dst)
        os.chmod(dst, 0o444)
        row = {
            "sha256": sha,
            "size": mib << 20,
            "ext": "mp4",
            "media_kind": "video",
            "vault_path": str(dst.relative_to(home)),
            "original_name": f"F{i}.MP4",
            "original_path": f"DCIM/F{i}.MP4",
            "ingested_at": "2026-11-01T00:00:00.000000Z",
        }
        with write_txn(db):
            db.execute(
                "insert into recordings (sha256, size, ext, media_kind, vault_path,"
                " original_name, original_path, ingested_at) values (?,?,?,?,?,?,?,?)",
                list(row.values()),
            )
            append(
                db,
                "ingest.file_stored",
                actor="bench",
                subject=sha,
                data=stored_recording_seal(db, sha),
            )
        paths.append(dst)
    db.close()
    return vault, paths


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_files(args: argparse.Namespace, tmp: Path) -> None:
    from bench.harness import alternate, load_average, need_root

    need_root()
    home = tmp / "home"
    _vault, paths = make_vault(home, args.files, args.mib)
    total = args.files * args.mib
    listing = tmp / "files.txt"
    listing.write_text("".join(f"{p}\n" for p in paths))
    env = {**os.environ, "STATION_HOME": str(home)}
    sides = {
        "openssl dgst -sha256": ["openssl", "dgst", "-sha256", *map(str, paths)],
        "openssl dgst -sha256 -P2": [
            "sh", "-c", f"xargs -a {listing} -n 4 -P 2 openssl dgst -sha256 > /dev/null"
        ],
        "station verify --json": [sys.executable, "-m", "station", "verify", "--json"],
    }  # fmt: skip
    before = load_average()
    res = alternate(sides, max(3, args.repeat), cold=True, env=env)
    after = load_average()
    base = "openssl dgst -sha256"
    print(f"\n== full verify: {args.files} files × {args.mib} MiB = {total} MiB, "
          f"{max(3, args.repeat)} rounds alternated, page cache dropped before every run; "
          f"load average {before} → {after}")  # fmt: skip
    for side in sides:
        med = res.median(side)
        print(f"{res.line(side, base)}  {total / med:8.1f} MiB/s")
    print(
        f"station verify: {res.ratio('station verify --json', base):.2f} × openssl dgst, "
        f"{res.ratio('station verify --json', 'openssl dgst -sha256 -P2'):.2f} × openssl -P2"
    )


def bench_audit(args: argparse.Namespace, tmp: Path) -> None:
    vault = Vault(tmp / "audit-home")
    vault.init()
    db = open_catalog(vault.catalog_path)
    settings = Settings()
    n, batch = args.entries, args.batch

    def appends() -> None:
        for start in range(0, n, batch):
            with write_txn(db):
                for i in range(start, min(n, start + batch)):
                    append(db, "bench.event", actor="bench", subject=f"s{i}",
                           data={"i": i, "sha256": "ab" * 32, "note": "执法记录"})  # fmt: skip

    t_append = timed(appends)
    single = 500

    def one_per_txn() -> None:
        for i in range(single):
            with write_txn(db):
                append(db, "bench.single", actor="bench", data={"i": i})

    t_single = timed(one_per_txn)
    size = n + single
    result: dict[str, object] = {}
    t_chain = timed(lambda: result.update(chain=check_chain(db)))
    chain = result["chain"]
    assert not chain.problems and chain.entries == size  # type: ignore[attr-defined]
    leaves = chain.leaves  # type: ignore[attr-defined]
    t_root = timed(lambda: result.update(root=merkle.root(leaves)))
    t_cp = timed(lambda: checkpoint.make_checkpoint(vault, db, settings, full=True))
    with write_txn(db):
        for i in range(1000):
            append(db, "bench.more", actor="bench", data={"i": i})
    t_inc = timed(lambda: checkpoint.make_checkpoint(vault, db, settings))
    half = size // 2
    t_proof = timed(lambda: result.update(proof=merkle.consistency_proof(leaves, half)))
    old_root = merkle.root(leaves[:half])
    t_vproof = timed(
        lambda: result.update(
            ok=merkle.verify_consistency(half, size, result["proof"], old_root, result["root"])  # type: ignore[arg-type]
        )
    )
    assert result["ok"]
    t_cpcheck = timed(lambda: checkpoint.check_checkpoints(vault, db, settings, leaves))
    print(f"\n== audit log: {n} entries appended in transactions of {batch}")
    print(f"  append            {t_append:7.2f} s  {n / t_append:9.0f} entries/s")
    print(f"  append, 1 per txn {t_single:7.2f} s  {single / t_single:9.0f} entries/s "
          f"({single} entries, synchronous=FULL)")  # fmt: skip
    print(f"  chain check       {t_chain:7.2f} s  {size / t_chain:9.0f} entries/s ({size} entries)")
    print(f"  tree root         {t_root:7.3f} s")
    print(f"  checkpoint, full  {t_cp:7.2f} s  (whole chain + root + Ed25519 signature)")
    print(f"  checkpoint, incr. {t_inc:7.3f} s  (1,000 entries appended since the last one)")
    print(f"  consistency proof {t_proof:7.3f} s  ({half} -> {size}, "
          f"{len(result['proof'])} hashes), verify {t_vproof * 1000:.2f} ms")  # type: ignore[arg-type]  # fmt: skip
    print(f"  checkpoint check  {t_cpcheck:7.3f} s  (signature + prefix root)")
    db.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--files", type=int, default=24)
    ap.add_argument("--mib", type=int, default=8, help="size of each file in MiB")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=1000, help="audit entries per transaction")
    ap.add_argument("--skip-files", action="store_true")
    ap.add_argument("--skip-audit", action="store_true")
    ap.add_argument("--dir", help="work folder (default: a temporary one, removed after)")
    args = ap.parse_args()
    station_log.configure("error")
    print(f"cores available: {len(os.sched_getaffinity(0))}; shared machine: figures vary")
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        if not args.skip_files:
            bench_files(args, Path(d))
        if not args.skip_audit:
            bench_audit(args, Path(d))


if __name__ == "__main__":
    main()
