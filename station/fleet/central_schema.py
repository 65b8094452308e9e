"""The central PostgreSQL schema, created and upgraded by the station itself.

Numbered migrations like the catalog's: each runs once, in its own transaction with its row in
``central_migrations``, under an advisory lock so ten stations starting together do not race.
Every mirrored table has the station's own columns plus ``station_id``; the primary key is
(``station_id``, the station's key). The columns a supervisor's report needs are typed; the
whole row as the station has it is kept beside them in ``row`` (JSON), so a column added on a
station later is never lost on the way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# table -> (primary key columns, typed columns (name, SQL type) besides station_id)
TABLES: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] = {
    "sessions": (
        ("id",),
        (
            ("id", "bigint"),
            ("kind", "text"),
            ("device_id", "text"),
            ("officer_id", "text"),
            ("unit_id", "text"),
            ("started_at", "text"),
            ("ended_at", "text"),
            ("state", "text"),
            ("files_new", "bigint"),
            ("bytes_done", "bigint"),
        ),
    ),
    "recordings": (
        ("sha256",),
        (
            ("sha256", "text"),
            ("size", "bigint"),
            ("ext", "text"),
            ("media_kind", "text"),
            ("state", "text"),
            ("device_id", "text"),
            ("officer_id", "text"),
            ("unit_id", "text"),
            ("recorded_at", "text"),
            ("end_at", "text"),
            ("ingested_at", "text"),
            ("ingest_delay_s", "double precision"),
            ("important", "integer"),
            ("category", "text"),
        ),
    ),
    "derivatives": (
        ("id",),
        (
            ("id", "bigint"),
            ("original_sha256", "text"),
            ("profile", "text"),
            ("sha256", "text"),
            ("size", "bigint"),
            ("state", "text"),
        ),
    ),
    "cases": (
        ("number",),
        (
            ("number", "text"),
            ("name", "text"),
            ("status", "text"),
            ("unit_id", "text"),
            ("opened_at", "text"),
            ("closed_at", "text"),
            ("retention_years", "integer"),
            ("long_term_reason", "integer"),
            ("archived_at", "text"),
        ),
    ),
    "case_recordings": (
        ("case_number", "sha256"),
        (("case_number", "text"), ("sha256", "text"), ("linked_at", "text")),
    ),
    "holds": (
        ("id",),
        (
            ("id", "bigint"),
            ("sha256", "text"),
            ("reason", "text"),
            ("placed_at", "text"),
            ("released_at", "text"),
        ),
    ),
    "recording_marks": (
        ("sha256",),
        (("sha256", "text"), ("long_term_reason", "integer"), ("reviewed_at", "text")),
    ),
    "audit_log": (
        ("seq",),
        (
            ("seq", "bigint"),
            ("at", "text"),
            ("actor", "text"),
            ("event", "text"),
            ("subject", "text"),
            ("prev_hash", "text"),
            ("entry_hash", "text"),
        ),
    ),
    "audit_checkpoints": (
        ("id",),
        (
            ("id", "bigint"),
            ("size", "bigint"),
            ("root_hash", "text"),
            ("made_at", "text"),
            ("key_id", "text"),
            ("note", "text"),
        ),
    ),
    "tombstones": (
        ("sha256",),
        (
            ("sha256", "text"),
            ("size", "bigint"),
            ("rule", "text"),
            ("recorded_at", "text"),
            ("purged_at", "text"),
        ),
    ),
    "fleet_objects": (
        ("key",),
        (
            ("key", "text"),
            ("kind", "text"),
            ("sha256", "text"),
            ("recording", "text"),
            ("size", "bigint"),
            ("state", "text"),
            ("version_id", "text"),
            ("retain_until", "text"),
            ("legal_hold", "integer"),
            ("confirmed_at", "text"),
            ("deleted_at", "text"),
        ),
    ),
    "fleet_central_purges": (
        ("key",),
        (
            ("key", "text"),
            ("recording", "text"),
            ("kind", "text"),
            ("version_id", "text"),
            ("deleted_at", "text"),
        ),
    ),
}


def _c0001(conn: Any) -> None:
    conn.execute(
        "create table stations (station_id text primary key, unit_id text, unit_name text,"
        " outbox_cursor bigint not null default 0, audit_seq bigint not null default 0,"
        " last_push_at timestamptz)"
    )
    for table, (pk, cols) in TABLES.items():
        body = ", ".join(f"{name} {typ}" for name, typ in cols)
        keys = ", ".join(("station_id", *pk))
        conn.execute(
            f"create table {table} (station_id text not null, {body}, row jsonb not null,"
            f" primary key ({keys}))"
        )
    conn.execute("create index recordings_sha on recordings (sha256)")
    conn.execute("create index audit_log_subject on audit_log (subject)")
    conn.execute("create index fleet_objects_recording on fleet_objects (recording)")


MIGRATIONS: list[tuple[int, str, Callable[[Any], None]]] = [
    (1, "schema", _c0001),
]

LOCK_ID = 0x5354_4154_494F_4E  # advisory lock of the central migrations ("STATION")


def migrate(conn: Any) -> list[int]:
    """Apply the central migrations not applied yet; return their numbers."""
    ran: list[int] = []
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", [LOCK_ID])
        conn.execute(
            "create table if not exists central_migrations (number integer primary key,"
            " name text not null, applied_at timestamptz not null default now())"
        )
        done = {r[0] for r in conn.execute("select number from central_migrations")}
        for number, name, up in MIGRATIONS:
            if number in done:
                continue
            up(conn)
            conn.execute(
                "insert into central_migrations (number, name) values (%s, %s)", [number, name]
            )
            ran.append(number)
    return ran
