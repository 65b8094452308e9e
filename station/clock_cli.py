"""``station clock status|trust``: whether the clock may be used for time-based destruction
(R9; ``station.clock``), and a supervisor's explicit re-anchoring after a wrong clock."""

from __future__ import annotations

import click

from station.access.guard import SUPERVISOR, guard
from station.audit import append, head
from station.catalog import write_txn
from station.cli_util import App, json_option, pass_app, print_json
from station.clock_view import clock_state, print_clock
from station.errors import StationError
from station.log import get

log = get()


@click.group("clock")
def clock_group() -> None:
    """时钟可信度 / Is the clock trusted for time-based destruction (R9)."""


@clock_group.command("status")
@json_option
@pass_app
def status_cmd(app: App, as_json: bool) -> None:
    """时钟状态 / The clock's state: trusted, jumped, behind or unsynchronised."""
    state = clock_state(app)
    if as_json:
        print_json(state)
    else:
        print_clock(state)
        anchor = state["anchor"]
        if isinstance(anchor, dict):
            click.echo(f"锚点 / anchor: {anchor.get('at')} (boot {anchor.get('boot_id')})")


@clock_group.command("trust")
@click.option(
    "--note", required=True, help="依据（如已与标准时间核对）/ why the clock is right now"
)
@json_option
@pass_app
def trust_cmd(app: App, note: str, as_json: bool) -> None:
    """确认时钟正确 / A supervisor vouches that the clock is right now: it becomes the anchor.

    Only for a clock the station cannot judge by itself (the anchor was made by a wrong clock,
    no time service to ask). Audited with the note."""
    guard(app, *SUPERVISOR)
    if not note.strip():
        raise StationError("须说明依据 / give the reason", where="--note")
    before = clock_state(app)
    with write_txn(app.db):
        append(
            app.db,
            "clock.trusted",
            actor=app.actor,
            subject="clock",
            data={"note": note, "before": {k: before[k] for k in ("state", "detail", "now")}},
        )
    verdict = head.advance(app.vault.home, seq=None, entry_hash=None, at=None, force_anchor=True)
    log.warning("clock.trusted", by=app.actor, before=before["state"])
    after = clock_state(app)
    if as_json:
        print_json({"before": before, "after": after, "forced_over": verdict.state})
    else:
        print_clock(after)


COMMANDS = [clock_group]
