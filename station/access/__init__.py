"""Users, roles, access approvals and exports (R8, R14, R15).

Other parts call ``require_role(app, *roles)`` at the top of a command that needs a role.
"""

from station.access.users import ROLES, User, authenticate, require_role

__all__ = ["ROLES", "User", "authenticate", "require_role"]
