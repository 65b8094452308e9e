"""What ``station run`` hands to :class:`station.app.daemon.Daemon` for the inbox.

    transcode = TranscodeService(vault, settings)
    inbox, watcher = daemon_services(vault, settings, on_ingested=[transcode.wake])
    Daemon(vault, settings, services=[transcode, inbox, watcher, ...])

The settings watcher applies ``inbox.*`` changes to the running inbox service and passes every
valid change on to ``on_settings`` callbacks of other parts; invalid files are refused and
logged by the watcher itself (the running settings stay).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from station.config import Settings
from station.inbox.processor import DropOutcome
from station.inbox.service import InboxService
from station.log import get
from station.settings_watch import OnChange, SettingsWatcher
from station.vault import Vault

log = get()


def daemon_services(
    vault: Vault,
    settings: Settings,
    *,
    on_settings: Sequence[OnChange] = (),
    on_ingested: Sequence[Callable[[], None]] = (),
    actor: str = "inbox",
) -> tuple[InboxService, SettingsWatcher]:
    inbox = InboxService(vault, settings, actor=actor)
    wakes = list(on_ingested)

    def woke(_outcome: DropOutcome) -> None:
        for wake in wakes:
            wake()

    inbox.ingest_listeners.append(woke)

    def apply(new: Settings, old: Settings, keys: list[str]) -> None:
        if any(k.startswith("inbox.") for k in keys):
            inbox.update_settings(new)
        for cb in on_settings:
            cb(new, old, keys)

    return inbox, SettingsWatcher(vault.settings_path, apply, current=settings)
