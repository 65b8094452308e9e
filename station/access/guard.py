"""Role checks for the commands that change evidence records (R14).

A station with no accounts yet (first set-up, the demo) is open: the command runs and the log
says so. From the first account on, each guarded command needs a user holding one of its roles,
with their password (``require_role``); a refusal is an audit entry.
"""

from __future__ import annotations

from station.access.users import User, require_role
from station.cli_util import App
from station.log import get

log = get()

CLERK = ("clerk", "supervisor", "admin")
SUPERVISOR = ("supervisor", "admin")
ADMIN = ("admin",)


def guard(app: App, *roles: str) -> User | None:
    if app.db.execute("select count(*) from users").fetchone()[0] == 0:
        log.info(
            "access.open_station",
            actor=app.actor,
            hint="no accounts yet: create an admin with `station users add`",
        )
        return None
    return require_role(app, *roles)
