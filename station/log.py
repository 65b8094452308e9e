"""structlog set-up. Events have stable dotted names (``ingest.file_stored``, ``dock.added``)
that alerts and auditors can match on; the values are keyword fields, never prose.

structlog is imported on the first event, not at start-up: ``get()`` hands out a small proxy and
``configure()`` waits until structlog is loaded, so a command that logs nothing (``station
status``, ``station --help``) never pays for the import. Once structlog is loaded (by the first
event or by anyone importing it), ``configure()`` applies at once, as before.
"""

from __future__ import annotations

import sys
from typing import Any

# the stdlib logging levels (logging itself is not needed to filter)
_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}

# the last configure() call made before structlog was loaded: (level, json, stream)
_pending: tuple[str, bool, Any] | None = None


def _apply(level: str, json: bool, stream: Any) -> None:
    import structlog

    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, 20)),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )


def configure(level: str = "info", *, json: bool = False, stream: Any = None) -> None:
    global _pending
    if "structlog" in sys.modules:
        _pending = None
        _apply(level, json, stream)
    else:
        _pending = (level, json, stream)


def _structlog() -> Any:
    """structlog, with the configuration asked for before it was loaded applied first."""
    global _pending
    import structlog

    if _pending is not None:
        level, json, stream = _pending
        _pending = None
        _apply(level, json, stream)
    return structlog


# the level of each event method; an event below the configured level is dropped unseen
_METHOD_LEVELS = {
    "debug": 10,
    "info": 20,
    "msg": 20,
    "warning": 30,
    "warn": 30,
    "error": 40,
    "exception": 40,
    "critical": 50,
    "fatal": 50,
}


def _drop(*_args: Any, **_kwargs: Any) -> None:
    return None


class _LazyLogger:
    """Stands in for ``structlog.get_logger(name)`` until the first event is logged. While
    structlog is not loaded and ``configure()`` asked for a level above an event's, that event is
    dropped here (what the filtering logger would do) without loading structlog."""

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str | None) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._logger is None:
            level = _METHOD_LEVELS.get(attr)
            if (
                level is not None
                and _pending is not None
                and "structlog" not in sys.modules
                and level < _LEVELS.get(_pending[0], 20)
            ):
                return _drop
            structlog = _structlog()
            self._logger = (
                structlog.get_logger(self._name) if self._name else structlog.get_logger()
            )
        return getattr(self._logger, attr)


def get(name: str | None = None) -> Any:
    if "structlog" in sys.modules:
        structlog = _structlog()
        return structlog.get_logger(name) if name else structlog.get_logger()
    return _LazyLogger(name)
