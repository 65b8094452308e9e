"""One replication pass (``station fleet sync``; the daemon's fleet service runs the same).

Steps, each in its own error boundary so one failure never hides the others:

1. enable replication on first use: every recording, finished derivative and checkpoint
   already in the catalog is queued, and every mirrored row goes into the outbox;
2. the store: the clock is compared with the store's (refused beyond ``MAX_CLOCK_SKEW_S``), the
   bucket is created with Object Lock or refused without it;
3. queued objects are uploaded (or, when the store already holds the same bytes, adopted) and
   confirmed by reading back size, ETag, SHA-256, retention and legal hold; only then the row
   becomes ``confirmed``, with an audit entry in the same transaction;
4. objects whose retention or hold may have moved (a case link, a long-term mark, a hold, a
   case closed, a purge) are decided again: retention is extended (never shortened), the hold
   mirrored; a recording the station purged loses its central copy once the store's retention
   allows it, recorded in ``fleet_central_purges`` and the audit log;
5. local copies are freed, if ``free_local_after_days`` is set, for objects confirmed again
   right before the unlink;
6. the outbox is pushed to the central database.

A failure of the store or the database raises an alert (once while it lasts) and leaves the
queues as they are: nothing is marked replicated that the store did not confirm.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from station.audit import append
from station.catalog import open_catalog, write_txn
from station.catalog.migrations.m0110_fleet import MIRRORED
from station.config import Settings
from station.errors import FleetError, IntegrityError, StationError
from station.fleet import central
from station.fleet.locks import MIN_LOCK, Lock, lock_for
from station.fleet.store import (
    BucketWithoutLock,
    ClockSkewError,
    Confirmed,
    Store,
    StoreCredentialsError,
    StoreUnreachable,
    boundary,
    expected_etag,
)
from station.hashing.copy import fsync_dir
from station.log import get
from station.retention.facts import iter_facts
from station.retention.policy import Decider, Decision, Policy
from station.timeutil import to_iso, utcnow
from station.vault import Vault

log = get()

Payload = tuple[Path | None, bytes | None, str, int, dict[str, Any]]
BATCH = 256  # queued objects read per query
OBJECT_THREADS = 6  # objects in flight at once
RETRY_BASE = dt.timedelta(minutes=1)
RETRY_MAX = dt.timedelta(hours=6)
DELETE_MARGIN = dt.timedelta(seconds=2)

ALERT_CODES: dict[type[StationError], str] = {
    StoreUnreachable: "fleet_store_unreachable",
    StoreCredentialsError: "fleet_credentials",
    BucketWithoutLock: "fleet_bucket_without_lock",
    ClockSkewError: "fleet_clock_skew",
    central.CentralUnreachable: "fleet_central_unreachable",
    central.CentralRefused: "fleet_central_refused",
    IntegrityError: "fleet_integrity",
}


@dataclass(frozen=True)
class Transfer:
    sha256: str
    size: int
    confirmed: Confirmed
    adopted: bool


@dataclass
class SyncReport:
    started_at: str
    finished_at: str | None = None
    enabled_now: bool = False
    bucket_created: bool = False
    clock_skew_s: float | None = None
    uploaded: int = 0
    adopted: int = 0
    bytes_uploaded: int = 0
    locks_updated: int = 0
    central_deleted: int = 0
    central_waiting: int = 0
    freed: int = 0
    central_rows: int = 0
    central_audit_seq: int | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    stopped: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return dict(asdict(self), ok=self.ok)


def _iso(t: dt.datetime | None) -> str | None:
    return to_iso(t) if t is not None else None


def _parse(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


@contextlib.contextmanager
def sync_lock(vault: Vault) -> Iterator[None]:
    """One pass at a time (the daemon's and a person's): two would upload the same object
    twice, and a second version of a locked object can never be removed."""
    vault.run.mkdir(parents=True, exist_ok=True)
    path = vault.run / "fleet.lock"
    with path.open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FleetError(
                "另一个中心同步正在进行 / another fleet sync is running",
                where=str(path),
                hint="wait for it to finish",
            ) from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def set_state(db: sqlite_utils.Database, **values: Any) -> None:
    with write_txn(db):
        for name, value in values.items():
            db.execute(
                "insert into fleet_state (name, value) values (?, ?)"
                " on conflict (name) do update set value = excluded.value",
                [name, None if value is None else str(value)],
            )


def get_state(db: sqlite_utils.Database) -> dict[str, str | None]:
    return {r[0]: r[1] for r in db.execute("select name, value from fleet_state")}


def enable(
    db: sqlite_utils.Database, actor: str, *, store: bool = True, central: bool = True
) -> bool:
    """Turn the queues on (the object queue for a ``store``, the outbox for a ``central``
    database) and enqueue what the catalog already holds. True when something was turned on."""
    state = get_state(db)
    turn_store = store and state.get("enabled") != "1"
    turn_central = central and state.get("central") != "1"
    if not (turn_store or turn_central):
        return False
    now = to_iso(utcnow())
    with write_txn(db):
        if turn_store:
            db.execute(
                "insert into fleet_state (name, value) values ('enabled', '1')"
                " on conflict (name) do update set value = '1'"
            )
            db.execute(
                "insert or ignore into fleet_objects (key, kind, sha256, recording, rel, size,"
                " queued_at) select 'originals/' || substr(sha256, 1, 2) || '/' || sha256,"
                " 'original', sha256, sha256, vault_path, size, ? from recordings"
                " where state != 'purged' order by ingested_at",
                [now],
            )
            db.execute(
                "insert or ignore into fleet_objects (key, kind, sha256, recording, rel, size,"
                " queued_at) select 'archival/' || substr(sha256, 1, 2) || '/' || sha256,"
                " 'derivative', sha256, original_sha256, vault_path, size, ? from derivatives"
                " where state = 'done' and sha256 is not null order by id",
                [now],
            )
            db.execute(
                "insert or ignore into fleet_objects (key, kind, checkpoint_id, queued_at)"
                " select 'checkpoints/' || key_id || '/' || printf('%012d', size) || '-' ||"
                " root_hash, 'checkpoint', id, ? from audit_checkpoints order by id",
                [now],
            )
        if turn_central:
            db.execute(
                "insert into fleet_state (name, value) values ('central', '1')"
                " on conflict (name) do update set value = '1'"
            )
            for table, pk in MIRRORED.items():
                cols = ", ".join(pk)
                db.execute(
                    f"insert into fleet_outbox (tbl, pk) select '{table}', json_array({cols})"
                    f" from {table} order by {cols}"
                )
        queued = db.execute("select count(*) from fleet_objects").fetchone()[0]
        append(
            db,
            "fleet.enabled",
            actor=actor,
            data={"store": turn_store, "central": turn_central, "objects_queued": queued},
        )
    log.info("fleet.enabled", store=turn_store, central=turn_central, objects_queued=queued)
    return True


class Fleet:
    """The replication of one station (see the module docstring)."""

    def __init__(
        self,
        vault: Vault,
        settings: Settings,
        *,
        actor: str = "station",
        stop: threading.Event | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        min_lock: dt.timedelta = MIN_LOCK,
    ) -> None:
        """``min_lock``: the shortest retention an object gets (footage already expired on
        the station keeps its central copy at least this long)."""
        self.min_lock = min_lock
        self.vault = vault
        self.settings = settings
        self.cfg = settings.fleet
        self.actor = actor
        self.stop = stop or threading.Event()
        self.clock = clock
        self._store: Store | None = None

    @property
    def configured(self) -> bool:
        return bool(self.cfg.s3_endpoint or self.cfg.postgres_dsn)

    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.cfg, stop=self.stop)
        return self._store

    # --- the pass -------------------------------------------------------------------------------

    def sync(self, *, force: bool = True) -> SyncReport:
        """One pass. ``force``: try every queued object now, ignoring its back-off."""
        if not self.configured:
            raise FleetError(
                "没有配置中心存储 / no central store or database configured",
                where=str(self.vault.settings_path),
                hint="set [fleet] s3_endpoint, bucket, access_key, secret_key_file and "
                "postgres_dsn",
            )
        report = SyncReport(started_at=to_iso(self.clock()))
        with sync_lock(self.vault):
            db = open_catalog(self.vault.catalog_path)
            try:
                report.enabled_now = enable(
                    db,
                    self.actor,
                    store=bool(self.cfg.s3_endpoint),
                    central=bool(self.cfg.postgres_dsn),
                )
                if self.cfg.s3_endpoint:
                    self._objects(db, report, force)
                if self.cfg.postgres_dsn and not self.stop.is_set():
                    self._central(db, report)
                report.stopped = self.stop.is_set()
                report.finished_at = to_iso(self.clock())
                set_state(
                    db,
                    last_sync_at=report.finished_at,
                    last_ok_at=report.finished_at if report.ok else get_state(db).get("last_ok_at"),
                    last_error=report.errors[0]["message"] if report.errors else None,
                )
            finally:
                db.close()
        log.info(
            "fleet.synced",
            uploaded=report.uploaded,
            adopted=report.adopted,
            locks=report.locks_updated,
            deleted=report.central_deleted,
            freed=report.freed,
            rows=report.central_rows,
            errors=len(report.errors),
        )
        return report

    def _fail(self, db: sqlite_utils.Database, report: SyncReport, exc: StationError) -> None:
        code = next((c for t, c in ALERT_CODES.items() if isinstance(exc, t)), "fleet_error")
        report.errors.append({"code": code, "message": exc.render(), "where": exc.where})
        log.error("fleet.failed", code=code, error=exc.message, where=exc.where)
        self._alert(db, code, exc.render())

    def _alert(self, db: sqlite_utils.Database, code: str, message: str) -> None:
        """An alert for the people at the station, once while it stays unacknowledged."""
        from station.audit.alerts import raise_alert

        if db.execute(
            "select 1 from alerts where code = ? and acknowledged_at is null", [code]
        ).fetchone():
            return
        try:
            raise_alert(db, code, message, slot="fleet")
        except StationError as exc:
            log.error("fleet.alert_failed", code=code, error=exc.message)

    # --- objects ------------------------------------------------------------------------------

    def _objects(self, db: sqlite_utils.Database, report: SyncReport, force: bool) -> None:
        try:
            store = self.store()
            report.clock_skew_s = store.check_clock(self.clock)
            report.bucket_created = store.ensure_bucket()
        except StationError as exc:
            self._fail(db, report, exc)
            return
        for phase in (self._upload_all, self._locks_all, self._free_local):
            if self.stop.is_set():
                return
            try:
                phase(db, store, report, force)
            except (StoreUnreachable, StoreCredentialsError, ClockSkewError) as exc:
                self._fail(db, report, exc)  # the store as a whole: stop this pass here
                return

    def _decisions(self, db: sqlite_utils.Database, shas: list[str]) -> dict[str, Decision]:
        decider = Decider(Policy.from_settings(self.settings), self.clock())
        return {
            facts.sha256: decider(facts)
            for facts, _row in iter_facts(db, ("stored", "pending_purge", "purged"), shas=shas)
        }

    def _held(self, db: sqlite_utils.Database, shas: list[str]) -> set[str]:
        return {
            r[0]
            for r in db.execute(
                "select distinct sha256 from holds where released_at is null"
                " and sha256 in (select value from json_each(?))",
                [json.dumps(shas)],
            )
        }

    def _lock(self, row: dict[str, Any], decisions: dict[str, Decision], held: set[str]) -> Lock:
        rec = row.get("recording")
        if row["kind"] == "checkpoint" or rec is None:
            return lock_for(None, False, self.clock(), self.min_lock)
        return lock_for(decisions.get(rec), rec in held, self.clock(), self.min_lock)

    def _upload_all(
        self, db: sqlite_utils.Database, store: Store, report: SyncReport, force: bool
    ) -> None:
        """Upload the due queue in queue order, in batches; ``OBJECT_THREADS`` objects travel
        at once (the store's round trips overlap), their results are committed here, on the
        catalog's thread, in one transaction per batch."""
        last: tuple[str, str] = ("", "")
        while not self.stop.is_set():
            sql = (
                "select * from fleet_objects where state = 'queued'"
                " and (queued_at > ? or (queued_at = ? and key > ?))"
            )
            args: list[Any] = [last[0], last[0], last[1]]
            if not force:
                sql += " and (next_try_at is null or next_try_at <= ?)"
                args.append(to_iso(self.clock()))
            rows = [
                dict(r) for r in db.query(sql + " order by queued_at, key limit ?", [*args, BATCH])
            ]
            if not rows:
                return
            last = (rows[-1]["queued_at"], rows[-1]["key"])
            self._upload_batch(db, store, rows, report)

    def _upload_batch(
        self,
        db: sqlite_utils.Database,
        store: Store,
        rows: list[dict[str, Any]],
        report: SyncReport,
    ) -> None:
        shas = sorted({r["recording"] for r in rows if r["recording"]})
        decisions, held = self._decisions(db, shas), self._held(db, shas)
        states = {
            r[0]: r[1]
            for r in db.execute(
                "select sha256, state from recordings where sha256 in"
                " (select value from json_each(?))",
                [json.dumps(shas)],
            )
        }
        dropped = [
            r["key"] for r in rows if r["recording"] and states.get(r["recording"]) == "purged"
        ]
        work = [r for r in rows if r["key"] not in set(dropped)]
        db_lock = threading.Lock()  # the catalog connection is used from the upload threads too
        with db_lock, write_txn(db):
            db.execute(
                "update fleet_objects set state = 'dropped', error = ? where key in"
                " (select value from json_each(?))",
                ["purged on the station before it was replicated", json.dumps(sorted(dropped))],
            )
            # Changes from now on flag the lock again; these uploads carry today's decision.
            db.execute(
                "update fleet_objects set lock_dirty = 0 where key in"
                " (select value from json_each(?))",
                [json.dumps([r["key"] for r in work])],
            )

        def remember(key: str) -> Callable[[str | None], None]:
            def write(upload_id: str | None) -> None:
                with db_lock, write_txn(db):
                    db.execute(
                        "update fleet_objects set upload_id = ? where key = ?", [upload_id, key]
                    )

            return write

        done: list[tuple[dict[str, Any], Lock, Transfer]] = []
        store_error: StationError | None = None
        with ThreadPoolExecutor(OBJECT_THREADS, thread_name_prefix="fleet-object") as pool:
            futures: list[tuple[dict[str, Any], Lock, Future[Transfer]]] = []
            for row in work:
                lock = self._lock(row, decisions, held)
                try:
                    with db_lock:
                        payload = self._payload(db, row)
                except StationError as exc:
                    with db_lock:
                        self._retry_later(db, row, exc)
                        self._fail(db, report, exc)
                    continue
                fut = pool.submit(self._transfer, store, row, payload, lock, remember(row["key"]))
                futures.append((row, lock, fut))
            for row, lock, fut in futures:
                try:
                    done.append((row, lock, fut.result()))
                except (StoreUnreachable, StoreCredentialsError, ClockSkewError) as exc:
                    store_error = store_error or exc
                    with db_lock:
                        self._redirty(db, [row["key"]])
                except StationError as exc:
                    with db_lock:
                        self._retry_later(db, row, exc)
                        self._fail(db, report, exc)
        self._commit(db, done, report)
        if store_error is not None:
            raise store_error

    def _transfer(
        self,
        store: Store,
        row: dict[str, Any],
        payload: Payload,
        lock: Lock,
        remember: Callable[[str | None], None],
    ) -> Transfer:
        """Upload one object (or find it there already) and confirm it; no catalog access."""
        if self.stop.is_set():
            raise FleetError("已停止 / stopped", where=row["key"])
        key = row["key"]
        path, data, sha, size, meta = payload
        with boundary(key):
            conf = store.confirm(key)
            adopted = conf is not None
            if conf is None:
                if path is not None:
                    etag = store.put_file(
                        key,
                        path,
                        sha,
                        meta,
                        lock.retain_until,
                        lock.legal_hold,
                        upload_id=row["upload_id"],
                        on_upload_id=remember,
                    )
                else:
                    assert data is not None
                    etag = store.put_bytes(
                        key, data, dict(meta, sha256=sha), lock.retain_until, lock.legal_hold
                    )
                conf = store.confirm(key)
                if conf is None:
                    raise FleetError("上传后找不到对象 / object not found after upload", where=key)
            else:
                # The store holds this key already (an earlier attempt whose answer was lost,
                # or another station with the same bytes): counted only if the bytes match.
                etag = (
                    expected_etag(path)
                    if path is not None
                    else hashlib.md5(data or b"").hexdigest()
                )
            self._check(key, conf, size, etag, sha)
            conf = self._ensure_lock(store, key, conf, lock)
        return Transfer(sha, size, conf, adopted)

    def _commit(
        self,
        db: sqlite_utils.Database,
        done: list[tuple[dict[str, Any], Lock, Transfer]],
        report: SyncReport,
    ) -> None:
        """Count the confirmed objects: state and audit entry in one transaction."""
        if not done:
            return
        now = to_iso(self.clock())
        with write_txn(db):
            for row, lock, t in done:
                conf = t.confirmed
                db.execute(
                    "update fleet_objects set state = 'confirmed', sha256 = ?, size = ?,"
                    " version_id = ?, etag = ?, retain_until = ?, legal_hold = ?,"
                    " lock_renew_at = ?, upload_id = null, attempts = 0, next_try_at = null,"
                    " error = null, confirmed_at = ? where key = ?",
                    [
                        t.sha256,
                        t.size,
                        conf.version_id,
                        conf.etag,
                        _iso(conf.retain_until),
                        int(conf.legal_hold),
                        _iso(lock.renew_at),
                        now,
                        row["key"],
                    ],
                )
                append(
                    db,
                    "fleet.replicated",
                    actor=self.actor,
                    subject=row["recording"] or row["key"],
                    data={
                        "key": row["key"],
                        "kind": row["kind"],
                        "size": t.size,
                        "etag": conf.etag,
                        "version_id": conf.version_id,
                        "retain_until": _iso(conf.retain_until),
                        "legal_hold": conf.legal_hold,
                        "rule": lock.rule,
                        "adopted": t.adopted,
                    },
                )
        for row, _lock, t in done:
            if t.adopted:
                report.adopted += 1
            else:
                report.uploaded += 1
                report.bytes_uploaded += t.size
            log.info("fleet.replicated", key=row["key"], size=t.size, adopted=t.adopted)

    def _retry_later(
        self, db: sqlite_utils.Database, row: dict[str, Any], exc: StationError
    ) -> None:
        attempts = int(row["attempts"]) + 1
        wait = min(RETRY_BASE * (2 ** (attempts - 1)), RETRY_MAX)
        with write_txn(db):
            db.execute(
                "update fleet_objects set attempts = ?, next_try_at = ?, error = ?,"
                " lock_dirty = 1 where key = ?",
                [attempts, to_iso(self.clock() + wait), exc.render(), row["key"]],
            )

    def _payload(self, db: sqlite_utils.Database, row: dict[str, Any]) -> Payload:
        """(file or bytes, SHA-256, size, metadata) of a queued object."""
        meta: dict[str, Any] = {
            "station": self.settings.station.id,
            "unit": self.settings.station.unit_id,
            "kind": row["kind"],
        }
        if row["kind"] == "checkpoint":
            found = db.execute(
                "select note, size, made_at from audit_checkpoints where id = ?",
                [row["checkpoint_id"]],
            ).fetchone()
            if found is None:
                raise FleetError("检查点不存在 / checkpoint row missing", where=row["key"])
            data = str(found[0]).encode("utf-8")
            meta.update(tree_size=found[1], made_at=found[2])
            return None, data, hashlib.sha256(data).hexdigest(), len(data), meta
        path = self.vault.home / str(row["rel"])
        if not path.is_file():
            raise IntegrityError(
                f"本地文件不存在 / the local {row['kind']} is missing; not replicated",
                where=str(path),
            )
        rec = db.execute(
            "select ext, unit_id, officer_id, device_id, recorded_at, original_name, media_kind"
            " from recordings where sha256 = ?",
            [row["recording"]],
        ).fetchone()
        if rec is not None:
            meta.update(
                ext=rec[0],
                unit=rec[1] or meta["unit"],
                officer=rec[2],
                device=rec[3],
                recorded_at=rec[4],
                original_name=rec[5],
                media_kind=rec[6],
                recording=row["recording"],
            )
        return path, None, str(row["sha256"]), int(row["size"] or path.stat().st_size), meta

    def _check(self, key: str, conf: Confirmed, size: int, etag: str, sha: str) -> None:
        """Confirmed before counted: the store must show what was sent."""
        problems = []
        if conf.size != size:
            problems.append(f"size {conf.size} != {size}")
        if conf.etag != etag:
            problems.append(f"ETag {conf.etag!r} != {etag!r}")
        if conf.sha256 != sha:
            problems.append(f"sha256 {conf.sha256!r} != {sha}")
        if problems:
            raise IntegrityError(
                "中心存储中的对象与本地不符 / the store's object differs from what the station "
                "has: " + "; ".join(problems),
                where=key,
                hint="the object is not counted as replicated; check the store",
            )

    def _ensure_lock(self, store: Store, key: str, conf: Confirmed, lock: Lock) -> Confirmed:
        """Extend retention / set the hold when the store has less; read both back."""
        changed = False
        if (
            conf.mode != "COMPLIANCE"
            or conf.retain_until is None
            or conf.retain_until < (lock.retain_until - dt.timedelta(seconds=1))
        ):
            store.extend_retention(key, conf.version_id, lock.retain_until)
            changed = True
        if conf.legal_hold != lock.legal_hold:
            store.set_legal_hold(key, conf.version_id, lock.legal_hold)
            changed = True
        if changed:
            again = store.confirm(key, conf.version_id)
            if again is None:
                raise FleetError("对象已不在 / the object is gone from the store", where=key)
            conf = again
        if (
            conf.mode != "COMPLIANCE"
            or conf.retain_until is None
            or conf.retain_until < lock.retain_until - dt.timedelta(seconds=1)
        ):
            raise FleetError(
                f"保存期未生效 / the store shows retention {conf.mode} {conf.retain_until}, "
                f"wanted COMPLIANCE until {_iso(lock.retain_until)}",
                where=key,
            )
        if conf.legal_hold != lock.legal_hold:
            raise FleetError(
                f"法律保全未生效 / the store shows legal hold {conf.legal_hold}, wanted "
                f"{lock.legal_hold}",
                where=key,
            )
        return conf

    # --- retention, holds and purges of confirmed objects ------------------------------------

    def _locks_all(
        self, db: sqlite_utils.Database, store: Store, report: SyncReport, force: bool
    ) -> None:
        now = self.clock()
        rows = [
            dict(r)
            for r in db.query(
                "select * from fleet_objects where state = 'confirmed' and (lock_dirty = 1"
                " or (lock_renew_at is not null and lock_renew_at <= ?)) order by key",
                [to_iso(now)],
            )
        ]
        if not rows:
            return
        with write_txn(db):  # changes from now on flag them again
            db.execute(
                "update fleet_objects set lock_dirty = 0 where key in"
                " (select value from json_each(?))",
                [json.dumps([r["key"] for r in rows])],
            )
        shas = sorted({r["recording"] for r in rows if r["recording"]})
        decisions, held = self._decisions(db, shas), self._held(db, shas)
        states = {
            r[0]: r[1]
            for r in db.execute(
                "select sha256, state from recordings where sha256 in"
                " (select value from json_each(?))",
                [json.dumps(shas)],
            )
        }
        for row in rows:
            if self.stop.is_set():
                break
            try:
                if row["recording"] and states.get(row["recording"]) == "purged":
                    self._purge_central(db, store, row, report)
                else:
                    self._relock(db, store, row, self._lock(row, decisions, held), report)
            except (StoreUnreachable, StoreCredentialsError, ClockSkewError):
                self._redirty(db, [r["key"] for r in rows[rows.index(row) :]])
                raise
            except StationError as exc:
                self._redirty(db, [row["key"]])
                self._fail(db, report, exc)

    def _redirty(self, db: sqlite_utils.Database, keys: list[str]) -> None:
        with write_txn(db):
            db.execute(
                "update fleet_objects set lock_dirty = 1 where key in"
                " (select value from json_each(?))",
                [json.dumps(keys)],
            )

    def _relock(
        self,
        db: sqlite_utils.Database,
        store: Store,
        row: dict[str, Any],
        lock: Lock,
        report: SyncReport,
    ) -> None:
        key = row["key"]
        have_until = _parse(row["retain_until"])
        have_hold = bool(row["legal_hold"])
        if have_hold and not lock.legal_hold and self._held_elsewhere(row["recording"]):
            lock = lock._replace(legal_hold=True)  # the object is shared: another station holds
        extend = have_until is None or lock.retain_until > have_until + dt.timedelta(seconds=1)
        if not extend and lock.legal_hold == have_hold:
            with write_txn(db):
                db.execute(
                    "update fleet_objects set lock_renew_at = ? where key = ?",
                    [_iso(lock.renew_at), key],
                )
            return
        conf = store.confirm(key, row["version_id"])
        if conf is None:
            raise FleetError("对象已不在中心存储 / the object is gone from the store", where=key)
        conf = self._ensure_lock(store, key, conf, lock)
        with write_txn(db):
            db.execute(
                "update fleet_objects set retain_until = ?, legal_hold = ?, lock_renew_at = ?"
                " where key = ?",
                [_iso(conf.retain_until), int(conf.legal_hold), _iso(lock.renew_at), key],
            )
            append(
                db,
                "fleet.lock_updated",
                actor=self.actor,
                subject=row["recording"] or key,
                data={
                    "key": key,
                    "retain_until": _iso(conf.retain_until),
                    "was_until": row["retain_until"],
                    "legal_hold": conf.legal_hold,
                    "was_hold": have_hold,
                    "rule": lock.rule,
                },
            )
        report.locks_updated += 1
        log.info("fleet.lock_updated", key=key, retain_until=_iso(conf.retain_until))

    def _held_elsewhere(self, recording: str | None) -> bool:
        """Whether another station holds the same recording (content-addressed objects are
        shared); without a central database, nobody else is known to."""
        if not recording or not self.cfg.postgres_dsn:
            return False
        return central.held_elsewhere(self.cfg.postgres_dsn, self.settings.station.id, recording)

    def _kept_elsewhere(self, recording: str | None) -> bool:
        """Whether another station still keeps ``recording`` (from the central database; an
        unreachable database counts as yes). Without a central database: no one is known to."""
        if not recording or not self.cfg.postgres_dsn:
            return False
        return central.kept_elsewhere(self.cfg.postgres_dsn, self.settings.station.id, recording)

    def _purge_central(
        self, db: sqlite_utils.Database, store: Store, row: dict[str, Any], report: SyncReport
    ) -> None:
        """The station purged the recording: remove the central copy once its retention is
        over (the store refuses earlier anyway), and record it."""
        key, version = row["key"], row["version_id"]
        now = self.clock()
        if self._kept_elsewhere(row["recording"]):
            # Content-addressed: another station still keeps the same recording, and may
            # have freed its own copy. This station lets go of the object without deleting it.
            at = to_iso(now)
            with write_txn(db):
                db.execute(
                    "update fleet_objects set state = 'released', deleted_at = ?,"
                    " lock_renew_at = null where key = ?",
                    [at, key],
                )
                append(
                    db,
                    "fleet.central_kept_shared",
                    actor=self.actor,
                    subject=row["recording"],
                    data={"key": key, "version_id": version},
                )
            log.info("fleet.central_kept_shared", key=key)
            return
        conf = store.confirm(key, version)
        if conf is not None:
            until = conf.retain_until
            if conf.legal_hold or (until is not None and until + DELETE_MARGIN > now):
                # Not yet: look again when the retention ends (another station may keep it).
                with write_txn(db):
                    db.execute(
                        "update fleet_objects set retain_until = ?, legal_hold = ?,"
                        " lock_renew_at = ? where key = ?",
                        [
                            _iso(until),
                            int(conf.legal_hold),
                            _iso((until or now) + DELETE_MARGIN),
                            key,
                        ],
                    )
                report.central_waiting += 1
                return
            with write_txn(db):
                append(
                    db,
                    "fleet.central_purge_started",
                    actor=self.actor,
                    subject=row["recording"],
                    data={"key": key, "version_id": version},
                )
            try:
                store.delete_version(key, version)
            except StoreCredentialsError:
                # A locked version answers AccessDenied: the store's clock or another
                # station's longer retention says not yet. Look again at what it holds.
                again = store.confirm(key, version)
                if again is not None and (
                    again.legal_hold or (again.retain_until or now) + DELETE_MARGIN > now
                ):
                    with write_txn(db):
                        db.execute(
                            "update fleet_objects set retain_until = ?, legal_hold = ?,"
                            " lock_renew_at = ? where key = ?",
                            [
                                _iso(again.retain_until),
                                int(again.legal_hold),
                                _iso((again.retain_until or now) + DELETE_MARGIN),
                                key,
                            ],
                        )
                    report.central_waiting += 1
                    return
                raise
            if store.head(key, version) is not None:
                raise FleetError("中心副本删除未生效 / the central copy is still there", where=key)
        at = to_iso(self.clock())
        with write_txn(db):
            db.execute(
                "update fleet_objects set state = 'deleted', deleted_at = ?, lock_renew_at = null"
                " where key = ?",
                [at, key],
            )
            db.execute(
                "insert or ignore into fleet_central_purges (key, recording, kind, version_id,"
                " retain_until, deleted_at, deleted_by) values (?, ?, ?, ?, ?, ?, ?)",
                [key, row["recording"], row["kind"], version, row["retain_until"], at, self.actor],
            )
            append(
                db,
                "fleet.central_purged",
                actor=self.actor,
                subject=row["recording"],
                data={"key": key, "version_id": version, "already_gone": conf is None},
            )
        report.central_deleted += 1
        log.info("fleet.central_purged", key=key)

    # --- freeing local space -----------------------------------------------------------------

    def _free_local(
        self, db: sqlite_utils.Database, store: Store, report: SyncReport, force: bool
    ) -> None:
        days = self.cfg.free_local_after_days
        if days is None:
            return
        now = self.clock()
        cutoff = to_iso(now - dt.timedelta(days=days))
        rows = [
            dict(r)
            for r in db.query(
                "select o.* from fleet_objects o join recordings r on r.sha256 = o.recording"
                " where o.state = 'confirmed' and o.freed_at is null and o.rel is not null"
                " and r.state = 'stored' and r.ingested_at <= ? order by r.ingested_at",
                [cutoff],
            )
        ]
        for row in rows:
            if self.stop.is_set():
                return
            key = row["key"]
            path = self.vault.home / str(row["rel"])
            try:
                conf = store.confirm(key, row["version_id"])
                if conf is None:
                    raise IntegrityError(
                        "中心副本不见了 / the central copy is gone; local copy kept", where=key
                    )
                self._check(key, conf, int(row["size"]), str(row["etag"]), str(row["sha256"]))
                if conf.retain_until is None or conf.retain_until <= now + dt.timedelta(days=1):
                    continue  # about to expire centrally: keep the local copy
            except StationError as exc:
                if isinstance(exc, StoreUnreachable | StoreCredentialsError):
                    raise
                self._fail(db, report, exc)
                continue
            with write_txn(db):  # the intent first, then the unlink
                db.execute(
                    "update fleet_objects set freed_at = ? where key = ?", [to_iso(now), key]
                )
                append(
                    db,
                    "fleet.local_freed",
                    actor=self.actor,
                    subject=row["recording"],
                    data={"key": key, "rel": row["rel"], "version_id": row["version_id"]},
                )
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                fsync_dir(path.parent)
            report.freed += 1
            log.info("fleet.local_freed", key=key, rel=row["rel"])

    # --- the central catalog -----------------------------------------------------------------

    def _central(self, db: sqlite_utils.Database, report: SyncReport) -> None:
        try:
            res = central.push(
                db,
                self.cfg.postgres_dsn,
                self.settings.station.id,
                unit_id=self.settings.station.unit_id,
                unit_name=self.settings.station.unit_name,
            )
        except StationError as exc:
            self._fail(db, report, exc)
            return
        report.central_rows = res.rows
        if res.audit_seq:
            report.central_audit_seq = res.audit_seq
            set_state(db, central_audit_seq=res.audit_seq)
