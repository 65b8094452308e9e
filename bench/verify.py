"""Benchmark of ``station verify`` and of the audit log.

1. Full verify of a vault against ``sha256sum`` of the same files, in the same run: the page
   cache is dropped for the files (posix_fadvise DONTNEED) before every timed pass, passes
   alternate, and the median of ``--repeat`` passes is compared. Also ``sha256sum`` on two
   processes (xargs -P2), the fair two-core baseline.
   ``sha256sum`` (coreutils) does not use the CPU's SHA instructions; ``openssl dgst -sha256``
   does, as Python's hashlib does: it is the stricter baseline and is reported too.
2. Appending audit entries (``--entries``, default 100,000, ``--batch`` per transaction), then
   the chain check, the tree root, a checkpoint, and a consistency proof from half the log to
   all of it (make + verify). Also the rate of one entry per transaction over a short run.

    python bench/verify.py                 # small default: 24 files × 8 MiB, 100,000 entries
    python bench/verify.py --files 40 --mib 64 --entries 200000
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
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
from station.verify import run_verify


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
    vault, paths = make_vault(tmp / "home", args.files, args.mib)
    total = args.files * args.mib
    listing = tmp / "files.txt"
    listing.write_text("".join(f"{p}\n" for p in paths))
    settings = Settings()
    db = open_catalog(vault.catalog_path)

    def sha256sum() -> None:
        subprocess.run(["sha256sum", *map(str, paths)], check=True, stdout=subprocess.DEVNULL)

    def sha256sum_p2() -> None:
        subprocess.run(
            f"xargs -a {listing} -n 4 -P 2 sha256sum > /dev/null", shell=True, check=True
        )

    def openssl() -> None:
        subprocess.run(
            ["openssl", "dgst", "-sha256", *map(str, paths)], check=True, stdout=subprocess.DEVNULL
        )

    def openssl_p2() -> None:
        subprocess.run(
            f"xargs -a {listing} -n 4 -P 2 openssl dgst -sha256 > /dev/null", shell=True, check=True
        )

    def station_verify() -> None:
        report = run_verify(vault, db, settings)
        assert report.ok and report.files_checked == len(paths), report.counts()

    fns = {
        "sha256sum": sha256sum,
        "sha256sum -P2": sha256sum_p2,
        "openssl dgst": openssl,
        "openssl dgst -P2": openssl_p2,
        "station verify": station_verify,
    }
    if shutil.which("openssl") is None:
        del fns["openssl dgst"], fns["openssl dgst -P2"]
    runs: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(args.repeat):
        for name, fn in fns.items():
            drop_cache(paths)
            runs[name].append(timed(fn))
    base = statistics.median(runs["sha256sum"])
    print(f"\n== full verify: {args.files} files × {args.mib} MiB = {total} MiB, "
          f"median of {args.repeat}, page cache dropped before each pass")  # fmt: skip
    for name, times in runs.items():
        med = statistics.median(times)
        print(f"  {name:16s} {med:7.3f} s  {total / med:8.1f} MiB/s  ratio {med / base:5.2f}×")
    db.close()


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
