"""Who may run which command, and how the person is proven (R7, R14).

Every command of ``station`` is listed here (``tests/test_access_table.py`` walks the command
tree and this table both ways, and runs every guarded command as an unknown, a disabled and a
too-junior account). ``scripts/readme_commands.py`` writes the table into the README.

Until a station has its first account it is open (first set-up, the demo). From then on a
command with roles calls ``require_role`` first: a person is proven by a login ticket
(``station login``), env ``STATION_PASSWORD`` (scripts) or a password prompt; ``service`` is
the station's own identity (``--service``), accepted only from a process running as the owner
of the station's home, and only for the tasks marked so here.
"""

from __future__ import annotations

OFFICER, CLERK, SUPERVISOR, ADMIN = "officer", "clerk", "supervisor", "admin"
SERVICE = "service"
ANY = (OFFICER, CLERK, SUPERVISOR, ADMIN)
CLERKS = (CLERK, SUPERVISOR, ADMIN)
SUPERVISORS = (SUPERVISOR, ADMIN)

PROVEN_PERSON = "登录凭据 / ticket, STATION_PASSWORD, prompt"
PROVEN_SERVICE = "--service（数据目录属主）/ --service as the home's owner"

# command -> (roles; empty: none needed), what it changes
COMMAND_ROLES: dict[str, tuple[tuple[str, ...], str]] = {
    "access approve": ((SUPERVISOR,), "approval (R14)"),
    "access list": (CLERKS, "— (reads requests)"),
    "access reject": ((SUPERVISOR,), "approval (R14)"),
    "access request": (ANY, "access request (R14)"),
    "access show": (ANY, "— (reads a request)"),
    "access view": (ANY, "view register (R14)"),
    "cases archived": (CLERKS, "case (R13)"),
    "catalog backup": ((ADMIN, SERVICE), "a copy of the catalog (secrets)"),
    "catalog migrate": ((ADMIN, SERVICE), "schema (not --check)"),
    "cases close": (CLERKS, "case, retention (R10)"),
    "cases create": (CLERKS, "case"),
    "cases link": (CLERKS, "case link (R10)"),
    "cases list": ((), ""),
    "cases mark-long-term": (CLERKS, "long-term mark (R11)"),
    "cases reopen": (CLERKS, "case, retention (R10)"),
    "cases show": ((), ""),
    "cases unlink": (CLERKS, "case link (R10)"),
    "checkpoint export": (CLERKS, "signs a checkpoint"),
    "checkpoint list": ((), ""),
    "checkpoint make": ((*CLERKS, SERVICE), "signs a checkpoint"),
    "checkpoint prove": (CLERKS, "signs a checkpoint when the log grew"),
    "checkpoint rotate-key": ((ADMIN,), "signing key"),
    "checkpoint show": ((), ""),
    "checkpoint verify": ((), ""),
    "clock status": ((), ""),
    "clock trust": (SUPERVISORS, "clock anchor (retention)"),
    "config check": ((), ""),
    "config set": ((ADMIN,), "settings"),
    "config show": ((), ""),
    "demo": ((), "— (its own home)"),
    "devices ack": (SUPERVISORS, "alert"),
    "devices alerts": ((), ""),
    "devices enrol": ((ADMIN,), "device enrolment, secret"),
    "devices list": ((), ""),
    "devices revoke": ((ADMIN,), "device enrolment, secret"),
    "disc build": (CLERKS, "disc job"),
    "disc burn": (CLERKS, "disc copy"),
    "disc drives": ((), ""),
    "disc list": ((), ""),
    "disc mark-burned": (CLERKS, "disc copy"),
    "disc plan": ((), ""),
    "disc show": ((), ""),
    "disc verify": (CLERKS, "disc copy state"),
    "export": ((CLERK, SUPERVISOR), "export (R15)"),
    "inbox assign": (CLERKS, "evidence (ingest)"),
    "inbox rescan": ((*CLERKS, SERVICE), "evidence (ingest)"),
    "inbox status": ((), ""),
    "ingest": ((*ANY, SERVICE), "evidence (ingest)"),
    "init": ((ADMIN, SERVICE), "folders, permissions (once accounts exist)"),
    "login": ((), "— (proves the password itself)"),
    "logout": ((), "— (ends the caller's ticket)"),
    "recordings hold": (CLERKS, "legal hold"),
    "recordings list": ((), ""),
    "recordings mark-long-term": (CLERKS, "long-term mark (R11)"),
    "recordings release": (SUPERVISORS, "legal hold"),
    "recordings review": (CLERKS, "IMP review (retention)"),
    "recordings search": ((), ""),
    "recordings show": ((), ""),
    "recordings tag": (CLERKS, "tags (R5, R6)"),
    "fleet fetch": (SUPERVISORS, "a local copy restored from the central store (R19)"),
    "fleet status": ((), ""),
    "fleet sync": (SUPERVISORS, "replication state, may free local copies (R19)"),
    "report central": ((), ""),
    "report compliance": ((), ""),
    "report devices": ((), ""),
    "report discs": ((), ""),
    "report retention": ((), ""),
    "report spotchecks": (SUPERVISORS, "— (reads the ledger)"),
    "retention restore": (SUPERVISORS, "retention state"),
    "retention run": ((*SUPERVISORS, SERVICE), "retention state, purge (not --dry-run)"),
    "retention tombstones": ((), ""),
    "run": ((SERVICE,), "evidence (the daemon)"),
    "sim recorder": ((), "— (simulator)"),
    "sim volume": ((), "— (simulator)"),
    "spotcheck draw": ((SUPERVISOR,), "inspection ledger (R16)"),
    "spotcheck record": ((SUPERVISOR,), "inspection ledger (R16)"),
    "spotcheck replay": ((), ""),
    "spotcheck show": (SUPERVISORS, "— (reads the ledger)"),
    "status": ((), ""),
    "transcode retry": (CLERKS, "derivative job"),
    "transcode run-once": ((*CLERKS, SERVICE), "derivatives"),
    "transcode status": ((), ""),
    "users add": ((ADMIN,), "account (the first: open)"),
    "users disable": ((ADMIN,), "account"),
    "users list": (SUPERVISORS, "— (reads accounts)"),
    "users passwd": (ANY, "account (own; admin: anyone's)"),
    "verify": ((), "— (its audit entry names an unproven caller as such)"),
    "web": ((), "— (serves the pages; each person proves themselves by a web login)"),
    "access register": (CLERKS, "— (reads the register, R14)"),
    "activities create": (CLERKS, "enforcement activity, links, long-term mark (R11)"),
    "activities list": ((), ""),
    "cases slip": (CLERKS, "storage-location slip, archived (R13)"),
    "departments list": ((), ""),
    "departments set-officer": (CLERKS, "officer's department (R6)"),
    "departments set-user": ((ADMIN,), "account's department (R14 scope)"),
    "devices damaged": (ANY, "damage report (R4)"),
    "devices inspect": (SUPERVISORS, "inspection record, damage when a fault is found (R4)"),
    "devices state": (SUPERVISORS, "device service state (R4)"),
    "duty add": (CLERKS, "duty note: R1 deadline (R21)"),
    "duty list": ((), ""),
    "retention approve": (SUPERVISORS, "purge approval, pending purge (R9)"),
    "retention proposals": ((), ""),
    "retention reject": (SUPERVISORS, "purge rejection, keep-until (R9)"),
    "stops add": (ANY, "stop-recording note (R18)"),
    "stops approve": (SUPERVISORS, "stop note approval (R18)"),
    "stops list": ((), ""),
    "stops show": ((), ""),
}


def how_proven(roles: tuple[str, ...]) -> str:
    if not roles:
        return "—"
    people = [r for r in roles if r != SERVICE]
    parts = [PROVEN_PERSON] if people else []
    if SERVICE in roles:
        parts.append(PROVEN_SERVICE)
    return "; ".join(parts)


def markdown_table() -> str:
    rows = [
        "| command | roles | how proven | changes |",
        "|---|---|---|---|",
    ]
    for cmd, (roles, changes) in sorted(COMMAND_ROLES.items()):
        rs = ", ".join(roles) if roles else "—"
        rows.append(f"| `station {cmd}` | {rs} | {how_proven(roles)} | {changes or '—'} |")
    return "\n".join(rows)
