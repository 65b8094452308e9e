"""Station accounts with roles (R14): officer, clerk, supervisor, admin; and proof of who acts.

Passwords are kept as scrypt hashes (``hashlib.scrypt``, N=2^14, r=8, p=1, 16-byte salt).
Actions that need a role call ``require_role(app, *roles)``: it proves the acting person (a
login ticket from ``station login``, env ``STATION_PASSWORD`` for scripts, or a hidden prompt),
or the station's own service identity (``--service``, as the home's owner, service tasks only),
checks the role, and records every refusal in the audit log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import sys
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import click
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
# The station's own service identity (the daemon, the timers): a pseudo-role for
# ``require_role``; the name is reserved, no account may take it.
SERVICE = "service"
SERVICE_NAME = "station"
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
    proven_by: str = "password"  # password | ticket | service | open


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
            f"密码至少 {MIN_PASSWORD} 位 / password too short: at least {MIN_PASSWORD} characters",
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
        raise StationError("用户名不能含空格 / user name must be one word", where="NAME")
    if name in (SERVICE_NAME, SERVICE, "open", "migration"):
        raise StationError(f"该名称保留给系统 / {name!r} is reserved", where="NAME")
    _check_new_password(password)
    now = to_iso(utcnow())
    with write_txn(db):
        if db.execute("select 1 from users where name = ?", [name]).fetchone():
            raise StationError(f"用户已存在 / user {name!r} exists already", where="NAME")
        db.table("users").insert(
            {
                "name": name,
                "display_name": display_name,
                "role": role,
                "password_hash": hash_password(password),
                "created_at": now,
                "created_by": actor,
                "password_changed_at": now,
            }
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
            raise NotFoundError(f"无此用户 / no user {name!r}", where="NAME")
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
            raise NotFoundError(f"无此用户 / no user {name!r}", where="NAME")
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


def _account(db: sqlite_utils.Database, name: str) -> tuple[User, str] | None:
    """The enabled account ``name`` and its password hash; None if unknown or disabled."""
    row = db.execute(
        "select name, role, display_name, password_hash, disabled from users where name = ?",
        [name],
    ).fetchone()
    if row is None or row[4]:
        return None
    return User(row[0], row[1], row[2]), str(row[3])


def authenticate(db: sqlite_utils.Database, name: str, password: str, *, action: str = "") -> User:
    found = _account(db, name)
    if found is None or not check_password(password, found[1]):
        # Same message for unknown user, disabled account and wrong password.
        _refuse(db, "access.login_failed", name, {"action": action})
        raise PermissionDenied(
            "用户名或密码错误 / wrong user name or password",
            where=f"user {name}",
            hint="give --user NAME and the password (prompt or env STATION_PASSWORD)",
        )
    return found[0]


def _may_be_service(app: App) -> bool:
    """The service identity runs as the owner of the home (the retention timer as the
    ``station`` user) or as root (the dock daemon, which mounts recorder storage)."""
    try:
        return os.geteuid() in (0, app.vault.home.stat().st_uid)
    except OSError:
        return False


def _prove(app: App, roles: tuple[str, ...], action: str) -> User:
    """Who is acting, proven: the service identity, a password, or a login ticket."""
    from station.access import tickets

    db = app.db
    if app.service:
        # The station's own identity (daemon, timers): only for the work it is allowed to do,
        # and only from a process running as root or as the owner of the station's home.
        if SERVICE not in roles or not _may_be_service(app):
            why = (
                "not a service task"
                if SERVICE not in roles
                else "neither root nor the home's owner"
            )
            _refuse(db, "access.denied", SERVICE_NAME, {"action": action, "why": why})
            raise PermissionDenied(
                f"采集站服务身份不能执行此操作 / the service identity may not do this ({why})",
                where=action,
                hint="a person does this: log in with `station login` or give STATION_PASSWORD",
            )
        return User(SERVICE_NAME, SERVICE, "采集站服务 / station service", "service")
    password = os.environ.get("STATION_PASSWORD")
    if password is not None:
        return authenticate(db, app.actor, password, action=action)
    ticket, why = tickets.read(app.vault)
    if ticket is not None and (not app.actor_given or ticket.user == app.actor):
        found = _account(db, ticket.user)
        if found is None or tickets.password_digest(found[1]) != ticket.password:
            _refuse(db, "access.ticket_refused", ticket.user, {"action": action})
            tickets.remove(app.vault)
            raise PermissionDenied(
                "登录已失效（账号停用或密码已改）/ the login is no longer valid (account "
                "disabled or password changed)",
                where=f"user {ticket.user}",
                hint="log in again: station login",
            )
        return replace(found[0], proven_by="ticket")
    if sys.stdin.isatty():
        password = click.prompt(f"{app.actor} 的密码 / password", hide_input=True, err=True)
        return authenticate(db, app.actor, password, action=action)
    _refuse(db, "access.unproven", app.actor, {"action": action, "ticket": why or "other-user"})
    raise PermissionDenied(
        "需要登录或密码 / password required: not logged in, and this needs a proven account",
        where=f"user {app.actor}",
        hint="run `station login` (or set STATION_PASSWORD for a script)",
    )


def require_role(app: App, *roles: str, action: str = "") -> User:
    """Prove who is acting and check they hold one of ``roles`` (``SERVICE`` among them lets
    the station's service identity do it too). THE check every command that changes evidence or
    a protective fact calls first.

    - A station without accounts (first set-up, the demo) is open: the claimed name acts.
    - ``--service``: the daemon and timers, as root or the home's owner, service tasks only.
    - Else a person: env ``STATION_PASSWORD`` (scripts), a login ticket (``station login``), or
      a password prompt on a terminal. Unknown and disabled accounts, wrong passwords, expired
      or forged tickets, missing roles: ``PermissionDenied`` (exit 10), each an audit entry.

    On success ``app.actor`` becomes the proven name, so the command's audit entries carry it.
    Within one command the proof runs once (cached on the click context)."""
    ctx = click.get_current_context(silent=True)
    cached = ctx.meta.get("station.user") if ctx is not None else None
    action = action or (ctx.command_path if ctx is not None else "")
    if isinstance(cached, User):
        user = cached
    elif user_count(app.db) == 0:
        log.info(
            "access.open_station",
            actor=app.actor,
            action=action,
            hint="no accounts yet: create an admin with `station users add`",
        )
        user = User(SERVICE_NAME if app.service else app.actor, "admin", None, "open")
    else:
        user = _prove(app, tuple(roles), action)
    if ctx is not None:
        ctx.meta["station.user"] = user
    app.actor = user.name
    app.proven = user.proven_by != "open"
    if user.proven_by == "open":
        return user
    if user.proven_by == "service":
        if roles and SERVICE not in roles:  # a later, stricter check in the same command
            _refuse(
                app.db, "access.denied", user.name, {"action": action, "why": "not a service task"}
            )
            raise PermissionDenied(
                f"采集站服务身份不能执行此操作 / the service identity may not do this: {action}",
                where=action,
            )
        return user
    people = tuple(r for r in roles if r != SERVICE)
    if roles and user.role not in people:
        _refuse(app.db, "access.denied", user.name, {"action": action, "role": user.role})
        need = ", ".join(ROLE_NAMES[r] for r in people) or "采集站服务 / the station service"
        raise PermissionDenied(
            f"无权执行：{action} / {user.name} ({ROLE_NAMES[user.role]}) may not do this",
            where=action,
            hint=f"needs: {need}",
        )
    return user
