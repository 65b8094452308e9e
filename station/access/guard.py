"""Role sets for the commands that change evidence records and protective facts (R14).

``guard(app, *roles)`` is ``require_role`` (kept for the commands that call it by this name): a
station with no accounts yet is open; from the first account on, each guarded command needs a
proven account holding one of its roles, and every refusal is an audit entry. The table of
commands, roles and how the person is proven is ``station.access.commands.COMMAND_ROLES``.
"""

from __future__ import annotations

from station.access.users import SERVICE, User, require_role
from station.cli_util import App

ANYONE = ("officer", "clerk", "supervisor", "admin")
CLERK = ("clerk", "supervisor", "admin")
SUPERVISOR = ("supervisor", "admin")
ADMIN = ("admin",)

__all__ = ["ADMIN", "ANYONE", "CLERK", "SERVICE", "SUPERVISOR", "guard"]


def guard(app: App, *roles: str) -> User:
    return require_role(app, *roles)
