"""The clock's state for people and machines (``station clock status``, ``station status``),
kept apart from the ``clock`` commands so that ``station status`` loads no other command's code."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from station import clock
from station.audit import head
from station.retention import clockguard
from station.timeutil import from_timestamp, to_iso

if TYPE_CHECKING:
    from station.cli_util import App


def clock_state(app: App) -> dict[str, object]:
    """The clock's verdict now, its anchor and the host's synchronisation, for people and
    machines (``station clock status``, ``station status``)."""
    now = clock.read_now()
    if app.vault.catalog_path.exists():
        verdict = clockguard.check(app.vault, app.db, app.settings, now=now)
    else:  # not initialised: the anchor alone
        verdict = clock.judge(head.anchor(app.vault.home), now)
    anchor = head.anchor(app.vault.home)
    return {
        **verdict.to_json(),
        "now": to_iso(from_timestamp(now.wall)),
        "anchor": anchor.to_json() if anchor else None,
        "synchronised": clock.host_synchronised(app.settings.audit.clock_sync),
        "kernel_unsynchronised": clock.kernel_unsynchronised(),
    }


def print_clock(state: dict[str, object]) -> None:
    click.echo(f"时钟 / clock: {state['text']} — {state['detail']}")
