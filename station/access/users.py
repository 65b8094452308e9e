"""Station accounts with roles (R14): officer, clerk, supervisor, admin.

Passwords are kept as scrypt hashes (``hashlib.scrypt``, N=2^14, r=8, p=1, 16-byte salt).
The CLI acts as the ``--user`` given on the main group; actions that need a role call
``require_role(app, *roles)``, which asks for the password (env ``STATION_PASSWORD`` for scripts,
else a hidden prompt), checks it and the role, and records refusals in the audit log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlite_utils

from station.audit import append
from station.audit.protect import seal
from station.catalog import write_txn
from station.errors import NotFoundError, PermissionDenied, StationError
from station.log import get
from station.timeutil import to_iso, utcnow

if TYPE_CHECKING:
    from station.cli_util import App

log = get()

ROLES = ("officer", "clerk", "supervisor", "admin")
ROLE_NAMES = {
    "officer": "执法人员 / officer",
    "clerk": "档案管理员 / records clerk",
    "supervisor": "监督负责人 / supervisor",
    "admin": "系统管理员 / administrator",
}
MIN_PASSWORD = 8
_N, _R, _P = 1 << 14, 8, 1


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(want),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


@dataclass(frozen=True)
class User:
    name: str
    role: str
    display_name: str | None


def get_user(db: sqlite_utils.Database, name: str) -> User | None:
    row = db.execute(
        "select name, role, display_name, disabled from users where name = ?", [name]
    ).fetchone()
    if row is None or row[3]:
        return None
    return User(row[0], row[1], row[2])


def user_count(db: sqlite_utils.Database) -> int:
    return int(db.execute("select count(*) from users").fetchone()[0])


def _check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise StationError(
            f"password too short: at least {MIN_PASSWORD} characters / 密码至少 {MIN_PASSWORD} 位",
            where="password",
        )


def create_user(
    db: sqlite_utils.Database,
    name: str,
    role: str,
    password: str,
    *,
    actor: str,
    display_name: str | None = None,
) -> User:
    if role not in ROLES:
        raise StationError(f"unknown role {role!r}", where="--role", hint=", ".join(ROLES))
    if not name or not name.strip() or any(c.isspace() for c in name):
        raise StationError("user name must be one word / 用户名不能含空格", where="NAME")
    _check_new_password(password)
    now = to_iso(utcnow())
    with write_txn(db):
        if db.execute("select 1 from users where name = ?", [name]).fetchone():
            raise StationError(f"user {name!r} exists already / 用户已存在", where="NAME")
        db.execute(
            "insert into users (name, display_name, role, password_hash, created_at, created_by,"
            " password_changed_at) values (?, ?, ?, ?, ?, ?, ?)",
            [name, display_name, role, hash_password(password), now, actor, now],
        )
        append(
            db,
            "users.created",
            actor=actor,
            subject=f"user:{name}",
            data={"role": role, **seal(db, ("users", [name]))},
        )
    log.info("access.user_created", user=name, role=role, by=actor)
    return User(name, role, display_name)


def set_password(db: sqlite_utils.Database, name: str, password: str, *, actor: str) -> None:
    _check_new_password(password)
    with write_txn(db):
        cur = db.execute(
            "update users set password_hash = ?, password_changed_at = ? where name = ?",
            [hash_password(password), to_iso(utcnow()), name],
        )
        if cur.rowcount != 1:
            raise NotFoundError(f"no user {name!r} / 无此用户", where="NAME")
        append(
            db,
            "users.password_changed",
            actor=actor,
            subject=f"user:{name}",
            data=seal(db, ("users", [name])),
        )


def disable_user(db: sqlite_utils.Database, name: str, *, actor: str) -> None:
    with write_txn(db):
        cur = db.execute("update users set disabled = 1 where name = ?", [name])
        if cur.rowcount != 1:
            raise NotFoundError(f"no user {name!r} / 无此用户", where="NAME")
        append(
            db,
            "users.disabled",
            actor=actor,
            subject=f"user:{name}",
            data=seal(db, ("users", [name])),
        )


def _refuse(db: sqlite_utils.Database, event: str, name: str, data: dict[str, str]) -> None:
    """Refusals are evidence too: who tried what (R7 'leave a trace of everything')."""
    log.warning(event, user=name, **data)
    with write_txn(db):
        append(db, event, actor=name, subject=f"user:{name}", data=data)


def authenticate(db: sqlite_utils.Database, name: str, password: str, *, action: str = "") -> User:
    row = db.execute(
        "select name, role, display_name, password_hash, disabled from users where name = ?",
        [name],
    ).fetchone()
    if row is None or row[4] or not check_password(password, row[3]):
        # Same message for unknown user, disabled account and wrong password.
        _refuse(db, "access.login_failed", name, {"action": action})
        raise PermissionDenied(
            "wrong user name or password / 用户名或密码错误",
            where=f"user {name}",
            hint="give --user NAME and the password (prompt or env STATION_PASSWORD)",
        )
    return User(row[0], row[1], row[2])


def require_role(app: App, *roles: str, action: str = "") -> User:
    """Authenticate the acting user (``--user``) and check they hold one of ``roles``.

    Raises ``PermissionDenied`` (exit 10) otherwise; both refusals are audit entries. Within
    one command the check runs once (cached on the click context)."""
    import click

    ctx = click.get_current_context(silent=True)
    cached = ctx.meta.get("station.user") if ctx is not None else None
    action = action or (ctx.command_path if ctx is not None else "")
    if isinstance(cached, User):
        user = cached
    else:
        password = os.environ.get("STATION_PASSWORD")
        if password is None:
            if not sys.stdin.isatty():
                raise PermissionDenied(
                    "password required / 需要密码",
                    where=f"user {app.actor}",
                    hint="run interactively or set STATION_PASSWORD",
                )
            password = click.prompt(f"{app.actor} 的密码 / password", hide_input=True, err=True)
        user = authenticate(app.db, app.actor, password, action=action)
        if ctx is not None:
            ctx.meta["station.user"] = user
    if roles and user.role not in roles:
        _refuse(app.db, "access.denied", user.name, {"action": action, "role": user.role})
        need = ", ".join(ROLE_NAMES[r] for r in roles)
        raise PermissionDenied(
            f"{user.name} ({ROLE_NAMES[user.role]}) may not do this / 无权执行：{action}",
            where=action,
            hint=f"needs: {need}",
        )
    return user
