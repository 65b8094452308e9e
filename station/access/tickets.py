"""Login tickets: ``station login`` proves a person once (password), and for a while after that
their commands are theirs without typing it again (R14).

A ticket is a small JSON file, mode 0600, in the user's runtime folder
(``$XDG_RUNTIME_DIR/station/``, else ``/run/user/<uid>/station/``, else
``~/.cache/station-tickets/``; the folder 0700), one per station home. It names the account,
the Unix uid that logged in, the boot it was made in and its end in *boot time*
(``CLOCK_BOOTTIME``): setting the wall clock neither extends nor revives a ticket, and a reboot
ends it. It carries a digest of the account's password hash (a changed password ends it) and an
HMAC-SHA256 by the station's ticket key (``keys/ticket.key``, 0600): a ticket written by hand is
refused. Every use re-reads the account: a disabled account's ticket is refused and audited.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from station import clock
from station.errors import PermissionDenied
from station.vault import Vault, hand_to_owner

KEY_FILE = "ticket.key"
DEFAULT_MINUTES = 480  # one shift
MAX_MINUTES = 24 * 60


def runtime_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base:
        return Path(base) / "station"
    run = Path(f"/run/user/{os.getuid()}")
    if run.is_dir() and os.access(run, os.W_OK):
        return run / "station"
    return Path.home() / ".cache" / "station-tickets"


def ticket_path(vault: Vault) -> Path:
    home = str(vault.home.resolve())
    return runtime_dir() / f"ticket-{hashlib.sha256(home.encode()).hexdigest()[:16]}.json"


def _key(vault: Vault, *, create: bool) -> bytes | None:
    path = vault.keys / KEY_FILE
    try:
        data = path.read_bytes()
        if len(data) == 32:
            return data
    except FileNotFoundError:
        pass
    if not create:
        return None
    vault.keys.mkdir(parents=True, exist_ok=True)
    data = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        hand_to_owner(path)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return data


def password_digest(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:32]


def _mac(key: bytes, body: dict[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Ticket:
    user: str
    uid: int
    boot_id: str
    until_boottime: float
    password: str  # password_digest of the hash when issued
    home: str

    def body(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "uid": self.uid,
            "boot_id": self.boot_id,
            "until_boottime": self.until_boottime,
            "password": self.password,
            "home": self.home,
        }

    def minutes_left(self) -> float:
        return max(0.0, (self.until_boottime - clock.boottime()) / 60)


def issue(vault: Vault, user: str, password_hash: str, minutes: int) -> Path:
    if not 1 <= minutes <= MAX_MINUTES:
        raise PermissionDenied(
            f"登录时长须在 1 到 {MAX_MINUTES} 分钟之间 / minutes must be 1..{MAX_MINUTES}",
            where="--minutes",
        )
    key = _key(vault, create=True)
    assert key is not None
    t = Ticket(
        user,
        os.getuid(),
        clock.boot_id(),
        clock.boottime() + minutes * 60,
        password_digest(password_hash),
        str(vault.home.resolve()),
    )
    path = ticket_path(vault)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        body = t.body()
        os.write(fd, json.dumps({**body, "mac": _mac(key, body)}).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


def read(vault: Vault) -> tuple[Ticket | None, str]:
    """The ticket for this home, and why not when there is none usable: "" | absent | unsafe |
    forged | expired | other-user."""
    path = ticket_path(vault)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None, "absent"
    if not path.is_file() or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None, "unsafe"
    key = _key(vault, create=False)
    try:
        data = json.loads(path.read_text())
        mac = data.pop("mac")
        t = Ticket(
            str(data["user"]),
            int(data["uid"]),
            str(data["boot_id"]),
            float(data["until_boottime"]),
            str(data["password"]),
            str(data["home"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None, "forged"
    if key is None or not hmac.compare_digest(str(mac), _mac(key, t.body())):
        return None, "forged"
    if t.uid != os.getuid() or t.home != str(vault.home.resolve()):
        return None, "other-user"
    if t.boot_id != clock.boot_id() or clock.boottime() >= t.until_boottime:
        return None, "expired"
    return t, ""


def remove(vault: Vault) -> bool:
    try:
        ticket_path(vault).unlink()
        return True
    except FileNotFoundError:
        return False
