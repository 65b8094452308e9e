"""The clock guard the retention executor calls before any destruction (R9; DESIGN.md
invariant 9).

``check`` judges the station's clock now (``station.clock.judge``) against the anchor kept
beside the audit head, the newest audit entry and, where the host can say, its synchronisation.
When the clock is not trusted, ``refuse`` raises an alert (audited) and the run only proposes:
nothing is pended, purged or restored. The decision reads the real clock of this process, never
the ``--now`` a person gave.
"""

from __future__ import annotations

import sqlite_utils

from station import clock
from station.audit import head
from station.config import Settings
from station.log import get
from station.vault import Vault

log = get()


def newest_audit_time(db: sqlite_utils.Database) -> float | None:
    row = db.execute("select at from audit_log order by seq desc limit 1").fetchone()
    if row is None:
        return None
    try:
        return clock.iso_to_epoch(str(row[0]))
    except ValueError:
        return None


def check(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    *,
    now: clock.Reading | None = None,
) -> clock.Verdict:
    return clock.judge(
        head.anchor(vault.home),
        now or clock.read_now(),
        newest_audit=newest_audit_time(db),
        synchronised=clock.host_synchronised(settings.audit.clock_sync),
        tolerance_s=settings.audit.clock_tolerance_s,
    )


def refuse(db: sqlite_utils.Database, verdict: clock.Verdict) -> None:
    """The alert for a refused destruction: a dock-style alert (``station devices alerts``),
    itself an audit entry."""
    from station.audit.alerts import raise_alert

    log.error("retention.clock_untrusted", state=verdict.state, detail=verdict.detail)
    if db.execute(
        "select 1 from alerts where code = 'clock_untrusted' and acknowledged_at is null"
    ).fetchone():
        return  # one open alert until a supervisor acknowledges it
    raise_alert(
        db,
        "clock_untrusted",
        f"系统时钟不可信，保存期处理只列出不执行 / the clock is not trusted "
        f"({clock.STATE_TEXT[verdict.state]}): retention proposes only — {verdict.detail}",
        data=verdict.to_json(),
    )
