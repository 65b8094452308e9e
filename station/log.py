"""structlog set-up. Events have stable dotted names (``ingest.file_stored``, ``dock.added``)
that alerts and auditors can match on; the values are keyword fields, never prose."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


# syslog priorities for journald's stream prefix (``<4>`` = warning), so that
# ``journalctl -p warning`` finds ``dock.alert`` and every other warning.
_PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2, "exception": 3}


def _journal_prefix(_logger: Any, method: str, event: Any) -> Any:
    level = method if method in _PRIORITY else "info"
    return f"<{_PRIORITY[level]}>{event}"


# the configured level, and the configuration asked for before structlog was loaded
_state: dict[str, Any] = {"level": logging.WARNING, "pending": None}
_METHOD_LEVELS = {**_LEVELS, "exception": logging.ERROR, "msg": logging.INFO}


def configure(
    level: str = "info", *, json: bool = False, stream: Any = None, journal: bool | None = None
) -> None:
    """``journal`` (default: when systemd connected stderr to the journal, ``JOURNAL_STREAM``)
    prefixes every line with its syslog priority. structlog itself is loaded only by the first
    event at or above ``level`` (quick commands start without it)."""
    _state["level"] = _LEVELS.get(level, logging.INFO)
    if "structlog" in sys.modules:
        _state["pending"] = None
        _apply(level, json, stream, journal)
    else:
        _state["pending"] = (level, json, stream, journal)


def _apply(level: str, json: bool, stream: Any, journal: bool | None) -> None:
    import structlog

    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    if journal is None:
        journal = stream is None and bool(os.environ.get("JOURNAL_STREAM"))
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        renderer,
    ]
    if journal:
        processors.append(_journal_prefix)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )


def _structlog() -> Any:
    """structlog, with a configuration asked for before it was loaded applied first."""
    import structlog

    pending = _state["pending"]
    if pending is not None:
        _state["pending"] = None
        _apply(*pending)
    return structlog


def _drop(*_args: Any, **_kwargs: Any) -> None:
    return None


class _LazyLogger:
    """A logger that loads structlog on its first event at or above the configured level, so
    that ``station --help`` and other quick commands start without it."""

    def __init__(self, name: str | None) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._logger is None:
            method_level = _METHOD_LEVELS.get(attr)
            below = method_level is not None and method_level < _state["level"]
            if below and "structlog" not in sys.modules:
                return _drop
            structlog = _structlog()
            self._logger = (
                structlog.get_logger(self._name) if self._name else structlog.get_logger()
            )
        elif _state["pending"] is not None:
            _structlog()
        return getattr(self._logger, attr)


def get(name: str | None = None) -> Any:
    return _LazyLogger(name)


QUIET = "quiet"


def configure_cli(home: Path, verbose: int) -> None:
    """Logging for a command run by a person.

    A terminal shows messages for people only: events go to ``<home>/log/station-cli.log``
    (JSON lines), or nowhere when that file cannot be written. ``-v`` shows info events on
    stderr, ``-vv`` debug. ``STATION_LOG_JSON=1`` (services) and ``STATION_LOG_LEVEL`` keep
    their meaning: JSON or console lines on stderr at that level.
    """
    as_json = os.environ.get("STATION_LOG_JSON") == "1"
    env_level = os.environ.get("STATION_LOG_LEVEL")
    if as_json or env_level or verbose:
        level = {0: env_level or "info", 1: "info"}.get(verbose, "debug")
        configure(level, json=as_json)
        return
    sink = _cli_log_file(home)
    if sink is None:
        configure("critical", stream=sys.stderr, journal=False)
        return
    configure("info", json=True, stream=sink, journal=False)


_LOG_MAX = 5_000_000


def _cli_log_file(home: Path) -> Any:
    """The append-only CLI log in the station's home, rotated once at 5 MB."""
    folder = home / "log"
    try:
        if not home.is_dir():
            return None
        folder.mkdir(exist_ok=True)
        path = folder / "station-cli.log"
        if path.exists() and path.stat().st_size > _LOG_MAX:
            path.replace(folder / "station-cli.log.1")
        return path.open("a", encoding="utf-8", buffering=1)
    except OSError:
        return None
