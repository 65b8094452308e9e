"""Transcode benchmark. Every figure is a ratio against a baseline of the same run.

    sudo .venv/bin/python bench/transcode.py [--size-mb 1024] [--encode-seconds 20]
                                             [--ingest-mb 1024] [--reps 3] [--skip-ingest]
                                             [--dir /tmp]

1. Re-wrap of a large H.264/AAC MP4 (index at the end, as recorders write it) against a plain
   ``cp`` + ``sync`` of the same file: the bare ffmpeg pass (with the original's stream hashes
   taken in the same pass), and the whole job (probe, re-wrap, fsync, evict, read-back stream
   hash of the derivative, its SHA-256, rename, catalog + audit) — the job also against a
   "verified copy" (copy, fsync, evict, read back + SHA-256). Goal ≤ 1.5 × cp.
2. Re-encode throughput: a 1080p MJPEG/PCM AVI through the whole mp4-h264 job (x264 veryfast),
   as a multiple of real time, and against a plain ffmpeg x264 run at normal priority.
3. Ingest while transcoding: the real ingest engine on a folder of files, alone, then while the
   TranscodeService (its own worker process, nice 10, I/O class idle) re-encodes a long clip,
   while it re-wraps the large MP4, and while it re-wraps with the service paused for the ingest
   (what the daemon does for a dock session). Goal ≥ 90 % of the throughput alone.
4. An idle TranscodeService: CPU seconds it uses in 10 s.

Caches are dropped before every timed run; each run is a child process. The machine is shared:
treat single figures as noisy, the ratios as the result.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import drop_caches, run_child

PY = sys.executable
ROOT = Path(__file__).resolve().parent.parent
FF = shutil.which("ffmpeg") or "ffmpeg"


def ff(*args: str) -> None:
    subprocess.run([FF, "-nostdin", "-v", "error", "-y", *args], check=True)


# -- inputs ---------------------------------------------------------------------------------------


def make_big_mp4(path: Path, size_mb: int, work: Path) -> None:
    clip = work / "clip10s.mp4"
    ff("-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=10",
       "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=10",
       "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "40M", "-c:a", "aac",
       str(clip))  # fmt: skip
    loops = max(0, -(-size_mb * 1_000_000 // clip.stat().st_size) - 1)
    ff("-stream_loop", str(loops), "-i", str(clip), "-c", "copy", str(path))
    clip.unlink()


def make_avi(path: Path, seconds: int) -> None:
    ff("-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds}",
       "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
       "-c:v", "mjpeg", "-q:v", "4", "-c:a", "pcm_s16le", str(path))  # fmt: skip


def make_ingest_folder(root: Path, total_mb: int, files: int = 4) -> None:
    root.mkdir(parents=True, exist_ok=True)
    block = bytearray(os.urandom(1 << 20))
    per = total_mb // files
    for i in range(files):
        with open(root / f"DSJ0009_100009_20261120{9 + i:02d}0000_{i:04d}.BIN", "wb") as f:
            for j in range(per):
                block[:8] = (i * 100000 + j).to_bytes(8, "little")
                f.write(block)


def new_vault(home: Path, originals: list[Path], profile: str = "mp4-h264", nice: int = 10) -> None:
    """A vault whose catalog holds ``originals`` (hard-linked in, no copy) as recordings."""
    from station.catalog import open_catalog, write_txn
    from station.timeutil import to_iso, utcnow
    from station.vault import Vault

    vault = Vault(home)
    vault.init()
    vault.settings_path.write_text(f'[transcode]\nprofile = "{profile}"\nnice = {nice}\n')
    db = open_catalog(vault.catalog_path)
    for i, src in enumerate(originals):
        sha = f"{i:064x}"  # a stand-in identity: hashing GBs here would only slow the set-up
        ext = src.suffix.lstrip(".").lower()
        dest = vault.original_path(sha, ext)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.link(src, dest)
        with write_txn(db):
            db["recordings"].insert(  # type: ignore[union-attr]
                {
                    "sha256": sha,
                    "size": src.stat().st_size,
                    "ext": ext,
                    "media_kind": "video",
                    "vault_path": str(dest.relative_to(home)),
                    "original_name": src.name,
                    "original_path": str(src),
                    "ingested_at": to_iso(utcnow()),
                }
            )
    db.close()


# -- children (each timed run is its own process) ------------------------------------------------


def child_job(home: str) -> None:
    from station import log
    from station.catalog import open_catalog
    from station.transcode.service import run_once
    from station.vault import Vault

    log.configure("info", json=True, stream=sys.stdout)  # phase timings come with the log
    vault = Vault(Path(home))
    db = open_catalog(vault.catalog_path)
    summary = run_once(vault, db, vault.settings(), actor="bench")
    assert summary.done >= 1 and summary.failed == 0, summary.as_dict()


def child_verified_copy(src: str, dst: str) -> None:
    """The fair baseline for a verified job: copy, fsync, evict, read back and SHA-256 it."""
    import hashlib

    shutil.copyfile(src, dst)
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    h = hashlib.sha256()
    with open(dst, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    print(h.hexdigest())


def child_ingest(home: str, src: str) -> None:
    from station import log
    from station.catalog import open_catalog
    from station.ingest import IngestContext, ingest_volume
    from station.vault import Vault

    log.configure("warning", json=True, stream=open(os.devnull, "w"))  # noqa: SIM115
    vault = Vault(Path(home))
    vault.init()
    db = open_catalog(vault.catalog_path)
    rep = ingest_volume(
        vault, db, vault.settings(), Path(src), IngestContext(kind="cli"), actor="bench"
    )
    print(json.dumps(rep.summary()))


def child_service(home: str) -> None:
    """Run the TranscodeService until SIGTERM, as the daemon would."""
    import threading

    from station import log
    from station.transcode.service import TranscodeService
    from station.vault import Vault

    log.configure("warning", json=True)
    vault = Vault(Path(home))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    service = TranscodeService(vault, vault.settings())
    # what the daemon does around a dock session: pause on SIGUSR1, resume on SIGUSR2
    signal.signal(signal.SIGUSR1, lambda *_: service.pause())
    signal.signal(signal.SIGUSR2, lambda *_: service.resume())
    service.start()
    service.wake()
    stop.wait()
    service.stop(timeout=30)


def me(*args: str) -> list[str]:
    return [PY, str(Path(__file__).resolve()), *args]


def running_jobs(home: Path) -> int:
    import sqlite3

    con = sqlite3.connect(home / "catalog.sqlite", timeout=30)
    try:
        return int(
            con.execute("select count(*) from derivatives where state='running'").fetchone()[0]
        )
    finally:
        con.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / ticks


# -- the benchmark --------------------------------------------------------------------------------


def bench_rewrap(work: Path, size_mb: int, reps: int) -> dict[str, object]:
    """Interleaved repetitions of each variant; medians, and each rep's ratios."""
    from station.transcode.plan import build_command, choose_method
    from station.transcode.probe import parse_probe

    big = work / "big.mp4"
    make_big_mp4(big, size_mb, work)
    size = big.stat().st_size
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
         str(big)], check=True, capture_output=True,
    )  # fmt: skip
    method = choose_method("mp4-h264", parse_probe(json.loads(probe.stdout)))
    aux = work / "aux"
    aux.mkdir(exist_ok=True)
    cmd = build_command(FF, method, big, work / "rewrap.mp4", aux, {"station_id": "BENCH"})
    copy = work / "copy.mp4"
    home = work / "home-rewrap"
    keys = ("cp", "verified_cp", "ffmpeg", "job", "job_nice0", "job_work", "job_nice0_work")
    t: dict[str, list[float]] = {k: [] for k in keys}
    last_phases: dict[str, dict[str, float]] = {}
    for _ in range(reps):
        drop_caches()
        t["cp"].append(
            run_child(["sh", "-c", f"cp {shlex.quote(str(big))} {copy} && sync {copy}"]).seconds
        )
        copy.unlink()
        drop_caches()
        t["verified_cp"].append(run_child(me("--child-verified-copy", str(big), str(copy))).seconds)
        copy.unlink()
        drop_caches()
        t["ffmpeg"].append(
            run_child(["sh", "-c", f"{shlex.join(cmd.argv)} && sync {work}/rewrap.mp4"]).seconds
        )
        (work / "rewrap.mp4").unlink()
        for key, nice in (("job", 10), ("job_nice0", 0)):
            new_vault(home, [big], nice=nice)
            drop_caches()
            run = run_child(me("--child-job", str(home)))
            t[key].append(run.seconds)
            last_phases[key] = phases(run.output)
            # the job's own phases, without the child process's start-up (imports, finding
            # ffmpeg), which a long-lived worker pays once for many jobs
            t[f"{key}_work"].append(sum(last_phases[key].values()))
            shutil.rmtree(home)
    med = {k: median(v) for k, v in t.items()}
    return {
        "file_mb": round(size / 1e6, 1),
        "runs_s": {k: [round(x, 2) for x in v] for k, v in t.items()},
        "median_s": {k: round(v, 2) for k, v in med.items()},
        "cp_mb_per_s": round(size / 1e6 / med["cp"], 1),
        "ffmpeg_vs_cp": round(med["ffmpeg"] / med["cp"], 2),
        "job_vs_cp": round(med["job"] / med["cp"], 2),
        "job_vs_verified_cp": round(med["job"] / med["verified_cp"], 2),
        "job_nice0_vs_cp": round(med["job_nice0"] / med["cp"], 2),
        "job_nice0_vs_verified_cp": round(med["job_nice0"] / med["verified_cp"], 2),
        "job_work_vs_cp": round(med["job_work"] / med["cp"], 2),
        "job_nice0_work_vs_cp": round(med["job_nice0_work"] / med["cp"], 2),
        "job_nice0_work_vs_verified_cp": round(med["job_nice0_work"] / med["verified_cp"], 2),
        "ffmpeg_vs_cp_per_rep": [
            round(f / c, 2) for f, c in zip(t["ffmpeg"], t["cp"], strict=True)
        ],
        "job_nice0_vs_verified_cp_per_rep": [
            round(j / v, 2) for j, v in zip(t["job_nice0"], t["verified_cp"], strict=True)
        ],
        "last_phases_s": last_phases,
    }


def bench_reencode(work: Path, seconds: int) -> dict[str, object]:
    avi = work / "enc.avi"
    make_avi(avi, seconds)
    drop_caches()
    plain = run_child(
        [FF, "-nostdin", "-v", "error", "-y", "-i", str(avi), "-c:v", "libx264", "-preset",
         "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-c:a", "aac", str(work / "plain.mp4")]
    )  # fmt: skip
    (work / "plain.mp4").unlink()
    home = work / "home-reencode"
    new_vault(home, [avi])
    drop_caches()
    job = run_child(me("--child-job", str(home)))
    shutil.rmtree(home)
    new_vault(home, [avi], nice=0)  # same priority as the plain run
    drop_caches()
    job0 = run_child(me("--child-job", str(home)))
    shutil.rmtree(home)
    return {
        "clip_s": seconds,
        "reencode_job_s": round(job.seconds, 2),
        "reencode_x_realtime": round(seconds / job.seconds, 2),
        "plain_x264_s": round(plain.seconds, 2),
        "plain_x264_x_realtime": round(seconds / plain.seconds, 2),
        "reencode_job_vs_plain_x264": round(job.seconds / plain.seconds, 2),
        "reencode_job_phases_s": phases(job.output),
        "reencode_job_nice0_s": round(job0.seconds, 2),
        "reencode_job_nice0_x_realtime": round(seconds / job0.seconds, 2),
        "reencode_job_nice0_vs_plain_x264": round(job0.seconds / plain.seconds, 2),
        "reencode_job_nice0_phases_s": phases(job0.output),
    }


def phases(output: str) -> dict[str, float]:
    for line in output.splitlines():
        if '"transcode.derivative_created"' in line:
            return dict(json.loads(line)["seconds"])
    return {}


def median(values: list[float]) -> float:
    """The median (of two values, their mean — not the larger one)."""
    return statistics.median(values)


def ingest_once(work: Path, src: Path, tag: str) -> float:
    home = work / f"home-ingest-{tag}"
    drop_caches()
    run = run_child(me("--child-ingest", str(home), str(src)))
    summary = json.loads(run.output.strip().splitlines()[-1])
    assert summary["new"] == summary["files"], summary
    shutil.rmtree(home)
    return float(summary["bytes"]) / 1e6 / run.seconds


def ingest_while(work: Path, src: Path, busy: Path, tag: str, pause: bool = False) -> float:
    """Ingest throughput while the TranscodeService works on ``busy`` (in its own process);
    with ``pause`` the service is paused for the ingest, as the daemon does for a dock session."""
    home = work / f"home-busy-{tag}"
    new_vault(home, [busy])
    service = subprocess.Popen(me("--child-service", str(home)))
    try:
        deadline = time.monotonic() + 120
        while running_jobs(home) == 0:
            if time.monotonic() > deadline:
                raise RuntimeError("the transcode job never started")
            time.sleep(0.2)
        time.sleep(1.0)  # let ffmpeg get going
        if pause:
            service.send_signal(signal.SIGUSR1)
        rate = ingest_once(work, src, tag)
        if pause:
            service.send_signal(signal.SIGUSR2)
        still = running_jobs(home)
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=120)
        shutil.rmtree(home)
    if not still:
        print(f"warning: the {tag} job ended before the ingest did; the figure is optimistic")
    return rate


def bench_idle(work: Path) -> dict[str, float]:
    home = work / "home-idle"
    new_vault(home, [])
    service = subprocess.Popen(me("--child-service", str(home)))
    try:
        time.sleep(3.0)  # start-up: imports, finding ffmpeg
        before = cpu_seconds(service.pid)
        time.sleep(10.0)
        used = cpu_seconds(service.pid) - before
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=60)
        shutil.rmtree(home)
    return {"idle_cpu_s_per_10s": round(used, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=1024, help="re-wrap test file (default 1024)")
    ap.add_argument("--encode-seconds", type=int, default=20, help="1080p clip to re-encode")
    ap.add_argument("--ingest-mb", type=int, default=1024, help="data ingested per ingest run")
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--reps", type=int, default=3, help="runs per variant, interleaved (medians)")
    ap.add_argument("--dir", default=None, help="scratch folder (default: the system temp)")
    ap.add_argument("--child-job", help=argparse.SUPPRESS)
    ap.add_argument("--child-ingest", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--child-verified-copy", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--child-service", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_job:
        return child_job(args.child_job)
    if args.child_ingest:
        return child_ingest(*args.child_ingest)
    if args.child_verified_copy:
        return child_verified_copy(*args.child_verified_copy)
    if args.child_service:
        return child_service(args.child_service)

    work = Path(tempfile.mkdtemp(prefix="bench-transcode-", dir=args.dir))
    results: dict[str, object] = {"cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()[0]}
    try:
        results["rewrap"] = bench_rewrap(work, args.size_mb, args.reps)
        print(json.dumps(results["rewrap"]), flush=True)
        results["reencode"] = bench_reencode(work, args.encode_seconds)
        print(json.dumps(results["reencode"]), flush=True)
        results["idle"] = bench_idle(work)
        print(json.dumps(results["idle"]), flush=True)
        if not args.skip_ingest:
            src = work / "ingest-src"
            make_ingest_folder(src, args.ingest_mb)
            longclip = work / "long.avi"
            ff("-stream_loop", "9", "-i", str(work / "enc.avi"), "-c", "copy", str(longclip))
            runs: dict[str, list[float]] = {
                k: [] for k in ("alone", "reencode", "rewrap", "paused")
            }
            for _ in range(args.reps):  # interleaved, medians: the machine is shared and noisy
                runs["alone"].append(ingest_once(work, src, "alone"))
                runs["reencode"].append(ingest_while(work, src, longclip, "reencode"))
                runs["rewrap"].append(ingest_while(work, src, work / "big.mp4", "rewrap"))
                runs["paused"].append(
                    ingest_while(work, src, work / "big.mp4", "paused", pause=True)
                )
            base = median(runs["alone"])
            results["ingest"] = {
                "runs_mb_s": {k: [round(v, 1) for v in vs] for k, vs in runs.items()},
                "alone_median_mb_s": round(base, 1),
                "while_reencode_ratio": round(median(runs["reencode"]) / base, 2),
                "while_rewrap_ratio": round(median(runs["rewrap"]) / base, 2),
                "while_rewrap_paused_ratio": round(median(runs["paused"]) / base, 2),
            }
            print(json.dumps(results["ingest"]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["load_avg_at_end"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
