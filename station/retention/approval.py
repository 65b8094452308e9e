"""A supervisor decides what is purged (R9: 管理人员根据情况对无保存意义的进行清除).

A real retention run never moves expired footage towards deletion on its own. Steps:

1. the run *proposes*: each expired, stored recording gets one open row in ``purge_proposals``
   (state ``proposed``; the run's rule, reason and keep-until), with an audit entry;
2. a supervisor approves (``station retention approve``) — the whole list or some recordings,
   always with a reason — or rejects with a keep-until date (``station retention reject``);
3. an approved recording is re-decided at that moment (a case link, a mark or a hold added since
   the proposal withdraws it) and only then moved to pending purge for ``retention.grace_days``;
4. the grace period over, the next run purges it; the tombstone names the approver.

Invariant: ``purge_one`` deletes nothing whose latest proposal is not ``pended`` by an approval
(``approval_for``); a recording restored and expired again needs a new approval. A rejected
recording is kept until the date given (``RecordingFacts.kept_until``), then proposed again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlite_utils

from station.audit import append
from station.audit.protect import seal
from station.config import Settings
from station.errors import NotFoundError, VaultFullError
from station.log import get
from station.retention.runtypes import Item, ItemProblem, RetentionError, RunReport, txn
from station.timeutil import to_iso, utcnow
from station.vault import Vault

if TYPE_CHECKING:
    from station.retention.steps import Ctx

log = get()

OPEN = "proposed"
STATES = ("proposed", "approved", "pended", "rejected", "withdrawn")


def latest(db: sqlite_utils.Database, sha: str) -> dict[str, Any] | None:
    rows = list(
        db.query("select * from purge_proposals where sha256 = ? order by id desc limit 1", [sha])
    )
    return rows[0] if rows else None


def approval_for(db: sqlite_utils.Database, sha: str) -> dict[str, Any] | None:
    """The approval behind a pending purge, or None: then nothing may be deleted (R9)."""
    row = latest(db, sha)
    if row is None or row["state"] != "pended":
        return None
    return row


def on_expired(ctx: Ctx, item: Item, purge_after: str) -> None:
    """A real run met an expired, stored recording: propose it, or pend it if a supervisor
    approved it and the pend did not happen yet (an approval interrupted half way)."""
    sha = item.sha256
    row = latest(ctx.db, sha)
    if row is not None and row["state"] == "approved":
        _pend(ctx, row, item, purge_after)
        return
    if row is not None and row["state"] == OPEN:
        ctx.report.awaiting += 1
        return
    with txn(ctx.db):
        pid = ctx.db.execute(
            "insert into purge_proposals (sha256, run_id, rule, reason, keep_until, size,"
            " proposed_at, state) values (?, ?, ?, ?, ?, ?, ?, 'proposed')",
            [sha, ctx.run_id, item.rule, item.reason, item.keep_until, item.size, ctx.as_of],
        ).lastrowid
        append(
            ctx.db,
            "retention.proposed",
            actor=ctx.actor,
            subject=sha,
            data={
                "proposal": pid,
                "rule": item.rule,
                "keep_until": item.keep_until,
                **seal(ctx.db, ("purge_proposals", [pid])),
            },
        )
    ctx.report.proposed.append(sha)
    log.info("retention.proposed", sha256=sha, proposal=pid, rule=item.rule)


ALERT_CODE = "purge_proposed"


def notify(db: sqlite_utils.Database, report: RunReport) -> None:
    """Tell supervisors that a decision waits (R9): a run that proposed new recordings raises
    one alert (``station devices alerts``, the office's alert page) naming how many wait in all;
    while one is open and unacknowledged no second is raised."""
    if not report.proposed:
        return
    from station.usb_dock.registry import raise_alert

    waiting = db.execute(
        "select count(*) from purge_proposals where state = 'proposed'"
    ).fetchone()[0]
    log.info("retention.proposals_waiting", new=len(report.proposed), waiting=waiting)
    if db.execute(
        "select 1 from alerts where code = ? and acknowledged_at is null", [ALERT_CODE]
    ).fetchone():
        return
    raise_alert(
        db,
        ALERT_CODE,
        f"{waiting} 段到期录像待负责人批准或驳回清除（`station retention proposals`）/ {waiting} "
        "expired recordings await a supervisor's purge decision (R9): `station retention "
        "proposals`, then `approve` or `reject`",
        data={"new": len(report.proposed), "waiting": waiting, "run": report.run_id},
    )


def _pend(ctx: Ctx, row: dict[str, Any], item: Item, purge_after: str) -> None:
    ctx.pend_one(item, purge_after)
    with txn(ctx.db):
        ctx.db.execute(
            "update purge_proposals set state = 'pended', pended_at = ? where id = ?",
            [ctx.as_of, row["id"]],
        )
        append(
            ctx.db,
            "retention.proposal_pended",
            actor=ctx.actor,
            subject=item.sha256,
            data={"proposal": row["id"], **seal(ctx.db, ("purge_proposals", [row["id"]]))},
        )


def open_proposals(
    db: sqlite_utils.Database, shas: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    sql = (
        "select p.*, r.recorded_at, r.officer_id, r.device_id, r.category from purge_proposals p"
        " join recordings r on r.sha256 = p.sha256 where p.state = 'proposed'"
    )
    args: list[Any] = []
    if shas is not None:
        sql += " and p.sha256 in (select value from json_each(?))"
        import json

        args.append(json.dumps(list(shas)))
    return list(db.query(sql + " order by p.id", args))


@dataclass
class Decided:
    approved: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    withdrawn: list[dict[str, str]] = field(default_factory=list)
    purge_after: str | None = None
    problems: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "approved": self.approved,
            "rejected": self.rejected,
            "withdrawn": self.withdrawn,
            "purge_after": self.purge_after,
            "problems": self.problems,
        }


def _targets(
    db: sqlite_utils.Database, shas: Sequence[str], all_open: bool
) -> list[dict[str, Any]]:
    from station.recref import resolve_many

    if all_open:
        rows = open_proposals(db)
        if not rows:
            raise RetentionError(
                "没有待批准的清除提议 / no purge proposal is waiting for a decision",
                where="retention approve",
                hint="a real `station retention run` proposes expired routine footage",
            )
        return rows
    if not shas:
        raise RetentionError(
            "没有给出录像 / no recording given", where="SHA256", hint="or use --all"
        )
    wanted = list(resolve_many(db, shas))
    rows = open_proposals(db, wanted)
    found = {r["sha256"] for r in rows}
    for sha in wanted:
        if sha not in found:
            raise NotFoundError(
                f"该录像没有待批准的清除提议 / recording {sha} has no open purge proposal",
                where="SHA256",
                hint="`station retention proposals` lists them",
            )
    return rows


def _need_reason(reason: str | None, where: str) -> str:
    if reason is None or not reason.strip():
        raise RetentionError(
            "须说明理由 / a reason is required (R9: a manager's judgement is recorded)",
            where=where,
        )
    return reason.strip()


def approve(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    shas: Sequence[str],
    *,
    actor: str,
    reason: str | None,
    all_open: bool = False,
    now: dt.datetime | None = None,
    on_step: Callable[[str, str], None] | None = None,
) -> Decided:
    """Approve proposals and move them to pending purge (grace from now). Each recording is
    decided again first: one that a rule keeps now is withdrawn, not pended."""
    from station.retention.executor import run_lock
    from station.retention.facts import iter_facts
    from station.retention.policy import Decider, Policy
    from station.retention.steps import Ctx

    why = _need_reason(reason, "--reason")
    if now is None:
        # The grace period runs from the station clock: never from one it cannot trust.
        from station.retention import clockguard

        verdict = clockguard.check(vault, db, settings)
        if not verdict.trusted:
            clockguard.refuse(db, verdict)
            raise RetentionError(
                f"时钟不可信，不能批准清除 / the clock is not trusted ({verdict.state}): no "
                f"purge can be approved — {verdict.detail}",
                where="retention approve",
                hint="`station clock status`; an administrator can `station clock trust`",
            )
    when = now or utcnow()
    as_of = to_iso(when)
    purge_after = to_iso(when + dt.timedelta(days=settings.retention.grace_days))
    out = Decided(purge_after=purge_after)
    with run_lock(vault):
        rows = _targets(db, shas, all_open)
        decider = Decider(Policy.from_settings(settings), when)
        facts = {
            f.sha256: (f, r)
            for f, r in iter_facts(db, ("stored",), shas=[x["sha256"] for x in rows])
        }
        report = RunReport(as_of=as_of, dry_run=False)
        ctx = Ctx(vault, db, actor, None, as_of, report, on_step or (lambda step, sha: None))
        for row in rows:
            sha = row["sha256"]
            found = facts.get(sha)
            decision = decider(found[0]) if found else None
            if decision is None or not decision.expired:
                why_not = decision.reason if decision else "录像已不在库中 / no longer stored"
                with txn(db):
                    db.execute(
                        "update purge_proposals set state = 'withdrawn', decided_at = ?,"
                        " decided_by = ?, decision_reason = ? where id = ?",
                        [as_of, actor, why_not, row["id"]],
                    )
                    append(
                        db,
                        "retention.proposal_withdrawn",
                        actor=actor,
                        subject=sha,
                        data={
                            "proposal": row["id"],
                            "why": why_not,
                            **seal(db, ("purge_proposals", [row["id"]])),
                        },
                    )
                out.withdrawn.append({"sha256": sha, "why": why_not})
                continue
            with txn(db):
                db.execute(
                    "update purge_proposals set state = 'approved', decided_at = ?,"
                    " decided_by = ?, decision_reason = ? where id = ? and state = 'proposed'",
                    [as_of, actor, why, row["id"]],
                )
                append(
                    db,
                    "retention.approved",
                    actor=actor,
                    subject=sha,
                    data={
                        "proposal": row["id"],
                        "reason": why,
                        "purge_after": purge_after,
                        **seal(db, ("purge_proposals", [row["id"]])),
                    },
                )
            item = Item(
                sha,
                found[1].size,  # type: ignore[index]
                decision.rule,
                decision.reason,
                to_iso(decision.keep_until) if decision.keep_until else None,
                "pend",
            )
            try:
                _pend(ctx, {**row, "state": "approved"}, item, purge_after)
            except ItemProblem as exc:
                ctx.problem(exc.sha256, exc.kind, exc.path, exc.message)
                out.problems.append({"sha256": sha, "kind": exc.kind, "detail": exc.message})
                continue
            except VaultFullError as exc:
                # Approved, not pended: the next run pends it once there is space again.
                log.error("retention.disk_full", sha256=sha, error=exc.message)
                out.problems.append({"sha256": sha, "kind": "disk-full", "detail": exc.message})
                break
            out.approved.append(sha)
    log.info(
        "retention.approval",
        actor=actor,
        approved=len(out.approved),
        withdrawn=len(out.withdrawn),
        problems=len(out.problems),
    )
    return out


def reject(
    db: sqlite_utils.Database,
    shas: Sequence[str],
    *,
    actor: str,
    reason: str | None,
    keep_until: dt.datetime,
    all_open: bool = False,
    now: dt.datetime | None = None,
) -> Decided:
    """Keep proposed recordings until ``keep_until`` (R9: the manager judged them worth keeping);
    after that date the next run proposes them again."""
    why = _need_reason(reason, "--reason")
    when = now or utcnow()
    if keep_until <= when:
        raise RetentionError(
            f"继续保存的期限须晚于现在 / --keep-until {to_iso(keep_until)} is not in the future",
            where="--keep-until",
        )
    as_of, until = to_iso(when), to_iso(keep_until)
    out = Decided()
    with txn(db):
        for row in _targets(db, shas, all_open):
            db.execute(
                "update purge_proposals set state = 'rejected', decided_at = ?, decided_by = ?,"
                " decision_reason = ?, kept_until = ? where id = ?",
                [as_of, actor, why, until, row["id"]],
            )
            append(
                db,
                "retention.rejected",
                actor=actor,
                subject=row["sha256"],
                data={
                    "proposal": row["id"],
                    "reason": why,
                    "kept_until": until,
                    **seal(db, ("purge_proposals", [row["id"]])),
                },
            )
            out.rejected.append(row["sha256"])
    log.info("retention.rejected", actor=actor, count=len(out.rejected), kept_until=until)
    return out
