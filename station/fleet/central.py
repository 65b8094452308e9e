"""Push the station's catalog changes to the central PostgreSQL, in order, exactly once.

The outbox (``fleet_outbox``, filled by triggers in the same transaction as each change) lists
which rows changed, in commit order — which is audit order, since every change and its audit
entry commit together. A push takes a batch in that order and, in one PostgreSQL transaction:

1. locks this station's row in ``stations`` and reads its ``outbox_cursor``: entries at or
   below it were applied already (a crash after the central commit and before the local
   clean-up), so they are skipped;
2. for each changed row, reads the row as it is now in the catalog and upserts it centrally
   (or deletes it there when it is gone locally, e.g. an unlinked case);
3. moves ``outbox_cursor`` to the batch's last entry.

Only after that commit are the entries removed from the local outbox. Upserts keyed by
(``station_id``, the station's key) make a repeated push harmless: the central tables hold one
row per station row, never two.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from station.catalog import write_txn
from station.errors import FleetError
from station.fleet.central_schema import TABLES, migrate
from station.log import get

log = get()

BATCH = 2000


class CentralUnreachable(FleetError):
    """无法连接中心数据库 / The central database cannot be reached."""


class CentralRefused(FleetError):
    """中心数据库拒绝了采集站 / The central database refused the station."""


@dataclass
class PushResult:
    rows: int = 0
    batches: int = 0
    cursor: int = 0
    audit_seq: int = 0


def connect(dsn: str) -> Any:
    import psycopg

    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "password" in text or "authentication" in text or "role" in text:
            raise CentralRefused(
                f"中心数据库拒绝连接 / the central database refused the station: {text}",
                where=_safe_dsn(dsn),
                hint="check fleet.postgres_dsn",
            ) from exc
        raise CentralUnreachable(
            f"无法连接中心数据库 / the central database is unreachable: {text}",
            where=_safe_dsn(dsn),
        ) from exc


def _safe_dsn(dsn: str) -> str:
    """The DSN without a password, for messages."""
    try:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        parts = conninfo_to_dict(dsn)
        parts.pop("password", None)
        return make_conninfo("", **parts)
    except Exception:
        return "fleet.postgres_dsn"


def _snapshot(db: sqlite_utils.Database, table: str, pk: tuple[str, ...], key: list[Any]) -> Any:
    where = " and ".join(f"{c} = ?" for c in pk)
    rows = list(db.query(f"select * from {table} where {where}", key))
    return rows[0] if rows else None


def _json_row(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, default=str)


def _apply(
    conn: Any, station_id: str, db: sqlite_utils.Database, entries: Iterable[tuple[str, str]]
) -> tuple[int, int]:
    """Upsert (or delete) the current state of each changed row; returns (rows, max audit seq)."""
    # The last mention of a row decides its order; its content is read now, once.
    order: dict[tuple[str, str], None] = {}
    for tbl, pk in entries:
        order.pop((tbl, pk), None)
        order[(tbl, pk)] = None
    upserts: dict[str, list[list[Any]]] = {}
    deletes: dict[str, list[list[Any]]] = {}
    max_seq = 0
    for tbl, pk_text in order:
        if tbl not in TABLES:
            continue
        pk_cols, cols = TABLES[tbl]
        key = json.loads(pk_text)
        row = _snapshot(db, tbl, pk_cols, key)
        if row is None:
            deletes.setdefault(tbl, []).append([station_id, *key])
            continue
        if tbl == "audit_log":
            max_seq = max(max_seq, int(row["seq"]))
            row = dict(row, data=json.loads(row["data"]))
        upserts.setdefault(tbl, []).append(
            [station_id, *(row.get(name) for name, _ in cols), _json_row(row)]
        )
    with conn.cursor() as cur:
        for tbl, values in upserts.items():
            pk_cols, cols = TABLES[tbl]
            names = ["station_id", *(c for c, _ in cols), "row"]
            marks = ", ".join(["%s"] * len(names))
            conflict = ", ".join(("station_id", *pk_cols))
            if tbl == "audit_log":
                action = "nothing"  # entries never change: the first copy stands
            else:
                action = "update set " + ", ".join(
                    f"{n} = excluded.{n}" for n in names if n not in ("station_id", *pk_cols)
                )
            cur.executemany(
                f"insert into {tbl} ({', '.join(names)}) values ({marks})"
                f" on conflict ({conflict}) do {action}",
                values,
            )
        for tbl, values in deletes.items():
            pk_cols = TABLES[tbl][0]
            where = " and ".join(f"{c} = %s" for c in ("station_id", *pk_cols))
            cur.executemany(f"delete from {tbl} where {where}", values)
    return sum(len(v) for v in upserts.values()) + sum(len(v) for v in deletes.values()), max_seq


def push(
    db: sqlite_utils.Database,
    dsn: str,
    station_id: str,
    *,
    unit_id: str = "",
    unit_name: str = "",
    batch: int = BATCH,
) -> PushResult:
    """Push every outbox entry to the central database (see the module docstring)."""
    import psycopg

    result = PushResult()
    if db.execute("select 1 from fleet_outbox limit 1").fetchone() is None:
        return result  # nothing changed: no connection at all (an idle station stays idle)
    conn = connect(dsn)
    try:
        migrate(conn)
        while True:
            entries = db.execute(
                "select id, tbl, pk from fleet_outbox order by id limit ?", [batch]
            ).fetchall()
            if not entries:
                break
            with conn.transaction():
                conn.execute(
                    "insert into stations (station_id, unit_id, unit_name) values (%s, %s, %s)"
                    " on conflict (station_id) do update set unit_id = excluded.unit_id,"
                    " unit_name = excluded.unit_name",
                    [station_id, unit_id, unit_name],
                )
                cursor = conn.execute(
                    "select outbox_cursor from stations where station_id = %s for update",
                    [station_id],
                ).fetchone()[0]
                fresh = [(tbl, pk) for i, tbl, pk in entries if i > cursor]
                last = int(entries[-1][0])
                rows, seq = _apply(conn, station_id, db, fresh) if fresh else (0, 0)
                conn.execute(
                    "update stations set outbox_cursor = greatest(outbox_cursor, %s),"
                    " audit_seq = greatest(audit_seq, %s), last_push_at = now()"
                    " where station_id = %s",
                    [last, seq, station_id],
                )
            with write_txn(db):
                db.execute("delete from fleet_outbox where id <= ?", [last])
            result.rows += rows
            result.batches += 1
            result.cursor = last
            result.audit_seq = max(result.audit_seq, seq)
            log.info("fleet.central_pushed", rows=rows, cursor=last, audit_seq=seq)
    except psycopg.OperationalError as exc:
        raise CentralUnreachable(
            f"中心数据库连接中断 / the central database connection failed: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc}",
            where=_safe_dsn(dsn),
        ) from exc
    except psycopg.Error as exc:
        raise FleetError(
            f"中心数据库出错 / the central database failed: {exc}", where=_safe_dsn(dsn)
        ) from exc
    finally:
        conn.close()
    return result


def central_audit_seq(dsn: str, station_id: str) -> int | None:
    """How far the central copy of this station's audit log reaches (None: not there yet)."""
    conn = connect(dsn)
    try:
        row = conn.execute(
            "select audit_seq from stations where station_id = %s", [station_id]
        ).fetchone()
    except Exception:
        return None
    finally:
        conn.close()
    return int(row[0]) if row else None


def held_elsewhere(dsn: str, station_id: str, sha256: str) -> bool:
    """Whether a station other than ``station_id`` has an active hold on ``sha256``. An
    unreachable database counts as yes: a hold is never released on a guess."""
    try:
        conn = connect(dsn)
    except FleetError:
        return True
    try:
        migrate(conn)
        row = conn.execute(
            "select 1 from holds where sha256 = %s and released_at is null"
            " and station_id <> %s limit 1",
            [sha256, station_id],
        ).fetchone()
    except Exception:
        return True
    finally:
        conn.close()
    return row is not None


def kept_elsewhere(dsn: str, station_id: str, sha256: str) -> bool:
    """Whether a station other than ``station_id`` still keeps ``sha256`` (not purged). An
    unreachable database counts as yes: a shared central copy is never deleted on a guess."""
    try:
        conn = connect(dsn)
    except FleetError:
        return True
    try:
        migrate(conn)
        row = conn.execute(
            "select 1 from recordings where sha256 = %s and state <> 'purged'"
            " and station_id <> %s limit 1",
            [sha256, station_id],
        ).fetchone()
    except Exception:
        return True
    finally:
        conn.close()
    return row is not None
