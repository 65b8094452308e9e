"""Test helpers for the screens: a real headless Chromium (Debian's, driven by Playwright), a
free local port, ``station web`` as a real subprocess, screenshots for docs/screens/."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCREENS = REPO / "docs" / "screens"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def have_browser() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return os.path.exists(CHROMIUM)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def station_web(
    home: Path, port: int, log: Path, scheme: str = "http"
) -> Iterator[subprocess.Popen[str]]:
    """``station web`` on ``port``; waits for its address line, stops it by its pid."""
    env = dict(os.environ, PYTHONPATH=str(REPO), STATION_LOG_JSON="1")
    with open(log, "a") as errf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "station", "--home", str(home), "web", "--json",
             "--listen", f"127.0.0.1:{port}"],
            stdout=subprocess.PIPE, stderr=errf, text=True, env=env,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line, f"station web did not start:\n{log.read_text()[-3000:]}"
            assert json.loads(line)["url"] == f"{scheme}://127.0.0.1:{port}/"
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def shot(page: Any, name: str) -> Path:
    """A small PNG of the page: into docs/screens/ (the README shows them) when
    ``STATION_SCREENSHOTS=1``, else into a temporary folder (a plain test run leaves the
    committed pictures alone)."""
    import tempfile

    folder = (
        SCREENS
        if os.environ.get("STATION_SCREENSHOTS") == "1"
        else Path(tempfile.gettempdir()) / "station-screens"
    )
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{name}.png"
    page.screenshot(path=str(out), full_page=False)
    from PIL import Image  # reportlab's dependency

    with Image.open(out) as img:  # a palette PNG: a fraction of the size, same look
        small = img.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    small.save(out, optimize=True)
    return out


def wait_for(pred: Any, timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or pred}")
