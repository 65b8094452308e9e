"""One dock session: identify → check → set clock → expose storage → mount read-only → ingest →
clear only what was verified → unmount. Runs in a worker thread inside its own error boundary:
whatever happens, the session row says how it ended and the slot is left unmounted.

Injected: the mounter (``station.usb_dock.mount``: real read-only mounts in the daemon, a folder
used in place in tests), the clock (the session's times and the time the recorder is set to) and
the drivers by name (``DRIVERS``: how a slot's recorder is opened). What differs between kinds of
recorder is behind the driver interface (``station.recorder.base.RecorderDriver``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from station.audit.log import append as audit
from station.catalog import open_catalog, write_txn
from station.config import DockSection, Settings
from station.custody import Owner
from station.errors import DeviceError, StationError, VaultFullError, VolumeGoneError
from station.ingest import sessions
from station.ingest.engine import IngestContext, IngestProgress, IngestReport, ingest_volume
from station.log import get
from station.recorder.base import Identity, RecorderDriver
from station.recorder.mass_storage import MassStorageDriver
from station.recorder.serial_driver import AuthError, SerialDriver
from station.status import StatusBoard
from station.timeutil import to_iso, utcnow
from station.usb_dock import gaps, messages, registry
from station.usb_dock.checks import Assessment, Flag, assess
from station.usb_dock.mount import MountedVolume, Mounter, SystemMounter, safe_name
from station.usb_dock.slots import DeviceClaims, SlotState
from station.vault import Vault

log = get()

STORAGE_WAIT_S = 30.0

# How a docked recorder of each kind is opened: (slot, catalog, dock settings) -> driver.
DriverOpener = Callable[[SlotState, sqlite_utils.Database, DockSection], RecorderDriver]


def open_serial(st: SlotState, db: sqlite_utils.Database, cfg: DockSection) -> RecorderDriver:
    if st.tty is None:
        raise DeviceError("no serial port for the recorder", where=st.slot)
    return SerialDriver.open(st.tty, timeout_s=cfg.serial_timeout_s)


def open_mass_storage(st: SlotState, db: sqlite_utils.Database, cfg: DockSection) -> RecorderDriver:
    # The device id is the enrolled USB serial's (DESIGN.md invariant 5), else the serial itself.
    device_id = registry.device_for_usb_serial(db, st.usb_serial or "")
    return MassStorageDriver(device_id or (st.usb_serial or "?"))


DRIVERS: dict[str, DriverOpener] = {"serial": open_serial, "mass-storage": open_mass_storage}


@dataclass
class Outcome:
    session_id: int
    state: str  # done | failed | interrupted | refused
    flags: list[dict[str, str]] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)
    report: IngestReport | None = None
    message: str | None = None


class DockSession:
    def __init__(
        self,
        vault: Vault,
        settings: Settings,
        state: SlotState,
        board: StatusBoard,
        claims: DeviceClaims,
        *,
        actor: str = "station",
        mounter: Mounter | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        drivers: Mapping[str, DriverOpener] = DRIVERS,
    ) -> None:
        self.vault = vault
        self.mounter = mounter or SystemMounter()
        self.clock = clock  # aware UTC
        self.drivers = drivers
        self.settings = settings
        self.cfg = settings.dock
        self.state = state
        self.board = board
        self.claims = claims
        self.actor = actor
        self.slot = state.slot
        self.flags: list[Flag] = []
        self.session_id = 0
        self.device_id: str | None = None
        self.volume: MountedVolume | None = None
        self.driver: RecorderDriver | None = None
        self.db: sqlite_utils.Database | None = None
        self.owner: Owner | None = None

    # -- bookkeeping -------------------------------------------------------------------------
    def _status(self, phase: str, **fields: Any) -> None:
        if self.state.gone.is_set():
            return  # the slot is empty now: the screen must not show a ghost
        self.board.update(
            self.slot,
            phase=phase,
            session_id=self.session_id,
            flags=[f.as_dict() for f in self.flags],
            **fields,
        )

    def _add(self, flag: Flag) -> None:
        if flag.code not in (f.code for f in self.flags):
            self.flags.append(flag)

    def _update_row(self, **cols: Any) -> None:
        sessions.update(self.db_, self.session_id, **cols)

    def _open_row(self) -> None:
        self.session_id = sessions.start(
            self.db_,
            kind="dock",
            slot=self.slot,
            owner=self.owner.id if self.owner else None,
            started_at=to_iso(self.clock()),
            actor=self.actor,
            audit_data={"kind": "dock", "slot": self.slot, "driver": self.state.driver},
            driver=self.state.driver,
        )

    # -- the session ---------------------------------------------------------------------------
    def run(self) -> Outcome:
        # DESIGN.md invariant 8: the session and its staging belong to this live owner until
        # the session row is closed; recovery elsewhere leaves them alone meanwhile.
        no_owner: StationError | None = None
        try:
            self.owner = Owner.acquire(self.vault, "dock")
        except StationError as exc:  # e.g. the vault's disk is full: the session says so
            no_owner = exc
        try:
            self.db = open_catalog(self.vault.catalog_path)
        except BaseException:
            if self.owner is not None:
                self.owner.release()
            raise
        try:
            self._open_row()
            log.info("session.started", session_id=self.session_id, slot=self.slot)
            try:
                if no_owner is not None:
                    raise no_owner
                outcome = self._run()
            except Exception as exc:  # the error boundary: one slot's failure stays here
                outcome = self._fail(exc)
            self._finish(outcome)
            return outcome
        finally:
            if self.volume is not None:
                try:
                    self.volume.unmount()
                except StationError as exc:
                    log.error("dock.unmount_failed", slot=self.slot, error=exc.render())
            if self.driver is not None:
                self.driver.close()
            if self.device_id is not None:
                self.claims.release(self.device_id, self.state)
            self.db.close()
            if self.owner is not None:
                self.owner.release()

    def _fail(self, exc: Exception) -> Outcome:
        if self.state.gone.is_set() or isinstance(exc, VolumeGoneError):
            self._add(messages.pulled_out())
            state = "interrupted"
        elif isinstance(exc, VaultFullError):
            self._add(messages.vault_full())
            state = "failed"
        else:
            text = exc.render() if isinstance(exc, StationError) else f"{type(exc).__name__}: {exc}"
            self._add(messages.device_error(text))
            state = "failed"
        log.error(
            "session.failed",
            session_id=self.session_id,
            slot=self.slot,
            state=state,
            error=str(exc),
            exc_info=not isinstance(exc, StationError),
        )
        if state == "failed":
            # R4: a failing device (or a full vault) is reported, not only logged.
            flag = self.flags[-1]
            try:
                registry.raise_alert(
                    self.db_,
                    flag.code,
                    flag.message,
                    device_id=self.device_id,
                    slot=self.slot,
                    session_id=self.session_id,
                )
            except Exception:  # e.g. the catalog's disk is the full one: logged, not fatal
                log.exception("dock.alert_failed", slot=self.slot, code=flag.code)
        report = getattr(exc, "report", None)
        return Outcome(self.session_id, state, report=report, message=str(exc)[:500])

    def _run(self) -> Outcome:
        st = self.state
        self._status("identifying", device_id=None, safe_to_undock=False)
        if not st.recorder:
            return self._refuse_unknown_usb()
        # a recorder of a kind not named by the udev rule speaks the serial protocol
        opener = self.drivers.get(st.driver) or self.drivers["serial"]
        self.driver = opener(st, self.db_, self.cfg)
        drv = self.driver
        identity = drv.identify()
        self.device_id = identity.serial
        registry.seen(self.db_, identity.serial, model=identity.model, driver=drv.name)
        self._status(
            "checking",
            device_id=identity.serial,
            officer_id=identity.officer_id,
            officer_name=identity.officer_name,
        )
        other = self.claims.claim(identity.serial, st)
        if other is not None:
            self._add(messages.duplicate_id(identity.serial, other))
            self.device_id = None  # not ours to release
            return self._refuse(identity, None)
        enrolment = registry.enrolment(self.db_, identity.serial)
        secret = registry.secret_for(self.db_, identity.serial)
        authed = False
        if enrolment is not None and enrolment.enrolled and drv.has_link:
            try:
                if secret is None:
                    raise AuthError("no key enrolled for this device", where=identity.serial)
                drv.authenticate(secret)
                authed = True
            except AuthError as exc:
                self._add(messages.auth_failed(exc.render()))
        battery = drv.battery()
        total, free = drv.storage()
        reading = drv.read_clock()
        a = assess(
            identity,
            enrolment,
            battery,
            total,
            free,
            reading,
            self.cfg,
            self.settings.station.timezone,
        )
        self.flags += [f for f in a.flags if f.code not in (g.code for g in self.flags)]
        self._update_row(
            device_id=identity.serial,
            officer_id=identity.officer_id,
            unit_id=identity.unit_id,
            driver=drv.name,
            battery_pct=battery,
            storage_total=total,
            storage_free=free,
            device_clock=a.device_clock,
            station_clock=to_iso(reading.station_mid) if reading else None,
            drift_s=a.drift_s,
            flags=self._flags_json(),
        )
        self._status(
            "checking",
            battery_pct=battery,
            storage_total=total,
            storage_free=free,
            drift_s=a.drift_s,
        )
        if a.refused or any(f.code == "auth_failed" for f in self.flags):
            return self._refuse(identity, a)
        if authed and reading is not None:
            # R3: correct the device clock after measuring its drift.
            now_local = self.clock().astimezone(ZoneInfo(self.settings.station.timezone))
            drv.set_clock(now_local.replace(tzinfo=None))
            log.info(
                "dock.clock_set",
                session_id=self.session_id,
                device_id=identity.serial,
                drift_s=a.drift_s,
            )
        drv.expose_storage()
        return self._ingest(identity, a)

    @property
    def owner_(self) -> Owner:
        assert self.owner is not None
        return self.owner

    @property
    def db_(self) -> sqlite_utils.Database:
        assert self.db is not None
        return self.db

    def _flags_json(self) -> str:
        return json.dumps([f.as_dict() for f in self.flags], ensure_ascii=False)

    def _refuse_unknown_usb(self) -> Outcome:
        st = self.state
        self._add(messages.unknown_usb(st.usb_serial))
        registry.raise_alert(
            self.db_,
            "unknown_device",
            self.flags[-1].message,
            slot=self.slot,
            session_id=self.session_id,
            data={"usb_serial": st.usb_serial},
        )
        return Outcome(self.session_id, "refused", message="unknown USB storage")

    def _refuse(self, identity: Identity, a: Assessment | None) -> Outcome:
        codes = [f.code for f in self.flags]
        main = next(
            c
            for c in (
                "auth_failed",
                "duplicate_id",
                "unknown_device",
                "identity_invalid",
                "device_in_repair",
                "device_retired",
            )
            if c in codes
        )
        registry.raise_alert(
            self.db_,
            main,
            next(f.message for f in self.flags if f.code == main),
            device_id=identity.serial,
            slot=self.slot,
            session_id=self.session_id,
            data={"identity": identity.as_dict()},
        )
        return Outcome(self.session_id, "refused", message=main)

    def _wait_storage(self) -> tuple[str, str | None]:
        st = self.state
        if not st.storage_ready.wait(STORAGE_WAIT_S) or st.storage is None:
            raise DeviceError(
                "记录仪存储未出现 / the recorder's storage did not appear",
                where=self.slot,
                hint="re-dock the recorder",
            )
        if st.gone.is_set():
            raise VolumeGoneError(where=self.slot)
        return st.storage, st.fstype

    def _ingest(self, identity: Identity, a: Assessment) -> Outcome:
        source, fstype = self._wait_storage()
        if self.state.halt.is_set():  # the station is stopping: do not start a copy now
            self._add(messages.stopping())
            return Outcome(self.session_id, "interrupted", message="station stopping")
        self._status("mounting")
        root = Path(self.cfg.mount_root) if self.cfg.mount_root else self.vault.run / "mnt"
        self.volume = self.mounter.mount(source, fstype, root / safe_name(self.slot))
        drv = self.driver
        if drv is not None and drv.storage_mounted(self.volume.root):
            identity = drv.identify()
            enrolment = registry.enrolment(self.db_, identity.serial)
            total, free = drv.storage()
            again = assess(
                identity,
                enrolment,
                None,
                total,
                free,
                None,
                self.cfg,
                self.settings.station.timezone,
            )
            # Storage is known now that the volume is mounted; the rest is re-checked.
            self.flags = [f for f in self.flags if f.code != "storage_unknown"]
            self.flags += [f for f in again.flags if f.code not in (g.code for g in self.flags)]
            self._update_row(
                officer_id=identity.officer_id,
                unit_id=identity.unit_id,
                storage_total=total,
                storage_free=free,
                flags=self._flags_json(),
            )
        method = (
            f"执法记录仪 / body camera {identity.model or ''} ({drv.name if drv else '?'} driver)"
        )
        ctx = IngestContext(
            kind="dock",
            device_id=identity.serial,
            officer_id=identity.officer_id,
            unit_id=identity.unit_id,
            drift_s=a.correct_by_s,
            method=method.replace("  ", " "),
            slot=self.slot,
            session_id=self.session_id,
        )
        self._status("copying", files_done=0, bytes_done=0)

        first = [True]

        def progress(p: IngestProgress) -> None:
            if first[0] and p.bytes_done > 0:
                first[0] = False
                log.info("dock.first_byte", session_id=self.session_id, slot=self.slot)
            if self.state.gone.is_set():
                return
            self.board.update(
                self.slot,
                files_total=p.files_total,
                files_done=p.files_done,
                bytes_total=p.bytes_total,
                bytes_done=p.bytes_done,
            )

        log.info(
            "dock.ingest_started",
            session_id=self.session_id,
            slot=self.slot,
            mountpoint=str(self.volume.root),
        )
        try:
            report = ingest_volume(
                self.vault,
                self.db_,
                self.settings,
                self.volume.root,
                ctx,
                actor=self.actor,
                progress=progress,
                stop=self.state.halt,
                owner=self.owner_,
            )
        except (VaultFullError, VolumeGoneError) as exc:
            partial = getattr(exc, "report", None)
            outcome = self._fail(exc)
            if isinstance(exc, VaultFullError) and partial is not None:
                outcome.cleared = self._clear(partial)
            return outcome
        log.info("session.ingested", slot=self.slot, **report.summary())
        if report.aborted:
            if self.state.gone.is_set() or report.aborted == "volume gone":
                return self._fail(VolumeGoneError(where=self.slot))
            self._add(messages.stopping())
            return Outcome(self.session_id, "interrupted", report=report, message=report.aborted)
        failed = report.count("failed")
        if failed:
            self._add(messages.files_failed(failed))
        # R20: what is missing on the recorder (deleted before docking) is flagged.
        for flag in gaps.record_session_gaps(
            self.db_, self.session_id, identity.serial, actor=self.actor
        ):
            self._add(flag)
        cleared = self._clear(report)
        return Outcome(self.session_id, "done", report=report, cleared=cleared)

    def _clear(self, report: IngestReport) -> list[str]:
        """DESIGN.md invariant 2: only files the engine re-read, matched and committed in this
        session. The intent (every file to go, with its hash) is audited and committed before
        the first unlink; the per-file results after, even when clearing fails part-way (R7)."""
        if self.cfg.clear_policy != "after-verify" or self.volume is None:
            return []
        if self.state.gone.is_set():
            return []
        by_source = {f.source: f for f in report.files}
        verified = {p: by_source[p].size for p in report.verified_sources() if p in by_source}
        if not verified:
            return []
        self._status("clearing")
        root = self.volume.root
        files = [
            {"path": str(p.relative_to(root)), "sha256": by_source[p].sha256, "size": size}
            for p, size in sorted(verified.items())
        ]
        with write_txn(self.db_):
            intent = audit(
                self.db_,
                "dock.clear_intent",
                actor=self.actor,
                subject=f"session:{self.session_id}",
                data={"files": files, "device_id": self.device_id},
            )
            sessions.clearing_intent(self.db_, self.session_id)
        log.info("dock.clear_intent", session_id=self.session_id, files=len(files), seq=intent)
        error: StationError | None = None
        try:
            cleared = self.volume.clear(verified)
        except StationError as exc:
            cleared, error = list(self.volume.cleared), exc
        except OSError as exc:
            cleared = list(self.volume.cleared)
            error = DeviceError(f"clearing failed: {exc.strerror}", where=self.slot)
        done = set(cleared)
        with write_txn(self.db_):
            audit(
                self.db_,
                "dock.cleared",
                actor=self.actor,
                subject=f"session:{self.session_id}",
                data={
                    "intent_seq": intent,
                    "files": cleared,
                    "left": [f["path"] for f in files if f["path"] not in done],
                    "device_id": self.device_id,
                    "error": error.render() if error else None,
                },
            )
            sessions.clearing_done(self.db_, self.session_id, len(cleared))
        log.info("dock.cleared", session_id=self.session_id, files=len(cleared))
        if error is not None:
            self._add(messages.device_error(error.render()))
            log.error("dock.clear_failed", session_id=self.session_id, error=error.render())
        return cleared

    def _finish(self, o: Outcome) -> None:
        o.flags = [f.as_dict() for f in self.flags]
        if self.volume is not None:
            self.volume.unmount()
        sessions.end(
            self.db_,
            self.session_id,
            state=o.state,
            ended_at=to_iso(self.clock()),
            actor=self.actor,
            audit_data={
                "state": o.state,
                "flags": [f.code for f in self.flags],
                "cleared": len(o.cleared),
                "slot": self.slot,
            },
            safe_to_undock=True,
            flags=self._flags_json(),
            message=o.message,
            cleared=len(o.cleared),
        )
        phase = o.state if o.state in ("done", "refused", "failed", "interrupted") else "failed"
        self._status(
            phase, safe_to_undock=True, cleared=len(o.cleared), state=o.state, message=o.message
        )
        log.info(
            "session.ended",
            session_id=self.session_id,
            slot=self.slot,
            state=o.state,
            flags=[f.code for f in self.flags],
            cleared=len(o.cleared),
            pid=os.getpid(),
        )
