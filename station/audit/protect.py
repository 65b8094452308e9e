"""Seals on the protective facts: the rows that decide whether footage may be destroyed or who
may act (R7, R9–R11, R14).

Every change to one of the tables below writes, in the audit entry of the same transaction, the
row as it is after the change (``None`` when the change removed it)::

    with write_txn(db):
        db.execute("update holds set released_at = ? where id = ?", [...])
        append(db, "recording.released", actor=..., subject=sha,
               data={..., **seal(db, ("holds", [hold_id]))})

``station verify`` replays the log (``Replay``), keeps the newest sealed value of every row, and
compares that with the tables (``compare``): a row edited, deleted or inserted outside the station
is a finding. Secrets and password hashes are sealed as their SHA-256 only: the audit log is
copied onto discs and exports, and must never carry them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils


@dataclass(frozen=True)
class Protected:
    table: str
    pk: tuple[str, ...]
    columns: tuple[str, ...]  # sealed columns (pk included)
    hashed: tuple[str, ...] = ()  # sealed as sha256 of the value
    where: str = ""  # only rows matching this are protected (e.g. enrolled devices)


PROTECTED: dict[str, Protected] = {
    p.table: p
    for p in (
        Protected(
            "cases",
            ("number",),
            (
                "number",
                "name",
                "cause",
                "party",
                "unit_id",
                "department",
                "status",
                "opened_at",
                "closed_at",
                "retention_years",
                "long_term_reason",
                "long_term_note",
                "long_term_at",
                "archive_location",
                "archived_at",
                "created_by",
                "kind",
                "long_term_reasons",
            ),
        ),
        Protected(
            "case_recordings",
            ("case_number", "sha256"),
            ("case_number", "sha256", "linked_at", "linked_by"),
        ),
        Protected(
            "holds",
            ("id",),
            (
                "id",
                "sha256",
                "reason",
                "placed_at",
                "placed_by",
                "released_at",
                "released_by",
                "release_note",
            ),
        ),
        Protected(
            "recording_marks",
            ("sha256",),
            (
                "sha256",
                "long_term_reason",
                "long_term_note",
                "long_term_at",
                "long_term_by",
                "reviewed_at",
                "reviewed_by",
                "long_term_reasons",
            ),
        ),
        Protected(
            "retention_items",
            ("sha256",),
            ("sha256", "state", "rule", "keep_until", "pending_at", "purge_after"),
        ),
        Protected(
            "tombstones",
            ("sha256",),
            (
                "sha256",
                "size",
                "rule",
                "reason",
                "keep_until",
                "purged_at",
                "purged_by",
                "approved_by",
                "approved_at",
                "approval_reason",
            ),
        ),
        Protected(  # R9: a supervisor's decision is what lets footage go
            "purge_proposals",
            ("id",),
            (
                "id",
                "sha256",
                "rule",
                "keep_until",
                "proposed_at",
                "state",
                "decided_at",
                "decided_by",
                "decision_reason",
                "kept_until",
                "pended_at",
            ),
        ),
        Protected(
            "users",
            ("name",),
            (
                "name",
                "display_name",
                "role",
                "password_hash",
                "created_by",
                "disabled",
                "department",
            ),
            hashed=("password_hash",),
        ),
        Protected(
            "devices",
            ("device_id",),
            (
                "device_id",
                "officer_id",
                "unit_id",
                "driver",
                "enrolled",
                "usb_serial",
                "service_state",
                "service_since",
            ),
            where="enrolled = 1",
        ),
        Protected(
            "device_secrets",
            ("device_id",),
            ("device_id", "secret_hex"),
            hashed=("secret_hex",),
        ),
    )
}


def row_key(values: Sequence[Any]) -> str:
    return json.dumps(list(values), ensure_ascii=False, separators=(",", ":"))


def _digest(value: Any) -> str | None:
    if value is None:
        return None
    return "sha256:" + hashlib.sha256(str(value).encode("utf-8")).hexdigest()


def _present(db: sqlite_utils.Database, p: Protected) -> tuple[str, ...]:
    """The sealed columns this catalog has: a migration that seals an older catalog runs before
    later migrations add columns, and a row sealed without a column is not compared on it."""
    have = {r[1] for r in db.execute(f"pragma table_info({p.table})")}
    return tuple(c for c in p.columns if c in have)


def _select(cols: tuple[str, ...], p: Protected) -> str:
    return f"select {', '.join(cols)} from {p.table}"


def _shape(p: Protected, cols: tuple[str, ...], row: Sequence[Any]) -> dict[str, Any]:
    out = dict(zip(cols, row, strict=True))
    for h in p.hashed:
        if h in out:
            out[h] = _digest(out[h])
    return out


def current_rows(
    db: sqlite_utils.Database, table: str, keys: Iterable[Sequence[Any]]
) -> dict[str, dict[str, Any] | None]:
    """The protected rows ``keys`` of ``table`` as they are now (``None``: not there)."""
    p = PROTECTED[table]
    cond = " and ".join(f"{c} = ?" for c in p.pk)
    if p.where:
        cond = f"({cond}) and ({p.where})"
    cols = _present(db, p)
    out: dict[str, dict[str, Any] | None] = {}
    for key in keys:
        values = list(key) if isinstance(key, list | tuple) else [key]
        row = db.execute(f"{_select(cols, p)} where {cond}", values).fetchone()
        out[row_key(values)] = _shape(p, cols, row) if row is not None else None
    return out


def seal(db: sqlite_utils.Database, *parts: tuple[str, Iterable[Any]]) -> dict[str, Any]:
    """``{"seal": {table: {key: row | None}}}`` for the audit entry's data: call it inside the
    changing transaction, after the change. ``parts`` are ``(table, [pk or pk tuple, ...])``."""
    sealed: dict[str, dict[str, Any]] = {}
    for table, keys in parts:
        if table not in db.table_names():
            continue
        sealed.setdefault(table, {}).update(current_rows(db, table, keys))
    return {"seal": sealed}


def all_rows(db: sqlite_utils.Database, table: str) -> dict[str, dict[str, Any]]:
    p = PROTECTED[table]
    cols = _present(db, p)
    sql = _select(cols, p) + (f" where {p.where}" if p.where else "")
    out: dict[str, dict[str, Any]] = {}
    for row in db.execute(sql):
        shaped = _shape(p, cols, row)
        out[row_key([shaped[c] for c in p.pk])] = shaped
    return out


def baseline(db: sqlite_utils.Database, tables: Iterable[str] | None = None) -> dict[str, Any]:
    """Every protected row (of ``tables``, default all) as it is now: the seal of a catalog
    upgraded to sealing, or to sealing more columns."""
    names = db.table_names()
    wanted = PROTECTED if tables is None else tables
    sealed = {t: dict(all_rows(db, t)) for t in wanted if t in names}
    return {"seal": {t: rows for t, rows in sealed.items() if rows}}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b)


SERVICE_ACTORS = frozenset({"station"})


@dataclass
class Replay:
    """The protective state as the audit log says it is: fed every entry in order. Also notes
    sealed changes whose actor was not an enabled account at that point of the log (once the
    log knows any account): written around ``require_role``, or forged into the log."""

    rows: dict[str, dict[str, tuple[int, dict[str, Any] | None]]] = field(default_factory=dict)
    unknown_actors: list[tuple[int, str, str]] = field(default_factory=list)

    def _enabled(self) -> set[str] | None:
        users = self.rows.get("users")
        if not users:
            return None
        return {
            str(row.get("name"))
            for _, row in users.values()
            if row is not None and not row.get("disabled")
        }

    def visit(
        self,
        seq: int,
        data: dict[str, Any] | None,
        actor: str | None = None,
        event: str | None = None,
    ) -> None:
        if not data:
            return
        sealed = data.get("seal")
        if not isinstance(sealed, dict):
            return
        if actor is not None and event != "integrity.sealed_baseline":
            enabled = self._enabled()
            if enabled is not None and actor not in enabled and actor not in SERVICE_ACTORS:
                self.unknown_actors.append((seq, actor, event or ""))
        for table, rows in sealed.items():
            if table not in PROTECTED or not isinstance(rows, dict):
                continue
            mine = self.rows.setdefault(table, {})
            for key, row in rows.items():
                mine[key] = (seq, row if isinstance(row, dict) else None)


@dataclass(frozen=True)
class RowProblem:
    kind: str  # inserted | deleted | edited
    table: str
    key: str
    seq: int | None
    fields: dict[str, list[Any]]


def compare(db: sqlite_utils.Database, replay: Replay) -> list[RowProblem]:
    """The protected tables now against the replayed log."""
    problems: list[RowProblem] = []
    for table in PROTECTED:
        if table not in db.table_names():
            continue
        now = all_rows(db, table)
        want = replay.rows.get(table, {})
        for key, row in now.items():
            if key not in want or want[key][1] is None:
                seq = want[key][0] if key in want else None
                problems.append(RowProblem("inserted", table, key, seq, {}))
                continue
            seq, sealed = want[key]
            assert sealed is not None
            diff = {
                c: [sealed.get(c), row.get(c)]
                for c in PROTECTED[table].columns
                if c in sealed and not _same(sealed.get(c), row.get(c))
            }
            if diff:
                problems.append(RowProblem("edited", table, key, seq, diff))
        for key, (seq, sealed) in want.items():
            if sealed is not None and key not in now:
                problems.append(RowProblem("deleted", table, key, seq, {}))
    return problems
