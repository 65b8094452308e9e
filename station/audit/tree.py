"""The audit log as a Merkle tree, and the hash-chain check (R7).

Leaf ``i`` of the tree is the canonical JSON of entry ``seq = i + 1``'s body, rebuilt from the
row as it is stored now: an edited row gives a different leaf, hence a different root than the
one a checkpoint signed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from station.audit import merkle
from station.audit.log import GENESIS, canonical_json, entry_body, entry_hash


@dataclass(frozen=True)
class Entry:
    seq: int
    at: str
    actor: str
    event: str
    subject: str | None
    data: dict[str, Any] | None  # None: the stored data is not JSON any more
    raw_data: str
    prev_hash: str
    entry_hash: str

    def body(self) -> dict[str, Any]:
        data: Any = self.data if self.data is not None else {"__unreadable__": self.raw_data}
        return entry_body(
            self.seq, self.at, self.actor, self.event, self.subject, data, self.prev_hash
        )

    def leaf(self) -> bytes:
        return merkle.leaf_hash(canonical_json(self.body()))


def iter_entries(db: sqlite_utils.Database, *, batch: int = 5000) -> Iterator[Entry]:
    """Every audit entry in ``seq`` order, read in batches (the log may be large)."""
    last = 0
    while True:
        rows = db.execute(
            "select seq, at, actor, event, subject, data, prev_hash, entry_hash from audit_log"
            " where seq > ? order by seq limit ?",
            [last, batch],
        ).fetchall()
        if not rows:
            return
        for seq, at, actor, event, subject, raw, prev, digest in rows:
            try:
                data = json.loads(raw)
                if not isinstance(data, dict):
                    data = None
            except (TypeError, ValueError):
                data = None
            yield Entry(seq, at, actor, event, subject, data, raw, prev, digest)
        last = rows[-1][0]


def log_size(db: sqlite_utils.Database) -> int:
    return int(db.execute("select count(*) from audit_log").fetchone()[0])


def leaf_hashes(db: sqlite_utils.Database) -> list[bytes]:
    return [e.leaf() for e in iter_entries(db)]


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    kind: str  # edited | removed | relinked | unreadable
    detail: str


@dataclass
class ChainResult:
    entries: int = 0
    problems: list[ChainProblem] = field(default_factory=list)
    leaves: list[bytes] = field(default_factory=list)


def check_chain(
    db: sqlite_utils.Database,
    *,
    keep_leaves: bool = True,
    visit: Callable[[Entry], None] | None = None,
) -> ChainResult:
    """Walk the log once: recompute each entry's hash, check each link and that no ``seq`` is
    missing. Also collects the leaf hashes for the checkpoint check and hands each entry to
    ``visit`` (one pass over a log that may hold millions of entries)."""
    result = ChainResult()
    expected_seq, prev = 1, GENESIS
    for e in iter_entries(db):
        result.entries += 1
        if e.seq != expected_seq:
            result.problems.append(
                ChainProblem(e.seq, "removed", f"entries {expected_seq}..{e.seq - 1} are missing")
            )
        if e.data is None:
            result.problems.append(ChainProblem(e.seq, "unreadable", "data is not a JSON object"))
        elif entry_hash(e.body()) != e.entry_hash:
            result.problems.append(
                ChainProblem(e.seq, "edited", "the entry no longer matches its own hash")
            )
        if e.prev_hash != prev:
            result.problems.append(
                ChainProblem(e.seq, "relinked", "the link to the entry before does not match")
            )
        if keep_leaves:
            result.leaves.append(e.leaf())
        if visit is not None:
            visit(e)
        expected_seq, prev = e.seq + 1, e.entry_hash
    return result
