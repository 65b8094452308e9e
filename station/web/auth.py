"""Office logins (R14): the station's own accounts, sessions that expire, CSRF tokens.

A session lives in this process only (a random id in a signed, HttpOnly, SameSite=Strict
cookie; the rest on the server), so logging out or expiry ends it for good. Each request
re-reads the account from the users table: a disabled account or a changed role takes effect
at once. The role sets are the CLI's own (``station.access.guard``); a refusal is an audit
entry, as in the CLI.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from station.access.users import ROLE_NAMES, User, get_user
from station.audit import append
from station.catalog import write_txn
from station.errors import PermissionDenied


@dataclass
class WebSession:
    sid: str
    csrf: str
    user: str | None = None
    login_at: float = 0.0
    seen: float = field(default_factory=time.monotonic)


class Sessions:
    """In-memory sessions with an idle limit and an absolute limit; at most ``max_anonymous``
    not-yet-logged-in sessions (a flood of login-page visits evicts the oldest of those, never
    a logged-in one)."""

    def __init__(self, idle_s: float, max_s: float, max_anonymous: int = 1000) -> None:
        self.idle_s = idle_s
        self.max_s = max_s
        self.max_anonymous = max_anonymous
        self.lock = threading.Lock()
        self.by_id: dict[str, WebSession] = {}

    def _expired(self, s: WebSession, now: float) -> bool:
        if now - s.seen > self.idle_s:
            return True
        return s.user is not None and now - s.login_at > self.max_s

    def get(self, sid: str | None) -> WebSession | None:
        now = time.monotonic()
        with self.lock:
            for key in [k for k, s in self.by_id.items() if self._expired(s, now)]:
                del self.by_id[key]  # sweep: the table never grows past the live sessions
            s = self.by_id.get(sid or "")
            if s is not None:
                s.seen = now
            return s

    def new(self) -> WebSession:
        s = WebSession(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
        with self.lock:
            anonymous = [k for k, v in self.by_id.items() if v.user is None]
            for key in anonymous[: max(0, len(anonymous) - self.max_anonymous + 1)]:
                del self.by_id[key]  # dicts keep insertion order: the oldest go first
            self.by_id[s.sid] = s
        return s

    def login(self, old: WebSession | None, user: str) -> WebSession:
        """A fresh session id at login (no fixation): the old one is dropped."""
        with self.lock:
            if old is not None:
                self.by_id.pop(old.sid, None)
        s = self.new()
        s.user, s.login_at = user, time.monotonic()
        return s

    def end(self, s: WebSession | None) -> None:
        if s is not None:
            with self.lock:
                self.by_id.pop(s.sid, None)


class LoginThrottle:
    """At most ``limit`` failed logins per account name within ``window_s``; then that name is
    refused without a password check until the window has passed (slows guessing over the
    network; the refusals are audited by the caller)."""

    def __init__(self, limit: int = 5, window_s: float = 300.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self.lock = threading.Lock()
        self.failures: dict[str, list[float]] = {}

    def _recent(self, name: str, now: float) -> list[float]:
        times = [t for t in self.failures.get(name, []) if now - t < self.window_s]
        if times:
            self.failures[name] = times
        else:
            self.failures.pop(name, None)  # the table holds only names failing right now
        return times

    def blocked(self, name: str, now: float | None = None) -> bool:
        with self.lock:
            return len(self._recent(name, time.monotonic() if now is None else now)) >= self.limit

    def failed(self, name: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self.lock:
            self.failures[name] = [*self._recent(name, now), now]

    def succeeded(self, name: str) -> None:
        with self.lock:
            self.failures.pop(name, None)


def csrf_ok(session: WebSession | None, token: Any) -> bool:
    return (
        session is not None
        and isinstance(token, str)
        and hmac.compare_digest(session.csrf.encode(), token.encode())
    )


def current_user(db: sqlite_utils.Database, session: WebSession | None) -> User | None:
    if session is None or session.user is None:
        return None
    return get_user(db, session.user)  # None when disabled since the login


def check_role(db: sqlite_utils.Database, user: User, roles: tuple[str, ...], action: str) -> None:
    """The CLI's check (``require_role``) for a user already authenticated by the login."""
    if roles and user.role not in roles:
        with write_txn(db):
            append(
                db,
                "access.denied",
                actor=user.name,
                subject=f"user:{user.name}",
                data={"action": action, "role": user.role},
            )
        need = ", ".join(ROLE_NAMES[r] for r in roles)
        raise PermissionDenied(
            f"无权执行：{action} / {user.name} ({ROLE_NAMES[user.role]}) may not do this",
            where=action,
            hint=f"needs: {need}",
        )
