"""Inbox benchmark: an inbox drop against ``ingest_files`` on equal files, same run.

    .venv/bin/python bench/inbox.py [--files 16] [--size-mb 16] [--small 2000] [--repeat 2]
                                    [--settle 0.2] [--idle-seconds 30] [--dir /tmp]

- baseline ("dock"): ``ingest_files`` called directly on a folder of files (what a dock
  session does once its volume is mounted);
- inbox: the same number and size of files (other random content, so both are new to the
  vault) moved into a watched inbox folder with one rename, timed from the rename until the
  drop's row says ``done`` — settle time, watcher, ingest, removal of the verified sources and
  the drop's own catalog rows included;
- idle: the service watching an empty inbox; process CPU time over ``--idle-seconds`` and
  the kernel's count of context switches of the service's threads (0 = never woke up).

Caches are dropped before every timed run (root). The machine is shared: figures are ratios
within one run, median of ``--repeat`` alternating runs (and their spread).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import drop_caches


def make_files(root: Path, count: int, size: int) -> list[Path]:
    out = []
    block = bytearray(os.urandom(1 << 20))
    for i in range(count):
        p = root / "DCIM" / f"{i // 500:03d}" / f"CAM_{i:05d}.MP4"
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "wb") as f:
            left = size
            block[:16] = os.urandom(16)  # every file different
            while left > 0:
                n = min(left, len(block))
                f.write(block[:n])
                left -= n
                block[16:32] = os.urandom(16)
        out.append(p)
    os.sync()
    return out


def baseline(home: Path, src: Path, clear: bool) -> float:
    from station.catalog import open_catalog
    from station.ingest import IngestContext, ingest_files
    from station.vault import Vault

    vault = Vault(home)
    db = open_catalog(vault.catalog_path)
    files = sorted(p for p in src.rglob("*") if p.is_file())
    drop_caches()
    t0 = time.perf_counter()
    rep = ingest_files(
        vault,
        db,
        vault.settings(),
        files,
        src,
        IngestContext(kind="cli", officer_id="123456"),
        actor="bench",
    )
    if clear:  # a dock clears the verified files from the recorder (DESIGN invariant 2)
        for p in rep.verified_sources():
            os.unlink(p)
    dt = time.perf_counter() - t0
    assert rep.ok and rep.count("new") == len(files), rep.summary()
    db.close()
    return dt


def inbox_run(home: Path, inbox: Path, src: Path, name: str, settle: float) -> tuple[float, float]:
    """Seconds from the rename to ``done``; and the session's own ingest seconds."""
    from station.catalog import open_catalog
    from station.inbox.service import InboxService
    from station.timeutil import parse_iso
    from station.vault import Vault

    vault = Vault(home)
    settings = vault.settings()
    (src / "station.json").write_text('{"officer": "123456", "device": "CAM-1"}')
    nfiles = sum(1 for p in src.rglob("*.MP4"))
    svc = InboxService(vault, settings, actor="bench")
    svc.start()
    db = open_catalog(vault.catalog_path)
    try:
        assert svc.wait_idle(30)
        drop_caches()
        t0 = time.perf_counter()
        os.rename(src, inbox / name)
        while True:
            row = db.execute(
                "select state, session_id, files_new from inbox_drops where name = ?"
                " order by id desc limit 1",
                [name],
            ).fetchone()
            if row and row[0] in ("done", "partial"):
                break
            time.sleep(0.005)
        dt = time.perf_counter() - t0
        assert row[0] == "done" and row[2] == nfiles, row
        s = db.execute(
            "select started_at, ended_at from sessions where id = ?", [row[1]]
        ).fetchone()
        session_s = (parse_iso(s[1]) - parse_iso(s[0])).total_seconds()
    finally:
        svc.stop()
        db.close()
    return dt, session_s


def idle(home: Path, inbox: Path, seconds: float) -> dict[str, float]:
    from station.inbox.service import InboxService
    from station.vault import Vault

    vault = Vault(home)
    before = set(os.listdir("/proc/self/task"))
    svc = InboxService(vault, vault.settings(), actor="bench")
    svc.start()
    try:
        assert svc.wait_idle(30)
        time.sleep(0.5)
        ours = set(os.listdir("/proc/self/task")) - before

        def switches() -> int:
            total = 0
            for t in ours:
                try:
                    text = Path(f"/proc/self/task/{t}/status").read_text()
                except OSError:
                    continue
                total += sum(int(x.split()[1]) for x in text.splitlines() if "ctxt" in x)
            return total

        def ticks() -> int:  # utime + stime of the service's threads only
            total = 0
            for t in ours:
                try:
                    fields = Path(f"/proc/self/task/{t}/stat").read_text().rsplit(")", 1)[1]
                except OSError:
                    continue
                total += int(fields.split()[11]) + int(fields.split()[12])
            return total

        c0, s0, w0 = ticks(), switches(), time.perf_counter()
        time.sleep(seconds)
        c1, s1, w1 = ticks(), switches(), time.perf_counter()
    finally:
        svc.stop()
    cpu = (c1 - c0) / os.sysconf("SC_CLK_TCK")
    return {
        "seconds": round(w1 - w0, 1),
        "cpu_s": round(cpu, 4),
        "cpu_pct_of_core": round(100 * cpu / (w1 - w0), 4),
        "service_threads": len(ours),
        "context_switches": s1 - s0,
    }


def scenario(
    base: Path, label: str, count: int, size: int, repeat: int, settle: float, after: str
) -> dict[str, object]:
    from station.catalog import open_catalog
    from station.vault import Vault

    label = f"{label}-{after}"

    home = base / f"home-{label}"
    inbox = base / f"inbox-{label}"
    inbox.mkdir()
    vault = Vault(home)
    vault.init()
    vault.settings_path.write_text(
        f'[inbox]\nfolders = ["{inbox}"]\nsettle_seconds = {settle}\n'
        f'after_verify = "{after}"\n[transcode]\nprofile = "off"\n'
    )
    open_catalog(vault.catalog_path).close()
    bases, inboxes, sessions = [], [], []
    for r in range(repeat):
        src = base / f"src-{label}-{r}"
        make_files(src, count, size)
        bases.append(baseline(home, src, clear=after == "remove"))
        shutil.rmtree(src)
        drop = base / f"drop-{label}-{r}"
        make_files(drop, count, size)
        t, session_s = inbox_run(home, inbox, drop, f"drop-{r}", settle)
        inboxes.append(t)
        sessions.append(session_s)
    best_base, best_inbox = statistics.median(bases), statistics.median(inboxes)
    best_session = statistics.median(sessions)
    mb = count * size / 1e6
    return {
        "scenario": label,
        "baseline": "ingest_files" + (" + clear verified" if after == "remove" else ""),
        "files": count,
        "mb": round(mb, 1),
        "baseline_s": round(best_base, 3),
        "inbox_s": round(best_inbox, 3),
        "inbox_session_s": round(best_session, 3),
        "settle_s": settle,
        "baseline_mb_s": round(mb / best_base, 1),
        "inbox_mb_s": round(mb / best_inbox, 1),
        "throughput_ratio": round(best_base / best_inbox, 3),
        "throughput_ratio_without_settle": round(best_base / max(best_inbox - settle, 1e-9), 3),
        "baseline_spread_s": [round(min(bases), 3), round(max(bases), 3)],
        "inbox_spread_s": [round(min(inboxes), 3), round(max(inboxes), 3)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=16)
    ap.add_argument("--size-mb", type=float, default=16)
    ap.add_argument("--small", type=int, default=2000, help="count of 4 KiB files (0: skip)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--settle", type=float, default=0.2)
    ap.add_argument("--idle-seconds", type=float, default=30)
    ap.add_argument("--dir", default=None, help="where to work (default: a temp folder)")
    ap.add_argument("--after-verify", choices=["keep", "remove", "both"], default="both")
    args = ap.parse_args()

    from station import log

    log.configure("warning", json=True, stream=open(os.devnull, "w"))  # noqa: SIM115
    base = Path(tempfile.mkdtemp(prefix="bench-inbox-", dir=args.dir))
    results: list[dict[str, object]] = []
    try:
        modes = ["keep", "remove"] if args.after_verify == "both" else [args.after_verify]
        for after in modes:
            size = int(args.size_mb * 1e6)
            results.append(
                scenario(base, "large", args.files, size, args.repeat, args.settle, after)
            )
            if args.small:
                results.append(
                    scenario(base, "small", args.small, 4096, args.repeat, args.settle, after)
                )
        if args.idle_seconds > 0:
            label = f"large-{modes[0]}"
            results.append(
                {
                    "scenario": "idle",
                    **idle(base / f"home-{label}", base / f"inbox-{label}", args.idle_seconds),
                }
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    for r in results:
        print(json.dumps(r, ensure_ascii=False))


if __name__ == "__main__":
    main()
