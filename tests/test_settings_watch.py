"""The settings file watched with real inotify."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from station.config import Settings
from station.settings_watch import SettingsWatcher, changed_keys, split_where


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[Settings, Settings, list[str]]] = []
        self.fail = fail

    def __call__(self, new: Settings, old: Settings, keys: list[str]) -> None:
        if self.fail:
            raise RuntimeError("part refused the change")
        self.calls.append((new, old, keys))


@pytest.fixture
def toml(tmp_path: Path) -> Path:
    p = tmp_path / "station.toml"
    p.write_text("[inbox]\nsettle_seconds = 5.0\n", encoding="utf-8")
    return p


def _save(watcher: SettingsWatcher, path: Path, text: str, *, rename: bool = False) -> None:
    gen = watcher.generation
    if rename:  # how editors save: write a temp file, rename it over the original
        tmp = path.with_name(".station.toml.swp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    else:
        path.write_text(text, encoding="utf-8")
    assert watcher.wait_checked(gen, 10), "the watcher never read the file"


def _events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


@pytest.mark.parametrize("rename", [False, True])
def test_valid_change_is_applied_and_logged(toml: Path, rename: bool) -> None:
    rec = Recorder()
    w = SettingsWatcher(toml, rec)
    assert w.current.inbox.settle_seconds == 5.0
    w.start()
    try:
        with capture_logs() as logs:
            _save(w, toml, '[inbox]\nsettle_seconds = 9.5\nafter_verify = "keep"\n', rename=rename)
    finally:
        w.stop()
    (call,) = rec.calls
    assert call[2] == ["inbox.after_verify", "inbox.settle_seconds"]
    assert w.current.inbox.settle_seconds == 9.5 and w.current.inbox.after_verify == "keep"
    (ev,) = _events(logs, "settings.applied")
    assert ev["changed"] == ["inbox.after_verify", "inbox.settle_seconds"]


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("[inbox]\nsettle_seconds = 5.0\nbogus = 1\n", "inbox.bogus", "unknown key"),
        ("[inbox]\nsettle_seconds = -1\n", "inbox.settle_seconds", "between"),
        ('[inbox]\nsettle_seconds = "soon"\n', "inbox.settle_seconds", "expected a number"),
        ("[inbox\nsettle_seconds = 1\n", "", "not valid TOML"),
        ("[retention]\nroutine_months = 3\n", "retention.routine_months", "R9"),
    ],
)
def test_invalid_change_is_refused_with_key_and_reason(
    toml: Path, text: str, key: str, reason: str
) -> None:
    rec = Recorder()
    w = SettingsWatcher(toml, rec)
    w.start()
    try:
        with capture_logs() as logs:
            _save(w, toml, text)
    finally:
        w.stop()
    assert rec.calls == []
    assert w.current.inbox.settle_seconds == 5.0  # the running settings stay
    (ev,) = _events(logs, "settings.refused")
    assert ev["key"] == key and reason in ev["reason"]
    assert ev["log_level"] == "error"
    assert w.status()["last_error"]["key"] == key


def test_removed_file_and_failing_apply_keep_running_settings(toml: Path) -> None:
    rec = Recorder(fail=True)
    w = SettingsWatcher(toml, rec)
    w.start()
    try:
        with capture_logs() as logs:
            _save(w, toml, "[inbox]\nsettle_seconds = 7.0\n")  # the part refuses it
            gen = w.generation
            toml.unlink()
            assert w.wait_checked(gen, 10)
    finally:
        w.stop()
    assert w.current.inbox.settle_seconds == 5.0
    refused = _events(logs, "settings.refused")
    assert len(refused) == 2
    assert "could not apply" in refused[0]["reason"]
    assert "removed" in refused[1]["reason"]
    assert w.refusals == 2 and w.changes == 0


def test_changed_keys_and_where_are_pure() -> None:
    a = Settings()
    b = Settings()
    b.inbox.folders = ["/srv/inbox"]
    assert changed_keys(a, b) == ["inbox.folders"]
    assert changed_keys(a, Settings()) == []
    assert split_where("/x/station.toml: inbox.poll_seconds", Path("/x")) == (
        "/x/station.toml",
        "inbox.poll_seconds",
    )
