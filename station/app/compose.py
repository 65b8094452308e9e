"""The composition root: every service of ``station run`` built and wired in one place.

Steps: archival transcoding (when a profile is set), the watched inbox and the settings file
watcher, integrity upkeep (checkpoints, periodic verify), the vault's free space, the central
store (when ``[fleet]`` names one) and the screens (``web.listen``) are built here and handed to
:class:`station.app.daemon.Daemon`, with the hooks that tie them to dock sessions (transcoding
pauses while a session runs; new recordings wake transcoding and replication) and to the status
board. The capabilities never import this module.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from station.app.daemon import Daemon
from station.app.inbox_services import daemon_services
from station.config import Settings
from station.diskspace import Space, SpaceWatch
from station.vault import Vault
from station.verify.schedule import IntegrityService


def build_daemon(vault: Vault, settings: Settings) -> Daemon:
    """The daemon with its services: archival transcoding, the watched inbox, integrity upkeep
    (checkpoints, periodic verify), the settings file watched for changes, and the screens
    (setting ``web.listen``; empty: none)."""
    from station.transcode.service import TranscodeService

    transcode = TranscodeService(vault, settings) if settings.transcode.profile != "off" else None
    wakes = [transcode.wake] if transcode is not None else []

    def apply_in_place(new: Settings, old: Settings, keys: list[str]) -> None:
        # every part holding the settings object sees the new values (dock thresholds, …)
        for f in dataclasses.fields(Settings):
            setattr(settings, f.name, getattr(new, f.name))

    inbox, watcher = daemon_services(
        vault, settings, on_settings=[apply_in_place], on_ingested=wakes
    )
    integrity = IntegrityService(vault, settings)
    space = _space_watch(vault, settings)
    services: list[Any] = [inbox, integrity, watcher, space]
    fleet = _fleet_service(vault, settings)
    if fleet is not None:
        services.append(fleet)
    if settings.web.listen:
        # the screens (kiosk, office pages) from the same process; refuses a non-loopback
        # address without TLS before anything starts
        from station.web.server import WebService

        services.append(WebService(vault, settings))
    if transcode is not None:
        services.insert(0, transcode)
    # A dock session has the disks first: transcoding pauses (nested) while any session runs
    # and resumes after, then wakes for the new recordings (ingest keeps >= 90 % of its speed).
    pause: list[Any] = [transcode.pause] if transcode is not None else []
    resume: list[Any] = [transcode.resume] if transcode is not None else []
    wake: list[Any] = [lambda _outcome: transcode.wake()] if transcode is not None else []
    daemon = Daemon(
        vault,
        settings,
        actor="station",
        services=services,
        on_session_start=pause,
        on_session_finally=resume,
        on_session_end=wake,
    )
    # the services' own status beside the slots, for `station status` and a screen
    board = daemon.board
    inbox.status_listeners.append(lambda st: board.set_service("inbox", st))
    if transcode is not None:
        # after each session: the archival queue as it stands (queued, running, done, failed)
        daemon.on_session_end.append(lambda _outcome: _transcode_status(vault, board))
    space.on_check = lambda sp: board.set_service("vault_space", sp.to_dict())
    integrity.listeners.append(
        lambda r: board.set_service(
            "integrity", {"checkpoint_size": r.checkpoint_size, "verify_ok": r.verify_ok}
        )
    )
    if fleet is not None:
        # after each session the new recordings go to the central store (R19)
        daemon.on_session_end.append(lambda _outcome: fleet.wake())
        fleet.listeners.append(lambda st: board.set_service("fleet", st))
    return daemon


def _fleet_service(vault: Vault, settings: Settings) -> Any:
    """The central store's replication (R19), when ``[fleet]`` names a store or database."""
    if not (settings.fleet.s3_endpoint or settings.fleet.postgres_dsn):
        return None
    from station.fleet.service import FleetService

    return FleetService(vault, settings)


def _space_watch(vault: Vault, settings: Settings) -> SpaceWatch:
    """The vault's free space, alerted through the dock's alert table (own connection)."""
    from station.audit import alerts
    from station.catalog import open_catalog
    from station.diskspace import ALERT_CODE, SpaceWatch

    def has_open() -> bool:
        db = open_catalog(vault.catalog_path, migrate=False)
        try:
            return any(a["code"] == ALERT_CODE for a in alerts.list_alerts(db))
        finally:
            db.close()

    def alert(sp: Space) -> None:
        db = open_catalog(vault.catalog_path, migrate=False)
        try:
            alerts.raise_alert(db, ALERT_CODE, sp.message(), data=sp.to_dict())
        finally:
            db.close()

    return SpaceWatch(vault.home, settings, has_open_alert=has_open, raise_alert=alert)


def _transcode_status(vault: Vault, board: Any) -> None:
    from station.catalog import open_catalog
    from station.transcode import jobs

    db = open_catalog(vault.catalog_path, migrate=False)
    try:
        board.set_service("transcode", {"counts": jobs.status(db, limit=0)["counts"]})
    finally:
        db.close()
