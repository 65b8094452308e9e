"""Supervisors' spot checks (R16): a seeded random draw of recordings, recorded in the audit log
so the draw itself can be checked, and an append-only ledger of playback results.

The draw is a pure function of (sorted population, n, seed): anyone holding the audit entry can
repeat it (``replay_draw``) and see that the supervisor did not pick the recordings by hand.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from station.access.users import User
from station.audit import append
from station.catalog import write_txn
from station.errors import NotFoundError, PermissionDenied, StationError
from station.log import get
from station.timeutil import to_iso, utcnow

log = get()

RESULTS = ("ok", "problem", "unplayable")
RESULT_NAMES = {
    "ok": "合格 / ok",
    "problem": "有问题 / problem",
    "unplayable": "无法播放 / unplayable",
}
FILTERS = ("officer_id", "unit_id", "device_id")


def population_digest(population: list[str]) -> str:
    return hashlib.sha256("".join(f"{s}\n" for s in sorted(population)).encode()).hexdigest()


def draw(population: list[str], n: int, seed: str) -> list[str]:
    """``n`` recordings out of ``population``, chosen by a PRNG seeded with ``seed`` (pure)."""
    if n < 1:
        raise StationError("至少抽取一段 / draw at least one recording", where="--n")
    pool = sorted(set(population))
    return random.Random(seed).sample(pool, min(n, len(pool)))


def _population(
    db: sqlite_utils.Database, filters: dict[str, str], before: str | None = None
) -> list[str]:
    sql = "select sha256 from recordings where state = 'stored'"
    args: list[Any] = []
    for key in FILTERS:
        if filters.get(key):
            sql += f" and {key} = ?"
            args.append(filters[key])
    if filters.get("since"):
        sql += " and recorded_at >= ?"
        args.append(filters["since"])
    if filters.get("until"):
        sql += " and recorded_at < ?"
        args.append(filters["until"])
    if before:
        sql += " and ingested_at <= ?"
        args.append(before)
    return [r[0] for r in db.execute(sql, args)]


@dataclass(frozen=True)
class Draw:
    id: int
    seed: str
    population: int
    population_sha256: str
    items: list[tuple[int, str]]  # (item id, sha256)


def make_draw(
    db: sqlite_utils.Database,
    user: User,
    n: int,
    *,
    seed: str | None = None,
    filters: dict[str, str] | None = None,
) -> Draw:
    if user.role != "supervisor":
        raise PermissionDenied("只有监督负责人可抽查 / only a supervisor draws spot checks")
    filters = {k: v for k, v in (filters or {}).items() if v}
    seed = seed or secrets.token_hex(16)
    now = to_iso(utcnow())
    with write_txn(db):
        pop = _population(db, filters)
        if not pop:
            raise StationError("没有符合条件的录像 / no stored recording matches", where="filters")
        chosen = draw(pop, n, seed)
        digest = population_digest(pop)
        drawn = {
            "drawn_by": user.name,
            "drawn_at": now,
            "seed": seed,
            "n": n,
            "population": len(pop),
            "population_sha256": digest,
            "filters": json.dumps(filters, sort_keys=True),
        }
        did = int(db.table("spotcheck_draws").insert(drawn).last_pk or 0)
        items = []
        table = db.table("spotcheck_items")
        for pos, sha in enumerate(chosen, 1):
            item = {"draw_id": did, "position": pos, "sha256": sha}
            items.append((int(table.insert(item).last_pk or 0), sha))
        append(
            db,
            "spotcheck.drawn",
            actor=user.name,
            subject=f"spotcheck:{did}",
            data={
                "seed": seed,
                "n": n,
                "population": len(pop),
                "population_sha256": digest,
                "filters": filters,
                "chosen": chosen,
            },
        )
    log.info("spotcheck.drawn", draw=did, by=user.name, n=len(chosen), population=len(pop))
    return Draw(did, seed, len(pop), digest, items)


def replay_draw(db: sqlite_utils.Database, draw_id: int) -> dict[str, Any]:
    """Repeat a draw from its seed: same population (by hash) must give the same recordings."""
    row = db.execute(
        "select seed, n, population_sha256, filters, drawn_at from spotcheck_draws where id = ?",
        [draw_id],
    ).fetchone()
    if row is None:
        raise NotFoundError(f"无此抽查 / no spot-check draw {draw_id}", where="DRAW")
    seed, n, digest, filters, drawn_at = row
    pop = _population(db, json.loads(filters), before=drawn_at)
    recorded = [
        r[0]
        for r in db.execute(
            "select sha256 from spotcheck_items where draw_id = ? order by position", [draw_id]
        )
    ]
    same_population = population_digest(pop) == digest
    again = draw(pop, n, seed) if pop else []
    return {
        "draw": draw_id,
        "same_population": same_population,
        "reproduced": same_population and again == recorded,
        "recorded": recorded,
        "replayed": again,
    }


def record_result(
    db: sqlite_utils.Database, user: User, item_id: int, result: str, note: str | None
) -> dict[str, Any]:
    if user.role != "supervisor":
        raise PermissionDenied("只有监督负责人可登记 / only a supervisor records spot checks")
    if result not in RESULTS:
        raise StationError(f"result must be one of {', '.join(RESULTS)}", where="--result")
    if result != "ok" and not (note and note.strip()):
        raise StationError(
            "请填写问题说明 / say what is wrong", where="--note", hint="required unless ok"
        )
    now = to_iso(utcnow())
    with write_txn(db):
        item = db.execute(
            "select draw_id, sha256 from spotcheck_items where id = ?", [item_id]
        ).fetchone()
        if item is None:
            raise NotFoundError(f"无此抽查项 / no spot-check item {item_id}", where="ITEM")
        db.table("spotcheck_results").insert(
            {
                "item_id": item_id,
                "result": result,
                "note": note,
                "checked_by": user.name,
                "checked_at": now,
            }
        )
        append(
            db,
            "spotcheck.recorded",
            actor=user.name,
            subject=item[1],
            data={"draw": item[0], "item": item_id, "result": result, "note": note},
        )
    log.info("spotcheck.recorded", item=item_id, result=result, by=user.name)
    return {"item": item_id, "draw": item[0], "sha256": item[1], "result": result, "note": note}


def ledger(db: sqlite_utils.Database, draw_id: int | None = None) -> list[dict[str, Any]]:
    """The inspection ledger: every drawn item with its latest result (None: not checked yet)."""
    sql = """
      select i.id as item, d.id as draw, d.drawn_at, d.drawn_by, i.sha256,
             r.officer_id, r.device_id, r.recorded_at, r.original_name,
             s.result, s.note, s.checked_by, s.checked_at
      from spotcheck_items i
      join spotcheck_draws d on d.id = i.draw_id
      left join recordings r on r.sha256 = i.sha256
      left join spotcheck_results s on s.id = (
        select max(id) from spotcheck_results where item_id = i.id)
    """
    args: list[Any] = []
    if draw_id is not None:
        sql += " where d.id = ?"
        args.append(draw_id)
    sql += " order by d.id, i.position"
    return [dict(r) for r in db.query(sql, args)]
