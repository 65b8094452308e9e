"""The station's screens as one Starlette application: kiosk ``/``, office ``/office/``, JSON
``/api/``.

Invariants: every template is rendered with autoescaping on and the kiosk builds its tiles with
``textContent`` only (user data never becomes markup); every response carries a Content
Security Policy without inline scripts; every office POST checks the session's CSRF token and
the request's Origin; the catalog is opened per request (SQLite, WAL) and closed after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from station.config import Settings
from station.timeutil import set_station_zone
from station.vault import Vault
from station.web.state import WebState, state_of

HERE = Path(__file__).parent
STREAM_MAX_S = 3600.0  # a kiosk's stream is renewed every hour (the browser reconnects)
PING_S = 15.0  # a ping event keeps proxies and the kiosk's own watchdog content

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " media-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none';"
    " form-action 'self'"
)


class SecurityHeaders:
    """Pure ASGI middleware (streaming-safe): CSP and friends on every HTTP response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                extra = [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"DENY"),
                ]
                headers += [(k, v) for k, v in extra if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- kiosk and JSON ------------------------------------------------------------------------------
async def kiosk(request: Request) -> Response:
    st = state_of(request)
    return st.templates.TemplateResponse(
        request,
        "kiosk.html",
        {
            "unit_name": st.settings.station.unit_name,
            "station_id": st.settings.station.id,
            "tz": st.settings.station.timezone,
        },
    )


async def api_status(request: Request) -> Response:
    return Response(state_of(request).feed.current(), media_type="application/json")


async def api_health(request: Request) -> Response:
    """Liveness, and how many kiosk streams are open (each closed page must leave none)."""
    return JSONResponse({"ok": True, "kiosk_streams": len(state_of(request).feed.listeners)})


async def status_stream(request: Request) -> Response:
    """Server-sent events: the whole kiosk view on every change, a ping every ``PING_S``."""
    feed = state_of(request).feed

    async def events() -> AsyncIterator[str]:
        q = feed.subscribe()
        try:
            yield f"retry: 2000\nevent: status\ndata: {feed.current()}\n\n"
            loop = asyncio.get_running_loop()
            end = loop.time() + STREAM_MAX_S
            while not feed.closed.is_set() and loop.time() < end:
                try:
                    text = await asyncio.wait_for(q.get(), PING_S)
                except TimeoutError:
                    yield "event: ping\ndata: {}\n\n"
                    continue
                yield f"event: status\ndata: {text}\n\n"
        finally:
            feed.unsubscribe(q)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def create_app(vault: Vault, settings: Settings) -> Starlette:
    from station.web import office

    set_station_zone(settings.station.timezone)  # messages made while answering requests
    state = WebState(vault, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        state.feed.close()

    routes = [
        Route("/", kiosk),
        Route("/api/status", api_status),
        Route("/api/status/stream", status_stream),
        Route("/api/health", api_health),
        *office.routes(),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)], lifespan=lifespan)
    app.state.web = state
    return app


Handler = Callable[[Request], Awaitable[Response]]


def json_dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, default=str)
