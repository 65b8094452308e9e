"""Command groups that several parts of the station add commands to (loaded lazily)."""

import click

from station.cli_lazy import LazyGroup


@click.group("recordings", cls=LazyGroup)
def recordings() -> None:
    """录像：列出、查看、标注 / Recordings: list, show, tag."""


@click.group("report", cls=LazyGroup)
def report() -> None:
    """报表 / Reports for supervisors (R17)."""


@click.group("sim", cls=LazyGroup)
def sim() -> None:
    """模拟器 / Simulators for demos and tests: recorder volumes and recorders."""
