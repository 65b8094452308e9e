"""Errors raised inside the stores speak 北京时间 to people, never UTC ISO with microseconds
(e.g. a closing date before the opening, a case closed already, an expired approval)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlite_utils

from station.access import approvals
from station.access.users import create_user
from station.cases import store
from station.errors import StationError
from station.timeutil import said_time
from station.vault import Vault
from tests.integrity_support import store_recording

UTC_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


def test_case_dates_in_errors_are_beijing_time(db: sqlite_utils.Database) -> None:
    opened = dt.datetime(2026, 11, 19, 16, 30, tzinfo=dt.UTC)  # 2026-11-20 00:30 北京时间
    store.create_case(db, "2026-0077", name="案", actor="clerk1", opened_at=opened)
    with pytest.raises(StationError) as err:
        store.close_case(db, "2026-0077", actor="clerk1", closed_at=opened - dt.timedelta(days=1))
    text = err.value.render()
    assert "结案日期早于立案" in text and "2026-11-20 00:30:00 北京时间" in text, text
    assert "2026-11-19 00:30:00 北京时间" in text and not UTC_ISO.search(text), text
    store.close_case(db, "2026-0077", actor="clerk1", closed_at=opened + dt.timedelta(hours=1))
    with pytest.raises(StationError) as err:
        store.close_case(db, "2026-0077", actor="clerk1")
    text = err.value.render()
    assert "2026-11-20 01:30:00 北京时间" in text and not UTC_ISO.search(text), text


def test_expired_approval_is_said_in_beijing_time(vault: Vault, db: sqlite_utils.Database) -> None:
    clerk = create_user(db, "li", "clerk", "correct horse 1", actor="setup")
    boss = create_user(db, "zhou", "supervisor", "correct horse 1", actor="setup")
    sha = store_recording(vault, db, b"x" * 1000, seq=1)["sha256"]
    req = approvals.create_request(
        db, clerk, purpose="export", reason="法院调取", recordings=[sha], recipient="法院"
    )
    past = dt.datetime(2026, 3, 1, 1, 0, tzinfo=dt.UTC)
    approvals.decide(db, boss, req.id, approve=True,
                     valid_until=past + dt.timedelta(minutes=30), now=past)  # fmt: skip
    with pytest.raises(StationError) as err:
        approvals.usable_request(db, clerk, req.id, purposes=("export",))
    text = err.value.render()
    assert "2026-03-01 09:30:00 北京时间" in text and not UTC_ISO.search(text), text
    assert said_time(None) == "" and said_time("not a time") == "not a time"
    assert said_time("2026-03-01T01:30:00.123456Z", "Europe/Berlin").startswith(
        "2026-03-01 02:30:00 UTC+0100"
    )


def test_messages_made_outside_a_command_use_the_stations_zone(vault: Vault) -> None:
    """A store error raised while the web screens answer a request (no command running, another
    thread) names the time in ``station.timezone``, which the web app set when it started."""
    import threading

    from station.config import Settings
    from station.timeutil import set_station_zone, station_zone
    from station.web.app import create_app

    settings = Settings()
    settings.station.timezone = "Europe/Berlin"
    said: list[str] = []
    try:
        create_app(vault, settings)
        worker = threading.Thread(target=lambda: said.append(said_time("2026-03-01T01:30:00Z")))
        worker.start()
        worker.join()
        assert station_zone() == "Europe/Berlin"
    finally:
        set_station_zone("Asia/Shanghai")
    assert said == ["2026-03-01 02:30:00 UTC+0100"]
    assert said_time("2026-03-01T01:30:00Z") == "2026-03-01 09:30:00 北京时间"


def test_the_zone_mark_is_the_offset_at_that_time() -> None:
    """A summer time and a winter time in one zone carry their own offsets, whenever said."""
    assert said_time("2026-07-01T01:30:00Z", "Europe/Berlin") == "2026-07-01 03:30:00 UTC+0200"
    assert said_time("2026-01-01T01:30:00Z", "Europe/Berlin") == "2026-01-01 02:30:00 UTC+0100"
    assert said_time("2026-07-01T01:30:00Z", "Asia/Shanghai").endswith("09:30:00 北京时间")
