"""What the screens' routes share: the session cookie's name, :class:`WebState` (vault,
settings, sessions, the status feed, templates with autoescaping on) and ``state_of(request)``.
The kiosk (``app``) and the office pages (``office``) both build on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from station.config import Settings
from station.vault import Vault
from station.web.auth import LoginThrottle, Sessions
from station.web.feed import StatusFeed

HERE = Path(__file__).parent
COOKIE = "station_session"


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
    )
    return Jinja2Templates(env=env)


class WebState:
    """What the routes share: the vault, settings, sessions, the status feed, the disc job."""

    def __init__(self, vault: Vault, settings: Settings) -> None:
        self.vault = vault
        self.settings = settings
        self.sessions = Sessions(
            settings.web.session_idle_minutes * 60, settings.web.session_max_hours * 3600
        )
        self.throttle = LoginThrottle()
        self.feed = StatusFeed(vault.run)
        self.templates = make_templates()
        self.secure_cookie = bool(settings.web.tls_cert)
        self.disc_thread: Any = None
        self.disc_error: str | None = None


def state_of(request: Request) -> WebState:
    return request.app.state.web
