"""The screens end to end in a real headless Chromium against a REAL running daemon
(``station run`` under umockdev-wrapper, screens at ``web.listen``) with simulated recorders
docked on exFAT loop devices, the recorder's reads throttled (cgroup blkio) so the copy takes
seconds: the kiosk follows the session to 可以拔出, an unknown recorder shows its flag; a clerk
finds, asks to view, plays, links, marks long-term and builds the two disc images; a supervisor
approves the request (R3, R4, R10–R12, R14). Screenshots go to docs/screens/."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dock_support import UmockdevStation, exfat_loop, sim_recorder
from web_support import chromium, free_port, have_browser, shot, wait_for

from station.access.users import create_user
from station.catalog import open_catalog
from station.recorder.simconfig import SimConfig
from station.sim.volume import make_volume
from station.usb_dock import registry
from station.vault import Vault
from station_testbed.waiting import wait_progress

pytestmark = [
    pytest.mark.root,  # loop devices, mounts, cgroups
    pytest.mark.skipif(not have_browser(), reason="needs chromium + playwright"),
    pytest.mark.slow,
    # a loaded machine makes the daemon's work slower, not stuck: every wait on it below ends
    # when the work stalls (wait_progress), so the whole-test backstop is generous
    pytest.mark.timeout(1800),
]

SECRET = bytes(range(32))
BLKIO = Path("/sys/fs/cgroup/blkio")
RATE = 6_000_000  # bytes/s read from the recorder: a few seconds of visible copying
CASE = "城管罚〔2026〕12号 A"
PAGE_S = 120  # a browser step (navigation, click, a page's own fetch) on a loaded machine
PASSWORD = "correct horse 1"


@contextlib.contextmanager
def throttled(device: str) -> Iterator[Path]:
    """A blkio cgroup reading ``device`` at ``RATE``; yields its ``cgroup.procs``."""
    group = BLKIO / f"station-test-web-{os.getpid()}"
    group.mkdir(exist_ok=True)
    try:
        st = os.stat(device)
        (group / "blkio.throttle.read_bps_device").write_text(
            f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)} {RATE}\n"
        )
        yield group / "cgroup.procs"
    finally:
        for pid in (group / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                (BLKIO / "cgroup.procs").write_text(pid)
        with contextlib.suppress(OSError):
            group.rmdir()


def recorder_folder(root: Path) -> tuple[Path, dt.datetime]:
    """Three real clips, and a large fourth file (random bytes) that takes seconds to read."""
    now = dt.datetime.now(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None, microsecond=0)
    start = now - dt.timedelta(hours=2)  # the recorder's own (Beijing) clock
    make_volume(root, device="ZFY0001", officer="100001", clips=3, seconds=2.0,
                size="320x240", start=start)  # fmt: skip
    day = next((root / "DCIM").iterdir()) if (root / "DCIM").exists() else root
    late = (start + dt.timedelta(minutes=30)).strftime("%Y%m%d%H%M%S")
    with open(day / f"ZFY0001_100001_{late}_0099.MP4", "wb") as f:
        for _ in range(24):
            f.write(os.urandom(1_000_000))
    return root, start


def tile(page: Any, slot: str) -> dict[str, Any] | None:
    return page.evaluate(  # type: ignore[no-any-return]
        """slot => { const t = document.querySelector(`[data-slot="${slot}"]`);
        return t ? {text: t.innerText, phase: t.dataset.phase, safe: t.dataset.safe,
                    cls: t.className, done: +t.dataset.bytesDone} : null; }""",
        slot,
    )


def disc_progress(home: Path, db: Any) -> object:
    """What the disc job visibly does: ``run/disc-status.json`` (phase, disc, copy, bytes) and
    the job's and images' states in the catalog."""
    try:
        st = json.loads((home / "run" / "disc-status.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        st = {}
    keys = ("state", "phase", "disc_no", "copy", "done", "total", "error")
    return (
        {k: st.get(k) for k in keys},
        db.execute("select id, state, error from disc_jobs order by id").fetchall(),
        db.execute("select job_id, disc_no, copy, state from disc_images order by id").fetchall(),
    )


def disc_failed(snap: Any) -> str | None:
    """The disc job's failure, as the status file or the catalog says it."""
    status, jobs, _images = snap
    if status.get("state") == "failed":
        return f"disc job failed: {status.get('error')}"
    for job_id, state, error in jobs:
        if state == "failed":
            return f"disc job #{job_id} failed: {error}"
    return None


def derivative_progress(db: Any) -> object:
    """The transcode queue as the catalog shows it: each job's state and attempts."""
    return db.execute(
        "select id, original_sha256, state, attempts, failure from derivatives order by id"
    ).fetchall()


def new_page(browser: Any, width: int, height: int) -> Any:
    """A page whose every Playwright step may take ``PAGE_S`` (its default is 30 s)."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(PAGE_S * 1000)
    return page


def login(browser: Any, base: str, name: str) -> Any:
    page = new_page(browser, 1200, 760)
    page.goto(base + "office/")
    assert "/office/login" in page.url
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "office/")
    return page


def test_kiosk_and_office_against_the_daemon(tmp_path: Path) -> None:
    vault = Vault(tmp_path / "home")
    vault.init()
    from tests.disc_helpers import LABEL_TOML

    (vault.home / "station.toml").write_text(LABEL_TOML, encoding="utf-8")  # R12 label facts
    db = open_catalog(vault.catalog_path)
    registry.enrol(db, "ZFY0001", officer_id="100001", unit_id="110101000001", actor="admin",
                   officer_name="张三", unit_name="示例市城市管理局", secret=SECRET)  # fmt: skip
    create_user(db, "admin", "admin", PASSWORD, actor="setup")
    create_user(db, "wang", "clerk", PASSWORD, actor="admin", display_name="王档案")
    create_user(db, "zhao", "supervisor", PASSWORD, actor="admin", display_name="赵主任")
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    with ExitStack() as stack:
        folder, start = recorder_folder(tmp_path / "rec1")
        stranger = tmp_path / "rec9"
        make_volume(stranger, device="ZFY0009", officer="100009", clips=1, seconds=1.0,
                    size="160x120")  # fmt: skip
        loop1 = stack.enter_context(exfat_loop(tmp_path, folder, size_mb=64))
        loop9 = stack.enter_context(exfat_loop(tmp_path, stranger))
        procs = stack.enter_context(throttled(loop1))
        _rec1, pty1 = stack.enter_context(sim_recorder(SimConfig(
            serial="ZFY0001", officer_id="100001", officer_name="张三", secret=SECRET,
            battery_pct=64, drift_s=12.0)))  # fmt: skip
        _rec9, pty9 = stack.enter_context(sim_recorder(SimConfig(
            serial="ZFY0009", officer_id="100009", officer_name="陌生", secret=b"x")))  # fmt: skip
        bed = UmockdevStation(vault.home, tmp_path, transcode=True, web_listen=f"127.0.0.1:{port}")
        stack.callback(bed.close)
        procs.write_text(str(bed.proc.pid))  # the daemon and its FUSE helpers inherit it
        bed.start()
        bed.notifications("READY=1")
        subprocess.run(["blockdev", "--flushbufs", loop1], check=True)  # read from the device
        browser = stack.enter_context(chromium())

        # -- kiosk: the officer's view -------------------------------------------------------
        kiosk = new_page(browser, 1100, 620)
        kiosk.goto(base)
        wait_for(lambda: "已连接" in kiosk.inner_text("#conn"), PAGE_S, "kiosk connected")
        kiosk.evaluate("""() => { window.__seen = [];
          new MutationObserver(() => document.querySelectorAll('[data-slot]').forEach(t =>
            window.__seen.push([t.dataset.slot, t.dataset.phase, +t.dataset.bytesDone,
                                +t.dataset.bytesTotal]))).observe(document.getElementById('slots'),
            {childList: true, subtree: true}); }""")
        bed.dock(1, pty1, loop1, usb_serial="ZFY0001")
        wait_progress(lambda: (tile(kiosk, "1-1") or {}).get("done", 0) > 0, bed.progress,
                      what="the kiosk to show ZFY0001 copying", alive=bed.gone)  # fmt: skip
        with contextlib.suppress(AssertionError):  # the picture for the README: time left shown
            wait_for(lambda: "估算中" not in (tile(kiosk, "1-1") or {}).get("text", ""), 3)
        t = tile(kiosk, "1-1")
        assert t and "张三" in t["text"] and "执法证号 100001" in t["text"]
        assert "ZFY0001" in t["text"] and "电量 / battery 64%" in t["text"]
        shot(kiosk, "kiosk-copying")
        bed.dock(2, pty9, loop9, usb_serial="ZFY0009")
        t = wait_progress(lambda: (x := tile(kiosk, "1-2")) and x["safe"] == "1" and x,
                          bed.progress, what="the kiosk to show ZFY0009 refused",
                          alive=bed.gone)  # fmt: skip
        assert "未登记的设备 ZFY0009" in t["text"] and "请联系管理员登记设备" in t["text"]
        assert "alert" in t["cls"]
        t = wait_progress(lambda: (x := tile(kiosk, "1-1")) and x["safe"] == "1" and x,
                          bed.progress, what="the kiosk to show ZFY0001 done", alive=bed.gone,
                          context=bed.daemon_log)  # fmt: skip
        assert "可以拔出" in t["text"] and "完成" in t["text"] and "safe" in t["cls"]
        assert "已清除 / cleared 4" in t["text"]
        shot(kiosk, "kiosk-done")
        seen = kiosk.evaluate("() => window.__seen")
        moving = {s[2] for s in seen if s[0] == "1-1" and s[1] == "copying" and 0 < s[2] < s[3]}
        assert len(moving) >= 2, seen  # the bar moved while copying, without a reload
        phases = [s[1] for s in seen if s[0] == "1-1"]
        assert phases.index("copying") < phases.index("done")
        if "clearing" in phases:  # a clearing shorter than one feed tick may be skipped
            assert phases.index("copying") < phases.index("clearing") < phases.index("done")

        # -- clerk finds the footage and asks to view it; the supervisor approves ---------------
        clerk = login(browser, base, "wang")
        clerk.goto(base + "office/recordings?officer=100001")
        rows = clerk.locator("#results input[name=sha]")
        assert rows.count() == 4
        shas = [rows.nth(i).get_attribute("value") for i in range(4)]

        def thumbs_loaded() -> int:
            return int(clerk.evaluate(
                "() => [...document.querySelectorAll('img.thumb')].filter(i => i.naturalWidth > 0)"
                ".length"))  # fmt: skip

        thumbs = vault.home / "cache" / "thumbs"
        wait_progress(lambda: thumbs_loaded() >= 3,
                      lambda: (thumbs_loaded(), sorted(p.name for p in thumbs.glob("*.jpg"))),
                      what="three thumbnails", alive=bed.gone)  # fmt: skip
        shot(clerk, "office-search")
        rows.nth(0).check()
        clerk.fill("#view-reason", "复议材料核对 / checking for the review")
        clerk.click("#ask-view")
        assert "已提交" in clerk.inner_text("#requested")

        boss = login(browser, base, "zhao")
        boss.goto(base + "office/access")
        row = boss.locator("#pending tr[data-request]")
        assert row.count() == 1 and "wang" in row.inner_text()
        shot(boss, "office-access")
        row.locator("input[name=note]").fill("同意 / granted")
        row.locator("button.approve").click()
        assert "approved" in boss.inner_text("#decided")

        # playback of the archival derivative, with range requests (each range re-checked)
        wait_progress(lambda: db.execute(
            "select 1 from derivatives where original_sha256 = ? and state = 'done'",
            [shas[0]]).fetchone(), lambda: derivative_progress(db),
            what=f"the archival derivative of {shas[0][:16]}", alive=bed.gone,
            context=bed.daemon_log)  # fmt: skip
        clerk.goto(base + "office/")
        clerk.click("a.play")
        wait_for(
            lambda: clerk.evaluate("() => document.getElementById('player').readyState") >= 1,
            PAGE_S,
            "video metadata",
        )
        shot(clerk, "office-play")
        media = clerk.locator("#player").get_attribute("src")
        r = clerk.request.get(base.rstrip("/") + media, headers={"Range": "bytes=0-99"})
        assert r.status == 206 and len(r.body()) == 100
        assert boss.request.get(base.rstrip("/") + media).status == 403  # not boss's request

        # -- clerk: case, link several, long-term (第十四条), two disc images ---------------------
        clerk.goto(base + "office/cases")
        form = clerk.locator("#create-case")
        form.locator("input[name=number]").fill(CASE)
        form.locator("input[name=name]").fill("占道经营案")
        form.locator("input[name=cause]").fill("占道经营")
        form.locator("input[name=party]").fill("<李某>")
        form.locator("button").click()
        # by officer and time span (Beijing time), all results at once: the three clips, not the
        # large file recorded half an hour later
        span = {"officer": "100001", "since": f"{start - dt.timedelta(minutes=5):%Y-%m-%dT%H:%M}",
                "until": f"{start + dt.timedelta(minutes=10):%Y-%m-%dT%H:%M}"}  # fmt: skip
        clerk.goto(base + "office/recordings?" + urllib.parse.urlencode(span))
        assert clerk.locator("#results input[name=sha]").count() == 3
        clerk.check("#select-all")
        clerk.fill("#link-case", CASE)
        clerk.click("#link")
        assert clerk.locator("#case-recordings tr").count() == 4  # header + 3
        linked = clerk.locator("#case-recordings a").all_inner_texts()
        assert sorted(linked) == sorted(sha[:16] for sha in shas[:3])
        assert "<李某>" in clerk.inner_text("main")
        clerk.check("#mark-form input[name=reason][value='2']")
        clerk.click("#mark")
        assert "第（二）项" in clerk.inner_text("#long-term")
        shot(clerk, "office-case")
        clerk.click("#build")
        clerk.wait_for_url(base + "office/discs")
        wait_progress(lambda: clerk.locator(".job-state").count() and "verified"
                      in clerk.locator(".job-state").first.inner_text(),
                      lambda: disc_progress(vault.home, db), what="the disc job (both copies)",
                      alive=bed.gone, failed=disc_failed, context=bed.daemon_log)  # fmt: skip
        states = clerk.locator(".images .image-state").all_inner_texts()
        assert states == ["verified", "verified"]
        assert clerk.locator(".images .copy").all_inner_texts() == ["A", "B"]  # R12
        shot(clerk, "office-discs")
        label = clerk.locator(".images a").first.get_attribute("href")
        r = clerk.request.get(base.rstrip("/") + label)
        assert r.status == 200 and r.body().startswith(b"%PDF")

        # -- supervisor pages ----------------------------------------------------------------
        boss.goto(base + "office/alerts")
        assert "ZFY0009" in boss.inner_text("#alerts")
        shot(boss, "office-alerts")
        boss.goto(base + "office/reports/retention")
        shot(boss, "office-report-retention")
        boss.goto(base + "office/integrity")
        shot(boss, "office-integrity")
        # R16: a random draw, played back and recorded in the ledger
        boss.goto(base + "office/spotchecks")
        boss.fill("#draw-form input[name=n]", "2")
        boss.click("#draw-form button")
        assert boss.locator("#ledger a.play").count() == 2
        boss.locator("#ledger a.play").first.click()
        assert boss.locator("#player").count() == 1
        boss.goto(base + "office/spotchecks")
        boss.locator("#ledger form.record").first.locator("button").click()
        results = boss.locator("#ledger td.result").all_inner_texts()
        assert sorted(results) == ["合格 / ok", "未检查 / not checked"]
        shot(boss, "office-spotchecks")
        # an officer account cannot open clerk pages (the CLI's role sets)
        for p in (kiosk, clerk, boss):
            p.close()
        kiosk_final = new_page(browser, 1100, 620)
        kiosk_final.goto(base)
        wait_for(lambda: tile(kiosk_final, "1-1"), PAGE_S, "kiosk tiles")
        bed.undock("/sys/devices/usb1/1-1")
        bed.undock("/sys/devices/usb1/1-2")
        wait_progress(lambda: tile(kiosk_final, "1-1") is None, bed.progress,
                      what="the tiles to go after undock", alive=bed.gone)  # fmt: skip
        assert bed.stop_daemon() == 0

    events = [r[0] for r in db.execute("select event from audit_log order by seq")]
    for e in ("web.login", "web.viewed", "access.requested", "access.approved", "access.viewed",
              "case.created", "case.linked", "case.long_term_marked", "spotcheck.drawn",
              "spotcheck.played", "spotcheck.recorded"):  # fmt: skip
        assert e in events, e
    logins = {r[0] for r in db.execute("select actor from audit_log where event = 'web.login'")}
    assert logins == {"wang", "zhao"}
    db.close()
