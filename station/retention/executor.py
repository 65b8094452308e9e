"""The retention executor (R9, R10, R11; DESIGN.md invariant 1).

Deciding and deleting are separate steps. ``make_plan`` asks the pure ``decide()`` about every
recording; ``run`` then, for a real run:

1. finishes purges an interrupted run had committed but not yet unlinked (each leftover file is
   re-hashed, then removed: nothing is deleted twice, no tombstone written twice);
2. purges recordings whose grace period is over: every file (original and derivatives) is
   re-hashed first; a missing or changed file is reported and nothing of that recording is
   deleted; then one transaction writes the tombstone, marks the rows purged and appends the
   audit entry; only after that commit are the files unlinked;
3. restores pending recordings that a rule now keeps (a hold or a case link added in grace);
4. proposes newly expired recordings for a supervisor's decision (``approval``); only an
   approved one is marked (original and derivatives) ``pending_purge`` for
   ``retention.grace_days`` — reversible with ``station retention restore``. The files stay in
   place, read-only, and ``station verify`` keeps checking them until they are purged.

A full disk stops the run and is reported; the failing recording's transaction rolls back.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import sqlite_utils

from station.audit import append
from station.catalog.db import read_ahead, write_txn
from station.config import Settings
from station.custody import WriterLock
from station.errors import NotFoundError, RetentionError, VaultFullError
from station.log import get
from station.retention import approval, bulk, clockguard
from station.retention.facts import load_extras
from station.retention.policy import RULE_ROUTINE, Decider, Policy
from station.retention.runtypes import (
    Item,
    ItemProblem,
    NowInPastError,
    Problem,
    RunReport,
    fast_iso,
)
from station.retention.runtypes import run_lock as run_lock  # re-exported
from station.retention.steps import Ctx
from station.timeutil import to_iso, utcnow
from station.vault import Vault

log = get()
Step = Callable[[str, str], None]


# --- planning (reads only) -------------------------------------------------------------------


def last_as_of(db: sqlite_utils.Database) -> str | None:
    row = db.execute(
        "select max(x) from (select max(as_of) as x from retention_runs"
        " union all select max(pending_at) from retention_items)"
    ).fetchone()
    return row[0] if row else None


def make_plan(
    db: sqlite_utils.Database,
    settings: Settings,
    now: dt.datetime,
    *,
    on_pend: Callable[[Item], None] | None = None,
    on_pend_json: Callable[[str, int], None] | None = None,
) -> RunReport:
    """The plan as of ``now``. With ``on_pend``, newly expired items are handed to it as they are
    decided instead of kept in ``report.pend`` (a dry run's JSON streams them: at a million
    recordings the list alone would take hundreds of MB). With ``on_pend_json`` too, expired
    plain routine recordings (R9, decided in SQL: ``bulk``) come as JSON text, a batch of items
    at a time (``PlanWriter.item``'s form joined by ``",\\n"``, and their count), in catalog
    order with the items given to ``on_pend``."""
    read_ahead(db)  # the plan reads every recording: its disk reads overlap the work below
    decider = Decider(Policy.from_settings(settings), now)
    as_of = to_iso(now)
    report = RunReport(as_of=as_of, dry_run=True)
    pending = {
        r[0]: r[1]
        for r in db.execute(
            "select sha256, purge_after from retention_items where state = ?", ["pending"]
        )
    }
    pend = on_pend or report.pend.append
    now_text = fast_iso(now)
    routine_text = decider.routine_reason
    # Per row: its hash; what Python needs of it (``bulk.kind``: the R9 item's text,
    # ``bulk.PEND_PIECE``, or R9 end, ``bulk.KEEP``, of a stored routine recording — its item if
    # it is plain; 0: stored, no rule lets it expire if plain; null: another stored one; 1: a
    # pending one); its rowid; without ``on_pend_json`` its size. Left out in SQL: stored
    # recordings too recent for any rule to expire, and those whose R9 end (the floor of every
    # rule) lies after now. Stored recordings yield only expired items.
    if on_pend_json is not None:
        fast_col, size_col, head = bulk.PEND_PIECE, "", bulk.PEND_MID
        reason = bulk.reason_json(routine_text)
    else:
        fast_col, size_col, head = bulk.KEEP, ", r.size", ""
    later, later_args = bulk.not_later(now_text)
    sql = (
        f"select r.sha256, {bulk.kind(fast_col)}, r.rowid{size_col}"
        f" from recordings r {bulk.HOUR_JOIN}"
        " where r.state in ('stored', 'pending_purge')"
        " and not (r.state = 'stored' and coalesce(r.recorded_at, r.ingested_at) >= ?)"
        f" and {later} order by r.rowid"
    )
    args = [decider.unexpired_from(), *later_args]
    new = tuple.__new__
    marked = bulk.marked(db, decider, kept=True)
    not_plain, kept = marked.extra, marked.kept
    wanted = not_plain - kept
    # a long list as SQL parameter costs more than loading everything (tens of thousands)
    extra = load_extras(db, bulk.need(wanted) if len(wanted) < 20_000 else None)
    # the few rows Python decides are read again by rowid: most rows need no columns but their
    # hash and their item
    one = (
        "select sha256, recorded_at, ingested_at, important, size, state, category"
        " from recordings where rowid = ?"
    )
    pieces: list[str] = []  # PEND_PIECE texts not yet handed on

    def hand_on() -> None:
        on_pend_json(bulk.pend_block(pieces, reason), len(pieces))  # type: ignore[misc]
        pieces.clear()

    def by_python(rowid: int, stored: bool) -> None:
        row = db.execute(one, [rowid]).fetchone()
        sha = row[0]
        if sha in not_plain and sha not in extra:  # facts not loaded yet (a pending recording's)
            extra.update(load_extras(db, bulk.need([sha])))
        d = decider.row(row, extra)
        if stored:
            if d.expired:  # an expired decision always has its end date
                if pieces:  # keep the catalog's order
                    hand_on()
                ends = fast_iso(d.keep_until)  # type: ignore[arg-type]
                pend(new(Item, (sha, row[4], d.rule, d.reason, ends, "pend", None)))
            return
        until = fast_iso(d.keep_until) if d.keep_until else None
        if not d.expired:
            report.restore.append(Item(sha, row[4], d.rule, d.reason, until, "restore"))
        else:
            purge_after = pending.get(sha)
            if purge_after is not None and purge_after <= as_of:
                report.purge.append(
                    Item(sha, row[4], d.rule, d.reason, until, "purge", purge_after)
                )
            else:
                report.waiting += 1

    # stored recordings started after unexpired_from are left out: their hours are not needed
    with bulk.hours_table(db, decider, before=decider.unexpired_from(), head=head):
        rows = db.execute(sql, args)
        if on_pend_json is not None:
            add = pieces.append
            for sha, fast, rowid in rows:
                if sha not in not_plain:
                    if fast.__class__ is str:  # an expired plain routine recording (R9)
                        add(fast)
                        if len(pieces) >= 2000:
                            hand_on()
                        continue
                    if fast == 0:  # plain and stored: kept by the important marker or R9
                        continue
                elif fast != 1 and sha in kept:  # stored, and surely kept now
                    continue
                by_python(rowid, fast != 1)
            if pieces:
                hand_on()
        else:
            for sha, fast, rowid, size in rows:
                if sha not in not_plain:
                    if fast.__class__ is str:  # an expired plain routine recording (R9)
                        pend(new(Item, (sha, size, RULE_ROUTINE, routine_text, fast, "pend", None)))
                        continue
                    if fast == 0:
                        continue
                elif fast != 1 and sha in kept:
                    continue
                by_python(rowid, fast != 1)
    return report


# --- the real run ----------------------------------------------------------------------------


def _noop(step: str, sha: str) -> None:
    return None


def run(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    *,
    now: dt.datetime,
    actor: str,
    dry_run: bool = False,
    wall_now: dt.datetime | None = None,
    stop: threading.Event | None = None,
    on_step: Step | None = None,
    on_pend: Callable[[Item], None] | None = None,
    now_given: bool = True,
    on_pend_json: Callable[[str, int], None] | None = None,
) -> RunReport:
    """Plan, and unless ``dry_run`` act on the plan (``on_pend``, ``on_pend_json``: see
    ``make_plan``; dry runs only). ``now`` is the time decisions are made for;
    a real run refuses a ``now`` before an earlier run, or after the station's clock (R9: nothing
    may go before its time). A real run whose clock is not trusted (``clockguard``) only
    proposes: the report is a dry run with ``clock`` set, and an alert is raised.

    ``now_given`` False: ``now`` is the station clock itself (no ``--now``). Then an earlier run
    dated after ``now`` was made under a wrong clock that has since been corrected (the guard
    trusts the clock now): the run goes on, with a warning and an audit entry, instead of
    refusing until the wrong date comes round."""

    def proposal() -> RunReport:  # a dry run: lists what would go, changes nothing
        return _run(
            vault,
            db,
            settings,
            now,
            actor,
            True,
            wall_now,
            stop,
            on_step,
            on_pend,
            now_given,
            on_pend_json,
        )

    if dry_run:
        return proposal()
    verdict = clockguard.check(vault, db, settings)
    if not verdict.trusted:
        clockguard.refuse(db, verdict)
        report = proposal()
        report.clock = verdict.to_json()
        report.warnings.append(
            f"时钟不可信，只列出不执行 / clock not trusted ({verdict.state}): proposal only — "
            f"{verdict.detail}"
        )
        return report
    with run_lock(vault):
        report = _run(
            vault, db, settings, now, actor, False, wall_now, stop, on_step, None, now_given
        )
    approval.notify(db, report)
    return report


def _run(
    vault: Vault,
    db: sqlite_utils.Database,
    settings: Settings,
    now: dt.datetime,
    actor: str,
    dry_run: bool,
    wall_now: dt.datetime | None,
    stop: threading.Event | None,
    on_step: Step | None,
    on_pend: Callable[[Item], None] | None = None,
    now_given: bool = True,
    on_pend_json: Callable[[str, int], None] | None = None,
) -> RunReport:
    as_of = to_iso(now)
    last = last_as_of(db)
    wall = wall_now or utcnow()
    warnings = []
    if last and as_of < last and not now_given and not dry_run:
        # The clock guard trusts this clock: the earlier run was dated by a wrong one.
        msg = (
            f"上次处理的时间 {last} 晚于现在：当时时钟有误，已纠正 / the retention run of {last} "
            f"is dated after now ({as_of}): it ran on a wrong clock, since corrected"
        )
        log.warning("retention.clock_corrected", as_of=as_of, last=last)
        with write_txn(db):
            append(
                db,
                "retention.clock_corrected",
                actor=actor,
                subject="retention",
                data={"as_of": as_of, "last_as_of": last},
            )
        warnings.append(msg)
    elif last and as_of < last:
        msg = (
            f"--now {as_of} 早于上次处理 / is before the retention run of {last}; decisions "
            "already taken then would be contradicted"
        )
        if not dry_run:
            log.error("retention.now_in_past", as_of=as_of, last=last)
            raise NowInPastError(msg, where="--now", hint=f"use a time at or after {last}")
        warnings.append(msg)
    if not dry_run and now > wall + dt.timedelta(minutes=5):
        log.error("retention.now_in_future", as_of=as_of, clock=to_iso(wall))
        raise RetentionError(
            f"--now {as_of} 晚于系统时钟 / is after the station clock {to_iso(wall)}: a real run "
            "cannot purge footage before its time (R9)",
            where="--now",
            hint="use --dry-run to look ahead",
        )
    pended = 0

    def count_pend(item: Item) -> None:
        nonlocal pended
        pended += 1
        on_pend(item)  # type: ignore[misc]

    def count_json(text: str, n: int) -> None:
        nonlocal pended
        pended += n
        on_pend_json(text, n)  # type: ignore[misc]

    streamed = on_pend is not None and dry_run
    report = make_plan(
        db,
        settings,
        now,
        on_pend=count_pend if streamed else None,
        on_pend_json=count_json if streamed and on_pend_json is not None else None,
    )
    report.warnings = warnings
    if dry_run:
        log.info(
            "retention.dry_run",
            as_of=as_of,
            pend=len(report.pend) + pended,
            purge=len(report.purge),
            restore=len(report.restore),
        )
        return report
    report.dry_run = False
    step = on_step or _noop
    grace = dt.timedelta(days=settings.retention.grace_days)
    purge_after = to_iso(now + grace)
    with write_txn(db):
        # A run still "running" here died without finishing (we hold the lock): say so.
        db.execute(
            "update retention_runs set state = 'interrupted', message = coalesce(message,"
            " '未完成即中止 / ended before finishing') where state = 'running'"
        )
        runs = db.table("retention_runs").insert(
            {"as_of": as_of, "started_at": to_iso(wall), "actor": actor, "state": "running"}
        )
        run_id = int(runs.last_pk or 0)
        append(
            db,
            "retention.run_started",
            actor=actor,
            subject=f"retention-run:{run_id}",
            data={"as_of": as_of, "grace_days": settings.retention.grace_days},
        )
    report.run_id = run_id
    log.info("retention.run_started", run_id=run_id, as_of=as_of)
    ctx = Ctx(vault, db, actor, run_id, as_of, report, step)

    def purge_one(item: Item) -> None:
        # DESIGN.md invariant 8: purging commits "purged" then unlinks; under the vault's writer
        # lock no ingest can, in between, count the file as held and revive the row
        with WriterLock(vault):
            ctx.purge_one(item)

    try:
        with WriterLock(vault):
            ctx.recover()
        work: list[tuple[Callable[[Item], None], list[Item]]] = [
            (purge_one, report.purge),
            (lambda it: ctx.restore_one(it.sha256, "rule", it.reason), report.restore),
            # R9: expired footage is proposed; only a supervisor's approval pends it.
            (lambda it: approval.on_expired(ctx, it, purge_after), report.pend),
        ]
        for fn, items in work:
            for item in items:
                if stop is not None and stop.is_set():
                    report.aborted = "已停止 / stopped"
                    raise _Stop
                try:
                    fn(item)
                except ItemProblem as exc:
                    ctx.problem(exc.sha256, exc.kind, exc.path, exc.message)
    except _Stop:
        pass
    except VaultFullError as exc:
        report.aborted = "磁盘已满 / disk full"
        report.problems.append(Problem("", "disk-full", exc.where or "", exc.message))
        log.error("retention.disk_full", run_id=run_id, error=exc.message)
    except BaseException as exc:  # an error or a signal: record the run as interrupted
        report.aborted = f"中断 / interrupted: {type(exc).__name__}: {exc}"
        raise
    finally:
        _finish(db, report)
    return report


class _Stop(Exception):
    pass


def _finish(db: sqlite_utils.Database, report: RunReport) -> None:
    state = "interrupted" if report.aborted else "done"
    try:
        with write_txn(db):
            db.execute(
                "update retention_runs set finished_at = ?, state = ?, pending = ?, purged = ?,"
                " restored = ?, problems = ?, message = ? where id = ?",
                [
                    to_iso(utcnow()),
                    state,
                    len(report.pended),
                    len(report.purged),
                    len(report.restored),
                    len(report.problems),
                    report.aborted,
                    report.run_id,
                ],
            )
    except VaultFullError:
        log.error("retention.run_not_recorded", run_id=report.run_id)
    log.info(
        "retention.run_finished",
        run_id=report.run_id,
        state=state,
        pended=len(report.pended),
        purged=len(report.purged),
        restored=len(report.restored),
        problems=len(report.problems),
    )


def restore(
    vault: Vault,
    db: sqlite_utils.Database,
    shas: list[str],
    *,
    actor: str,
    note: str | None = None,
    all_pending: bool = False,
) -> RunReport:
    """Return pending-purge recordings to ``stored`` (``station retention restore``).

    A recording still expired is marked pending again by the next run unless a rule now keeps
    it: link it to a case or place a hold first (R10, R11)."""
    with run_lock(vault):
        return _restore(vault, db, shas, actor=actor, note=note, all_pending=all_pending)


def _restore(
    vault: Vault,
    db: sqlite_utils.Database,
    shas: list[str],
    *,
    actor: str,
    note: str | None,
    all_pending: bool,
) -> RunReport:
    from station.recref import check_sha

    report = RunReport(as_of=to_iso(utcnow()), dry_run=False)
    ctx = Ctx(vault, db, actor, None, report.as_of, report, _noop)
    ctx.recover()
    if all_pending:
        targets = [
            r[0] for r in db.execute("select sha256 from retention_items where state = 'pending'")
        ]
    else:
        if not shas:
            raise RetentionError("没有给出录像 / no recording given", where="SHA256")
        targets = []
        for raw in shas:
            sha = check_sha(raw)
            row = db.execute("select state from recordings where sha256 = ?", [sha]).fetchone()
            if row is None:
                raise NotFoundError(f"没有这段录像 / no such recording: {sha}", where="SHA256")
            if row[0] == "purged":
                raise RetentionError(
                    f"录像已删除，只剩墓碑记录 / recording {sha} was purged; only its tombstone "
                    "remains",
                    where="SHA256",
                )
            if row[0] != "pending_purge":
                raise RetentionError(
                    f"录像不在待删状态 / recording {sha} is not pending purge (state {row[0]})",
                    where="SHA256",
                )
            targets.append(sha)
    for sha in targets:
        try:
            ctx.restore_one(sha, "manual", note)
        except ItemProblem as exc:
            ctx.problem(exc.sha256, exc.kind, exc.path, exc.message)
    return report
