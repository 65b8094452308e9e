"""The station's loggers load structlog on the first event that will be shown: a command at the
default (warning) level that only logs info events never imports it, and an event at or above
the level is rendered as before."""

from __future__ import annotations

import subprocess
import sys

_PROBE = """
import sys
from station import log
log.configure("warning")
logger = log.get()
logger.info("probe.quiet", n=1)
print("structlog" in sys.modules)
logger.warning("probe.shown", n=2)
print("structlog" in sys.modules)
"""


def test_filtered_events_do_not_load_structlog() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True
    )
    assert proc.stdout.split() == ["False", "True"]
    assert "probe.shown" in proc.stderr and "n=2" in proc.stderr
    assert "probe.quiet" not in proc.stderr


def test_info_level_shows_info_events() -> None:
    probe = _PROBE.replace('log.configure("warning")', 'log.configure("info")')
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["True", "True"]
    assert "probe.quiet" in proc.stderr
