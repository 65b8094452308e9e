"""The kiosk in a real headless Chromium against ``station web`` as a real process, fed by the
daemon's own status writer (``StatusBoard``): live tiles, escaping, the undock sign, a daemon
that dies and comes back, a web server restart with the page left open."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from web_support import chromium, free_port, have_browser, shot, station_web, wait_for

from station.catalog import open_catalog
from station.status import StatusBoard
from station.vault import Vault

pytestmark = pytest.mark.skipif(not have_browser(), reason="needs chromium + playwright")

EVIL = "<b>王五</b><img src=x onerror=window.__pwned=1>"


def tile(page: Any, slot: str) -> dict[str, Any] | None:
    return page.evaluate(  # type: ignore[no-any-return]
        """slot => { const t = document.querySelector(`[data-slot="${slot}"]`);
        return t ? {text: t.innerText, phase: t.dataset.phase, done: +t.dataset.bytesDone,
                    safe: t.dataset.safe, cls: t.className} : null; }""",
        slot,
    )


def banner(page: Any) -> str:
    return page.evaluate(  # type: ignore[no-any-return]
        "() => { const b = document.getElementById('banner'); return b.hidden ? '' : b.innerText; }"
    )


def test_kiosk_live_tiles_restarts_and_escaping(tmp_path: Path) -> None:
    vault = Vault(tmp_path / "home")
    vault.init()
    open_catalog(vault.catalog_path).close()
    port = free_port()
    board = StatusBoard(vault.run / "status.json")  # this process plays the daemon
    board.set_state("ready")
    with chromium() as browser, station_web(vault.home, port, tmp_path / "web.log"):
        page = browser.new_page(viewport={"width": 1100, "height": 640})
        sizes: list[int] = []
        page.on("response", lambda r: sizes.append(len(r.body())) if r.ok and
                "stream" not in r.url else None)  # fmt: skip
        page.goto(f"http://127.0.0.1:{port}/")
        wait_for(lambda: "请插入" in page.inner_text("main"), what="empty kiosk")
        assert sum(sizes) < 200_000  # page weight goal: under 200 KB

        board.update(
            "1-1", phase="checking", device_id="ZFY0002", officer_id="100002",
            officer_name=EVIL, battery_pct=9, drift_s=40.2,
            flags=[{"code": "battery_low", "message": "电量低：9% / battery low: 9%"},
                   {"code": "clock_drift", "message": "时钟偏差 +40.2 秒 / clock drift"}],
        )  # fmt: skip
        t = wait_for(lambda: tile(page, "1-1"), what="tile")
        assert EVIL in t["text"]  # shown as text, never as markup
        assert page.evaluate("() => window.__pwned") is None
        assert "执法证号 100002" in t["text"] and "识别中" in t["text"]
        assert "电量 / battery 9%" in t["text"] and "+40.2 s" in t["text"]
        assert "请充电后再使用" in t["text"]  # what to do, in plain words
        assert "请勿拔出" in t["text"] and "可以拔出" not in t["text"]

        board.update("1-1", phase="copying", files_total=4, files_done=1,
                     bytes_total=40_000_000, bytes_done=10_000_000)  # fmt: skip
        wait_for(lambda: (tile(page, "1-1") or {}).get("done") == 10_000_000, what="copying")
        board.update("1-1", files_done=2, bytes_done=25_000_000)
        t = wait_for(
            lambda: (x := tile(page, "1-1")) and x["done"] == 25_000_000 and x, what="progress"
        )
        assert "复制中" in t["text"] and "25.0 MB / 40.0 MB" in t["text"]
        board.update("1-1", phase="clearing")
        wait_for(lambda: "清除中" in (tile(page, "1-1") or {}).get("text", ""), what="clearing")
        board.update("1-1", phase="done", safe_to_undock=True, cleared=4)
        t = wait_for(lambda: (x := tile(page, "1-1")) and x["safe"] == "1" and x, what="done")
        assert "可以拔出" in t["text"] and "完成" in t["text"] and "safe" in t["cls"]

        # the daemon dies (its pid is gone): the kiosk says so instead of a frozen picture
        dead = subprocess.Popen(["true"])
        dead.wait()
        gone = StatusBoard(vault.run / "status.json", pid=dead.pid)
        gone.set_state("ready")
        wait_for(lambda: "未运行" in banner(page), what="not-running banner")
        assert tile(page, "1-1") is None
        shot(page, "kiosk-daemon-down")
        # a new daemon (another live pid) writes a fresh status: the screen follows
        sleeper = subprocess.Popen(["sleep", "120"])
        try:
            again = StatusBoard(vault.run / "status.json", pid=sleeper.pid)
            again.set_state("ready")
            flag = {"code": "unknown_device", "message": "未登记的设备 ZFY0009"}
            again.update(
                "1-2", phase="refused", device_id="ZFY0009", safe_to_undock=True, flags=[flag]
            )
            t = wait_for(lambda: tile(page, "1-2"), what="tile after restart")
            assert banner(page) == ""
            assert "请联系管理员登记设备" in t["text"] and "alert" in t["cls"]
        finally:
            sleeper.kill()
            sleeper.wait()
        board2 = StatusBoard(vault.run / "status.json", pid=os.getpid())
        board2.set_state("ready")
        wait_for(lambda: tile(page, "1-2") is None and banner(page) == "", what="cleared")
        health = f"http://127.0.0.1:{port}/api/health"
        assert httpx.get(health).json()["kiosk_streams"] == 1
        page.close()  # a closed kiosk leaves no stream behind (days open: no leaks)
        wait_for(lambda: httpx.get(health).json()["kiosk_streams"] == 0, what="stream released")

    # the web server itself restarts while the page stays open: the stream reconnects
    with chromium() as browser:
        page = browser.new_page()
        with station_web(vault.home, port, tmp_path / "web.log"):
            page.goto(f"http://127.0.0.1:{port}/")
            wait_for(lambda: "已连接" in page.inner_text("#conn"), what="connected")
        wait_for(lambda: "重连" in page.inner_text("#conn"), what="reconnecting")
        board2.update("1-3", phase="identifying", device_id="ZFY0003")
        with station_web(vault.home, port, tmp_path / "web.log"):
            t = wait_for(lambda: tile(page, "1-3"), timeout=30, what="tile after web restart")
            assert "识别中" in t["text"]
