"""What ``station verify`` reports about custody (DESIGN.md invariants 2 and 8, R7).

- ``vault.repaired``: an original in the vault was found rotten by an ingest, which replaced it
  with a copy it had just verified (the rotten one kept in ``quarantine/``). Shown on every verify:
  a person should find out how the original came to change.
- ``clear.unfinished``: the intent to delete files on a recorder or in the inbox was audited, but
  no result entry followed — the run died between them; which of the listed files are gone is
  unknown until someone looks. An intent whose session's owner is alive is in progress, not
  reported.
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

from station.audit.tree import Entry
from station.custody import owner_alive
from station.vault import Vault
from station.verify.findings import Finding

INTENT_EVENTS = frozenset({"dock.clear_intent", "inbox.remove_intent"})
RESULT_EVENTS = frozenset({"dock.cleared", "inbox.removed"})


class CustodyIndex:
    """Gathered in the audit chain pass (one read of the log)."""

    def __init__(self) -> None:
        self.repairs: list[tuple[int, str, dict[str, Any]]] = []
        self.intents: dict[int, tuple[str, dict[str, Any]]] = {}
        self.answered: set[int] = set()

    def visit(self, e: Entry) -> None:
        if e.event == "vault.repaired" and isinstance(e.data, dict):
            self.repairs.append((e.seq, e.subject or "", e.data))
        elif e.event in INTENT_EVENTS and isinstance(e.data, dict):
            self.intents[e.seq] = (e.subject or "", e.data)
        elif e.event in RESULT_EVENTS and isinstance(e.data, dict):
            seq = e.data.get("intent_seq")
            if isinstance(seq, int):
                self.answered.add(seq)

    def findings(self, vault: Vault, db: sqlite_utils.Database) -> list[Finding]:
        found = []
        for seq, sha, data in self.repairs:
            found.append(
                Finding(
                    "vault.repaired",
                    sha,
                    str(data.get("path") or "originals"),
                    f"audit entry {seq}: found sha256 {data.get('found_sha256')}, "
                    f"{data.get('found_size')} bytes; rotten copy kept at "
                    f"{data.get('quarantined')}",
                    {"audit_seq": seq, **data},
                )
            )
        for seq, (subject, data) in sorted(self.intents.items()):
            if seq in self.answered:
                continue
            sid = subject.removeprefix("session:")
            row = (
                db.execute("select owner, clearing from sessions where id = ?", [sid]).fetchone()
                if sid.isdigit()
                else None
            )
            if row is not None and row[1] == "intent" and owner_alive(vault, row[0]):
                continue  # clearing right now
            files = data.get("files") or []
            found.append(
                Finding(
                    "clear.unfinished",
                    subject,
                    "audit_log",
                    f"intent entry {seq} lists {len(files)} file(s); no result was recorded",
                    {"audit_seq": seq, "files": files},
                )
            )
        return found
