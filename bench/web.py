"""Screens benchmark: what the kiosk's status stream costs with 8 busy slots, the
kiosk's page weight, its first paint.

    sudo .venv/bin/python bench/web.py [--recorders 8] [--size-mb 40] [--rate 4000000]
        [--clients 3] [--only stream,page]

- stream: the real daemon (``station run`` under umockdev-wrapper) with ``--recorders``
  simulated recorders docked at once, each exFAT loop device throttled to ``--rate`` bytes/s
  (cgroup v1 blkio), so every slot is busy for ``size/rate`` seconds.
  Run A, the baseline: the daemon without its web server; beside it ``station web`` (the same
  web code in a process of its own) on the same home with ``--clients`` kiosks connected
  (server-sent events): its CPU over the busy window is the stream's cost, compared with the
  daemon's own CPU in the same window. Run B: the daemon serving the screens itself
  (``web.listen``) with the same clients; its CPU against run A's daemon. Goal: the stream
  costs under 2 % of one core.
- page: the kiosk's bytes (HTML, CSS, JS) and, in Debian's Chromium, first paint and first
  contentful paint (``performance.getEntriesByType('paint')``) and the time to the first tile.

Machines are shared: read the ratios, not the absolute figures. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.dock import SECRET, all_safe, blkio_group, fill, make_home, wait
from bench.harness import drop_caches, need_root
from station.recorder.simulator import SimConfig
from station_testbed.dockbed import REPO, DockBed, exfat_loop, sim_recorder

HZ = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


class Kiosks:
    """``n`` kiosk clients on the status stream (httpx, one thread each); counts events."""

    def __init__(self, url: str, n: int) -> None:
        self.url, self.stop, self.events = url, threading.Event(), [0] * n
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(n)]
        for t in self.threads:
            t.start()

    def _run(self, i: int) -> None:
        import httpx

        while not self.stop.is_set():
            with (
                contextlib.suppress(httpx.HTTPError),
                httpx.stream("GET", self.url, timeout=5) as r,
            ):
                for line in r.iter_lines():
                    if line.startswith("event: status"):
                        self.events[i] += 1
                    if self.stop.is_set():
                        return
            time.sleep(0.2)

    def close(self) -> list[int]:
        self.stop.set()
        for t in self.threads:
            t.join(10)
        return self.events


def one_run(tmp: Path, n: int, size_mb: int, rate: int, clients: int, in_daemon: bool) -> dict:
    devices = [f"ZFY{i:04d}" for i in range(1, n + 1)]
    vault = make_home(tmp, devices, clear=False)
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/status/stream"
    with contextlib.ExitStack() as stack:
        loops = {}
        for i, dev in enumerate(devices):
            src = fill(tmp / f"v{i}", dev, f"{100001 + i}", size_mb)
            loops[dev] = stack.enter_context(exfat_loop(tmp, src, size_mb=size_mb + 32))
            subprocess.run(["rm", "-rf", str(src)], check=True)
        sims = {
            dev: stack.enter_context(
                sim_recorder(SimConfig(serial=dev, officer_id=f"{100001 + i}", secret=SECRET))
            )
            for i, dev in enumerate(devices)
        }
        procs = stack.enter_context(blkio_group("station-bench-web", list(loops.values()), rate))
        bed = DockBed(vault.home, tmp, watchdog_s=30,
                      web_listen=f"127.0.0.1:{port}" if in_daemon else "")  # fmt: skip
        stack.callback(bed.close)
        procs.write_text(str(bed.proc.pid))
        bed.start()
        bed.notifications("READY=1")
        daemon = int(bed.status()["pid"])  # type: ignore[call-overload]
        web_pid = None
        if not in_daemon:
            env = dict(os.environ, PYTHONPATH=str(REPO))
            web = subprocess.Popen(
                [sys.executable, "-m", "station", "--home", str(vault.home), "web", "--json",
                 "--listen", f"127.0.0.1:{port}"],
                stdout=subprocess.PIPE, text=True, env=env,
            )  # fmt: skip
            stack.callback(lambda: (web.terminate(), web.wait(15)))
            assert web.stdout is not None
            web.stdout.readline()
            web_pid = web.pid
        kiosks = Kiosks(url, clients)
        stack.callback(kiosks.close)
        time.sleep(2)
        drop_caches()
        d0, w0, t0 = cpu_s(daemon), cpu_s(web_pid) if web_pid else 0.0, time.monotonic()
        for port_no, dev in enumerate(devices, start=1):
            bed.dock(port_no, sims[dev][1], loops[dev], usb_serial=dev)
        wait(all_safe(n), bed, timeout=900)
        d1, w1, t1 = cpu_s(daemon), cpu_s(web_pid) if web_pid else 0.0, time.monotonic()
        got = kiosks.close()
    window = t1 - t0
    out = {
        "busy_window_s": round(window, 1),
        "daemon_cpu_s": round(d1 - d0, 2),
        "daemon_cpu_pct_of_core": round(100 * (d1 - d0) / window, 2),
        "status_events_per_client": got,
    }
    if web_pid:
        out["web_cpu_s"] = round(w1 - w0, 3)
        out["web_cpu_pct_of_core"] = round(100 * (w1 - w0) / window, 3)
        out["web_vs_daemon"] = round((w1 - w0) / (d1 - d0), 4)
    return out


def bench_stream(base: Path, n: int, size_mb: int, rate: int, clients: int) -> dict[str, Any]:
    (base / "a").mkdir()
    (base / "b").mkdir()
    a = one_run(base / "a", n, size_mb, rate, clients, in_daemon=False)
    b = one_run(base / "b", n, size_mb, rate, clients, in_daemon=True)
    extra = b["daemon_cpu_s"] - a["daemon_cpu_s"]
    return {
        "recorders": n,
        "mb_each": size_mb,
        "rate_bytes_s": rate,
        "kiosk_clients": clients,
        "A_daemon_without_web_plus_separate_station_web": a,
        "B_daemon_serving_the_screens": b,
        "B_minus_A_daemon_cpu_pct_of_core": round(100 * extra / b["busy_window_s"], 2),
        "goal_stream_pct_of_core": 2.0,
    }


def bench_page(tmp: Path) -> dict[str, Any]:
    import httpx
    from playwright.sync_api import sync_playwright

    from station.catalog import open_catalog
    from station.status import StatusBoard
    from station.vault import Vault

    vault = Vault(tmp / "home")
    vault.init()
    open_catalog(vault.catalog_path).close()
    board = StatusBoard(vault.run / "status.json")
    board.set_state("ready")
    for i in range(8):
        board.update(f"1-{i + 1}", phase="copying", device_id=f"ZFY{i:04d}", officer_id="100001",
                     officer_name="张三", files_total=9, files_done=3, bytes_total=9 << 20,
                     bytes_done=3 << 20, battery_pct=80, drift_s=0.4)  # fmt: skip
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    web = subprocess.Popen(
        [sys.executable, "-m", "station", "--home", str(vault.home), "web", "--json",
         "--listen", f"127.0.0.1:{port}"], stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert web.stdout is not None
        web.stdout.readline()
        sizes = {
            path: len(httpx.get(base.rstrip("/") + path).content)
            for path in ("/", "/static/kiosk.css", "/static/kiosk.js")
        }
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            runs = []
            for _ in range(5):
                page = browser.new_page()
                t0 = time.perf_counter()
                page.goto(base)
                page.wait_for_selector("[data-slot]")
                tile_ms = (time.perf_counter() - t0) * 1000
                paint = page.evaluate(
                    "() => Object.fromEntries(performance.getEntriesByType('paint')"
                    ".map(e => [e.name, e.startTime]))"
                )
                runs.append({**paint, "first_tile_ms": tile_ms})
                page.close()
            # change → screen: the daemon's writer updates a slot; time until the tile shows it
            page = browser.new_page()
            page.goto(base)
            page.wait_for_selector("[data-slot]")
            lag = []
            for i in range(20):
                value = (4 << 20) + i * 1000
                t0 = time.perf_counter()
                board.update("1-1", bytes_done=value)
                while (
                    page.evaluate(
                        "() => +document.querySelector('[data-slot=\"1-1\"]').dataset.bytesDone"
                    )
                    != value
                ):
                    time.sleep(0.005)
                lag.append((time.perf_counter() - t0) * 1000)
                time.sleep(0.3)
            browser.close()
    finally:
        web.terminate()
        web.wait(15)
    med = {
        k: round(sorted(r[k] for r in runs)[len(runs) // 2], 1)
        for k in ("first-paint", "first-contentful-paint", "first_tile_ms")
        if all(k in r for r in runs)
    }
    return {
        "bytes": sizes,
        "total_bytes": sum(sizes.values()),
        "goal_bytes": 200_000,
        "median_of_5_ms": med,
        "change_to_screen_ms": {
            "median": round(sorted(lag)[len(lag) // 2], 1),
            "max": round(max(lag), 1),
            "goal": 1000,
        },
        "goal_first_paint_ms": 1000,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--recorders", type=int, default=8)
    ap.add_argument("--size-mb", type=int, default=40)
    ap.add_argument("--rate", type=int, default=4_000_000)
    ap.add_argument("--clients", type=int, default=3)
    ap.add_argument("--only", default="stream,page")
    args = ap.parse_args()
    from station import log

    log.configure("warning", stream=sys.stderr)
    os.environ.setdefault("STATION_LOG_LEVEL", "info")
    result: dict[str, Any] = {"machine": f"{os.cpu_count()} cpus, shared with other work"}
    only = set(args.only.split(","))
    with tempfile.TemporaryDirectory(prefix="bench-web-") as d:
        base = Path(d)
        if "page" in only:
            (base / "page").mkdir()
            result["page"] = bench_page(base / "page")
        if "stream" in only:
            need_root()
            (base / "stream").mkdir()
            result["stream"] = bench_stream(
                base / "stream", args.recorders, args.size_mb, args.rate, args.clients
            )
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
