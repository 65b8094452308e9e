"""`station run` wiring: the services beside the docks and their status on the board."""

from __future__ import annotations

import json
import os

from click.testing import CliRunner

from station.app.compose import build_daemon
from station.cli import main
from station.config import Settings
from station.diskspace import SpaceWatch
from station.inbox.service import InboxService
from station.settings_watch import SettingsWatcher
from station.status import StatusBoard
from station.transcode.service import TranscodeService
from station.vault import Vault
from station.verify.schedule import IntegrityService, TickResult
from station.web.server import WebService


def test_build_daemon_wires_every_service(vault: Vault) -> None:
    from station.catalog import open_catalog

    open_catalog(vault.catalog_path).close()
    daemon = build_daemon(vault, Settings())
    kinds = {type(s) for s in daemon.services}
    assert kinds == {
        TranscodeService,
        InboxService,
        IntegrityService,
        SettingsWatcher,
        SpaceWatch,
        WebService,
    }
    web = next(s for s in daemon.services if isinstance(s, WebService))
    assert web.listen.host == "127.0.0.1" and web.listen.port == 8470  # web.listen's default
    assert daemon.on_session_start and daemon.on_session_finally  # transcode paused while docked
    integrity = next(s for s in daemon.services if isinstance(s, IntegrityService))
    integrity._on_tick(TickResult(checkpoint_size=42, verify_ok=True))
    status = json.loads((vault.run / "status.json").read_text())
    assert status["services"]["integrity"]["checkpoint_size"] == 42
    # after a dock session the archival queue is on the board too
    for hook in daemon.on_session_end[1:]:  # [0] wakes the (unstarted) transcode service
        hook(None)
    status = json.loads((vault.run / "status.json").read_text())
    assert status["services"]["transcode"]["counts"] == {}
    # the vault disk's free space is on the board after each check
    space = next(s for s in daemon.services if isinstance(s, SpaceWatch))
    space.check_once()
    status = json.loads((vault.run / "status.json").read_text())
    assert status["services"]["vault_space"]["threshold_percent"] == 10.0


def test_no_transcode_service_when_profile_off(vault: Vault) -> None:
    settings = Settings()
    settings.transcode.profile = "off"
    daemon = build_daemon(vault, settings)
    assert not any(isinstance(s, TranscodeService) for s in daemon.services)
    assert daemon.on_session_start == []
    settings.web.listen = ""  # no screens
    assert not any(isinstance(s, WebService) for s in build_daemon(vault, settings).services)


def test_status_shows_services(vault: Vault) -> None:
    board = StatusBoard(vault.run / "status.json", pid=os.getpid())
    board.update("1-1", phase="done", safe_to_undock=True, device_id="ZFY0001")
    board.set_service("inbox", {"folders": [{"path": "/srv/inbox"}], "drops": {"done": 3}})
    board.set_service("integrity", {"checkpoint_size": 7, "verify_ok": True})
    board.set_service("transcode", {"counts": {"done": 5, "failed": 1}})
    res = CliRunner().invoke(main, ["--home", str(vault.home), "status"])
    assert res.exit_code == 0, res.output
    assert "/srv/inbox" in res.output and '"done": 3' in res.output
    assert "检查点 checkpoint 7" in res.output and "通过 / ok" in res.output
    assert "done 5, failed 1" in res.output
    data = json.loads(
        CliRunner().invoke(main, ["--home", str(vault.home), "status", "--json"]).stdout
    )
    assert data["services"]["inbox"]["drops"] == {"done": 3}
