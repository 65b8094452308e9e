"""The office pages' safety, in process (Starlette's test client on the real app, a real
catalog): logins with station accounts audited (R14), CSRF and Origin checks, role checks as
the CLI's, sessions that end, escaping, playback only under one's own approval, and the refusal
to listen beyond loopback without TLS."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from station.access.users import create_user, disable_user
from station.catalog import open_catalog
from station.cli import main
from station.config import Settings, WebSection
from station.errors import ConfigError
from station.vault import Vault
from station.web.app import create_app
from station.web.auth import LoginThrottle, Sessions
from station.web.feed import RateMeter, kiosk_view
from station.web.server import check_listen

PASSWORD = "correct horse 1"


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    v = Vault(tmp_path / "home")
    v.init()
    db = open_catalog(v.catalog_path)
    create_user(db, "admin", "admin", PASSWORD, actor="setup")
    create_user(db, "wang", "clerk", PASSWORD, actor="admin")
    create_user(db, "zhao", "supervisor", PASSWORD, actor="admin")
    create_user(db, "li", "officer", PASSWORD, actor="admin")
    db.close()
    yield v


def client(vault: Vault) -> TestClient:
    return TestClient(create_app(vault, Settings()), follow_redirects=False)


def csrf(c: TestClient, path: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', c.get(path).text)
    assert m, path
    return m.group(1)


def log_in(c: TestClient, name: str, password: str = PASSWORD) -> int:
    token = csrf(c, "/office/login")
    r = c.post("/office/login", data={"csrf": token, "name": name, "password": password})
    return r.status_code


def events(vault: Vault, event: str) -> list[tuple[str, str]]:
    db = open_catalog(vault.catalog_path, migrate=False)
    try:
        sql = "select actor, subject from audit_log where event = ? order by seq"
        return [tuple(r) for r in db.execute(sql, [event])]
    finally:
        db.close()


def test_login_is_audited_and_cookie_is_strict(vault: Vault) -> None:
    c = client(vault)
    assert c.get("/office/recordings").headers["location"].startswith("/office/login")
    assert log_in(c, "wang", "wrong password") == 401
    assert events(vault, "access.login_failed") == [("wang", "user:wang")]
    token = csrf(c, "/office/login")
    r = c.post("/office/login", data={"csrf": token, "name": "wang", "password": PASSWORD})
    assert r.status_code == 303
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert events(vault, "web.login") == [("wang", "user:wang")]
    assert c.get("/office/recordings").status_code == 200
    assert ("wang", "web.recordings.search") in events(vault, "web.viewed")


def test_guessing_is_throttled(vault: Vault) -> None:
    c = client(vault)
    for _ in range(5):
        assert log_in(c, "zhao", "guess guess") == 401
    token = csrf(c, "/office/login")  # the right password too, while the name is throttled
    r = c.post("/office/login", data={"csrf": token, "name": "zhao", "password": PASSWORD})
    assert r.status_code == 401 and "too many attempts" in r.text
    assert len(events(vault, "access.login_failed")) == 6
    assert log_in(client(vault), "wang") == 303  # other accounts are not affected
    t = LoginThrottle(limit=2, window_s=60)
    t.failed("a", now=0)
    t.failed("a", now=1)
    assert t.blocked("a", now=59) and not t.blocked("a", now=62)
    assert t.failures == {}  # nothing kept once the window has passed


def test_csrf_and_origin_are_checked(vault: Vault) -> None:
    c = client(vault)
    assert log_in(c, "wang") == 303
    form = {"number": "A-1", "name": "案"}
    assert c.post("/office/cases/create", data=form).status_code == 403  # no token
    token = csrf(c, "/office/cases")
    bad = c.post("/office/cases/create", data={**form, "csrf": token},
                 headers={"Origin": "http://evil.example"})  # fmt: skip
    assert bad.status_code == 403
    assert events(vault, "case.created") == []
    ok = c.post("/office/cases/create", data={**form, "csrf": token})
    assert ok.status_code == 303 and events(vault, "case.created") == [("wang", "case:A-1")]


def test_roles_are_the_clis(vault: Vault) -> None:
    officer = client(vault)
    assert log_in(officer, "li") == 303
    r = officer.get("/office/recordings")
    assert r.status_code == 403 and "may not do this" in r.text
    assert ("li", "user:li") in events(vault, "access.denied")
    clerk = client(vault)
    assert log_in(clerk, "wang") == 303
    token = csrf(clerk, "/office/cases")
    r = clerk.post("/office/access/1/decide", data={"csrf": token, "decision": "approve"})
    assert r.status_code == 403  # only a supervisor decides (as `station access approve`)
    assert clerk.get("/office/spotchecks").status_code == 403  # supervisor, admin
    assert clerk.get("/office/reports/devices").status_code == 200


def test_sessions_end(vault: Vault) -> None:
    c = client(vault)
    assert log_in(c, "wang") == 303
    token = csrf(c, "/office/cases")
    old = c.cookies.get("station_session")
    assert c.post("/office/logout", data={"csrf": token}).status_code == 303
    c.cookies.set("station_session", old or "")
    assert c.get("/office/cases").status_code == 303  # the old id is dead server-side
    # a disabled account is out at its next request
    c2 = client(vault)
    assert log_in(c2, "zhao") == 303
    db = open_catalog(vault.catalog_path, migrate=False)
    disable_user(db, "zhao", actor="admin")
    db.close()
    assert c2.get("/office/access").status_code == 303
    # idle and absolute limits
    s = Sessions(idle_s=60, max_s=3600)
    a = s.login(None, "wang")
    a.seen -= 61
    assert s.get(a.sid) is None
    b = s.login(None, "wang")
    b.login_at = time.monotonic() - 3601
    assert s.get(b.sid) is None and s.by_id == {}
    # a flood of anonymous visits never grows the table past its cap, nor evicts a login
    few = Sessions(idle_s=60, max_s=3600, max_anonymous=3)
    kept = few.login(None, "wang")
    for _ in range(10):
        few.new()
    assert len(few.by_id) == 4 and few.get(kept.sid) is kept


def test_a_taken_port_does_not_stop_the_daemon(vault: Vault) -> None:
    """The docks work without their screen: a port in use is logged, not raised."""
    import socket

    from station.web.server import WebService

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        svc = WebService(vault, Settings(), f"127.0.0.1:{port}")
        svc.start()
        assert not svc.started
        svc.stop()


def test_user_data_is_escaped_and_playback_needs_approval(vault: Vault) -> None:
    c = client(vault)
    assert log_in(c, "wang") == 303
    token = csrf(c, "/office/cases")
    evil = "<script>alert(1)</script>"
    r = c.post("/office/cases/create", data={"csrf": token, "number": "B-2", "name": evil,
                                              "party": evil})  # fmt: skip
    assert r.status_code == 303
    page = c.get("/office/case", params={"number": "B-2"}).text
    assert evil not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "script-src 'self'" in c.get("/office/cases").headers["content-security-policy"]
    sha = "ab" * 32
    assert c.get(f"/office/media/1/{sha}").status_code == 404  # no such request
    assert c.get(f"/office/play/1/{sha}").status_code == 404


def test_listening_beyond_loopback_needs_tls(tmp_path: Path) -> None:
    s = Settings()
    assert check_listen("127.0.0.1:8470", s).host == "127.0.0.1"
    assert check_listen("[::1]:8470", s).host == "::1"
    with pytest.raises(ConfigError, match="without TLS"):
        check_listen("0.0.0.0:8470", s)
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("x")
    tls = Settings(web=WebSection(tls_cert=str(cert), tls_key=str(key)))
    assert check_listen("0.0.0.0:8470", tls).tls
    v = Vault(tmp_path / "home")
    v.init()
    open_catalog(v.catalog_path).close()
    r = CliRunner().invoke(main, ["--home", str(v.home), "web", "--listen", "192.0.2.1:8470"])
    assert r.exit_code == 3 and "without TLS" in r.output


def test_kiosk_view_words_and_time_left() -> None:
    import os

    meter = RateMeter()
    slot = {"slot": "1-1", "session_id": 7, "phase": "copying", "files_total": 3, "files_done": 1,
            "bytes_total": 100, "bytes_done": 20, "safe_to_undock": False,
            "flags": [{"code": "officer_mismatch", "message": "m"}]}  # fmt: skip
    status = {"pid": os.getpid(), "state": "ready", "slots": [slot]}
    v = kiosk_view(status, None, meter, now=10.0)
    s = v["slots"][0]
    assert v["daemon"]["running"] and s["phase_zh"] == "复制中" and s["eta_s"] is None
    assert s["attention"] and "不得借用" in s["flags"][0]["action"]
    slot["bytes_done"] = 60
    s = kiosk_view(status, None, meter, now=12.0)["slots"][0]
    assert s["eta_s"] == pytest.approx(2.0)  # 40 bytes left at 20 bytes/s
    slot["bytes_done"] = 100
    assert kiosk_view(status, None, meter, now=13.0)["slots"][0]["phase_zh"] == "校验中"
    slot.update(phase="done", safe_to_undock=True, flags=[])
    s = kiosk_view(status, None, meter, now=14.0)["slots"][0]
    assert s["phase_zh"] == "完成" and s["safe_to_undock"] and not s["attention"]
    assert meter.samples == {}  # nothing kept for a finished session
    assert kiosk_view({**status, "pid": 2**22 + 7}, None, meter, 15.0)["daemon"]["running"] is False


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze")
def test_web_unit_verifies_and_is_hardened(tmp_path: Path) -> None:
    unit = Path(__file__).resolve().parents[1] / "systemd" / "station-web.service"
    text = unit.read_text().replace(
        "/usr/bin/station --home", f"{sys.executable} -m station --home"
    )
    assert "User=station" in text and "[Install]" not in text  # never started beside the daemon
    copy = tmp_path / "station-web.service"
    copy.write_text(text)
    proc = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr
    sec = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=30", str(copy)],
        capture_output=True,
        text=True,
    )
    assert sec.returncode == 0, sec.stdout[-2000:]
    assert " web --listen 127.0.0.1:" in text  # loopback unless TLS is configured


def test_tls_when_configured(tmp_path: Path) -> None:
    """With web.tls_cert/tls_key the screens are served over HTTPS and the session cookie is
    Secure (a self-signed certificate made here with the cryptography package)."""
    import datetime as dt

    import httpx
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    from web_support import free_port, station_web

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "station.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))  # fmt: skip
    v = Vault(tmp_path / "home")
    v.init()
    open_catalog(v.catalog_path).close()
    v.settings_path.write_text(
        f'[web]\ntls_cert = "{tmp_path / "cert.pem"}"\ntls_key = "{tmp_path / "key.pem"}"\n'
    )
    port = free_port()
    with station_web(v.home, port, tmp_path / "web.log", scheme="https"):
        r = httpx.get(f"https://127.0.0.1:{port}/office/login", verify=False)
        assert r.status_code == 200 and "secure" in r.headers["set-cookie"].lower()
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/office/login")  # no plain HTTP beside it
