"""Seal the protective facts the rules added (R4, R9, R11, R14): purge proposals and their
decisions, activities and several 第十四条 reasons, approvers on tombstones, departments of
accounts and device service states. Rows already there are sealed as found at the upgrade (as
migration 0090 did for the first protective tables); from here on every change seals them."""

import sqlite_utils

TABLES = ("cases", "recording_marks", "tombstones", "purge_proposals", "users", "devices")


def up(db: sqlite_utils.Database) -> None:
    from station.audit import append
    from station.audit.protect import baseline

    data = baseline(db, TABLES)
    if data["seal"]:
        append(db, "integrity.sealed_baseline", actor="station", data=data)
