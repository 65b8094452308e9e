"""Taking one drop in (issue 8, item 3): details, refused entries, ingest, error files, removal.

Same guarantees as the dock: the engine copies each file with one read, verifies the copy from
disk and commits it with its audit entry; only files it lists in ``verified_sources()`` are
removed from the inbox (setting ``inbox.after_verify``, DESIGN.md invariant 2). A failed file
stays where it was with an error file beside it. Details are never guessed (R5, R6).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from station import audit
from station.catalog import write_txn
from station.config import Settings
from station.custody import Owner
from station.errors import StationError
from station.inbox import store
from station.inbox.errfiles import clear_error, write_error
from station.inbox.scan import ERROR_SUFFIX, DropListing, Entry, scan_drop
from station.inbox.sidecar import DropDetails, SidecarError, read_sidecar, sidecar_paths
from station.log import get
from station.timeutil import to_iso, utcnow
from station.vault import Vault

log = get()

IngestFn = Callable[..., Any]  # station.ingest.engine.ingest_files


def _default_ingest() -> IngestFn:
    from station.ingest.engine import ingest_files

    return ingest_files


@dataclass
class InboxEnv:
    vault: Vault
    db: sqlite_utils.Database
    settings: Settings
    actor: str = "inbox"
    ingest: IngestFn | None = None
    stop: threading.Event | None = None


@dataclass
class DropOutcome:
    folder: str
    name: str
    state: str  # a drop state, or "nothing" when there was nothing to do
    drop_id: int | None = None
    new: int = 0
    held: int = 0
    failed: int = 0
    refused: int = 0
    removed: int = 0
    session_id: int | None = None
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


_RETRY_HINT = (
    "修正后执行 `station inbox rescan --retry` / fix it, then run `station inbox rescan --retry`"
)


def process_drop(
    env: InboxEnv, folder: Path, name: str, *, retry_failed: bool = False
) -> DropOutcome:
    f = str(folder)
    db = env.db
    listing = scan_drop(folder, name)
    row = store.latest_drop(db, f, name)
    out = DropOutcome(store.text(f), store.text(name), "nothing", drop_id=row.id if row else None)
    if not listing.exists:
        if row is not None and row.state in store.ACTIVE:
            with write_txn(db):
                store.update_drop(db, row.id, state="gone", error="vanished before ingest")
            log.warning("inbox.drop_vanished", folder=f, drop=name, drop_id=row.id)
            out.state = "gone"
        return out
    if listing.kind not in ("dir", "file"):
        return _refuse_drop(env, listing, row, out)

    settled = store.settled_files(db, f, name)
    failed_before = store.failed_files(db, f, name)

    def pending(e: Entry) -> bool:
        rel = store.text(e.rel)
        if settled.get(rel) != (e.size, e.mtime_ns):
            return True
        return retry_failed and rel in failed_before

    todo = [e for e in listing.files if pending(e)]
    refused = [e for e in listing.refused if settled.get(store.text(e.rel)) != (e.size, e.mtime_ns)]
    if not todo and not refused:
        if row is not None and row.state == "partial":  # a failed file fixed or taken away
            out.drop_id = row.id
            return _finish(env, listing, row.id, out)
        out.state = row.state if row else "nothing"
        return out
    if row is None or row.state in ("done", "gone", "refused"):
        with write_txn(db):
            drop_id = store.create_drop(
                db, f, name, "folder" if listing.kind == "dir" else "file", "settling"
            )
        row = store.get_drop(db, drop_id)
        assert row is not None
        log.info("inbox.drop_seen", folder=f, drop=name, drop_id=drop_id, files=len(todo))
    out.drop_id = row.id

    if refused:
        _refuse_entries(env, row.id, refused)
        out.refused = len(refused)

    if not todo:
        return _finish(env, listing, row.id, out)

    details = _details(env, listing, row, out)
    if details is None:
        return out

    return _ingest(env, listing, row.id, details, todo, out, failed_before)


def _refuse_drop(
    env: InboxEnv, listing: DropListing, row: store.DropRow | None, out: DropOutcome
) -> DropOutcome:
    """A symlink or special file as the drop itself: never followed, never read."""
    out.state = "refused"
    if row is not None and row.state == "refused":
        return out
    reason = f"{listing.kind}: not followed, not read / 符号链接或特殊文件，不跟随、不读取"
    with write_txn(env.db):
        drop_id = store.create_drop(
            env.db, str(listing.folder), listing.name, listing.kind, "refused"
        )
        store.update_drop(env.db, drop_id, error=reason)
        audit.append(
            env.db,
            "inbox.drop_refused",
            actor=env.actor,
            subject=f"inbox_drop:{drop_id}",
            data={"folder": out.folder, "name": out.name, "reason": reason},
        )
    out.drop_id = drop_id
    write_error(
        listing.path,
        listing.name,
        reason,
        drop_id=drop_id,
        hint="放入真实文件或文件夹 / drop the real file or folder instead",
    )
    log.error(
        "inbox.drop_refused",
        folder=str(listing.folder),
        drop=listing.name,
        kind=listing.kind,
        drop_id=drop_id,
    )
    return out


def _refuse_entries(env: InboxEnv, drop_id: int, entries: list[Entry]) -> None:
    with write_txn(env.db):
        for e in entries:
            reason = (
                "symbolic link: not followed / 符号链接，不跟随"
                if e.kind == "symlink"
                else "not a regular file: not read / 非普通文件，不读取"
            )
            store.record_file(
                env.db,
                drop_id,
                e.rel,
                size=e.size,
                mtime_ns=e.mtime_ns,
                outcome="refused",
                error=reason,
            )
            write_error(
                e.path,
                e.rel,
                reason,
                drop_id=drop_id,
                hint="放入真实文件 / put the real file in its place",
            )
            log.warning(
                "inbox.symlink_refused" if e.kind == "symlink" else "inbox.special_refused",
                path=str(e.path),
                drop_id=drop_id,
            )


def _details(
    env: InboxEnv, listing: DropListing, row: store.DropRow, out: DropOutcome
) -> DropDetails | None:
    """The drop's details: a clerk's assignment wins, else the sidecar; never guessed."""
    db = env.db
    is_dir = listing.kind == "dir"
    if row.details_source == "assigned" and row.officer_id:
        return DropDetails(
            officer=row.officer_id,
            device=row.device_id,
            unit=row.unit_id,
            case=row.case_number,
            method=row.method,
        )
    if listing.sidecar is None:
        out.state = "needs_details"
        if row.state != "needs_details":
            with write_txn(db):
                store.update_drop(db, row.id, state="needs_details", error=None)
            log.warning(
                "inbox.drop_needs_details", folder=out.folder, drop=out.name, drop_id=row.id
            )
        return None
    try:
        details = read_sidecar(listing.sidecar)
    except (SidecarError, OSError) as exc:
        reason = exc.render() if isinstance(exc, StationError) else str(exc)
        out.state, out.message = "held", reason
        if row.state != "held" or row.error != reason:
            with write_txn(db):
                store.update_drop(db, row.id, state="held", error=reason)
            write_error(
                listing.path,
                listing.sidecar.name,
                reason,
                drop_id=row.id,
                hint="改正说明文件，或执行 `station inbox assign` / fix the sidecar, or "
                f"run `station inbox assign {row.id} --officer …`",
            )
            log.error(
                "inbox.sidecar_invalid",
                folder=out.folder,
                drop=out.name,
                drop_id=row.id,
                sidecar=str(listing.sidecar),
                error=reason,
                key=getattr(exc, "where", None),
            )
        return None
    if row.state == "held":
        clear_error(listing.path, drop_dir=is_dir)
    return details


def _ingest(
    env: InboxEnv,
    listing: DropListing,
    drop_id: int,
    details: DropDetails,
    todo: list[Entry],
    out: DropOutcome,
    failed_before: set[str],
) -> DropOutcome:
    """Ingest the drop's files and remove the verified ones, all under one live owner of the
    session (DESIGN.md invariant 8): recovery elsewhere leaves the pass alone until it ends."""
    with Owner.acquire(env.vault, "inbox") as owner:
        return _ingest_owned(env, listing, drop_id, details, todo, out, failed_before, owner)


def _ingest_owned(
    env: InboxEnv,
    listing: DropListing,
    drop_id: int,
    details: DropDetails,
    todo: list[Entry],
    out: DropOutcome,
    failed_before: set[str],
    owner: Owner,
) -> DropOutcome:
    from station.ingest.engine import IngestContext

    db = env.db
    with write_txn(db):
        store.update_drop(
            db,
            drop_id,
            state="ingesting",
            error=None,
            officer_id=details.officer,
            device_id=details.device,
            unit_id=details.unit,
            case_number=details.case,
            method=details.method,
        )
        if store.get_drop(db, drop_id).details_source is None:  # type: ignore[union-attr]
            store.update_drop(db, drop_id, details_source="sidecar")
    ctx = IngestContext(
        kind="inbox",
        device_id=details.device,
        officer_id=details.officer,
        unit_id=details.unit,
        method=details.method or "inbox drop / 收件箱投递",
        slot=store.text(str(listing.path)),
    )
    ingest = env.ingest or _default_ingest()
    error: StationError | None = None
    try:
        report = ingest(
            env.vault,
            db,
            env.settings,
            [e.path for e in todo],
            listing.base,
            ctx,
            actor=env.actor,
            stop=env.stop,
            owner=owner,
        )
    except StationError as exc:
        error = exc
        report = getattr(exc, "report", None)
        log.error(
            "inbox.ingest_error",
            folder=out.folder,
            drop=out.name,
            drop_id=drop_id,
            error=exc.render(),
        )
    if report is None:
        reason = error.render() if error else None
        with write_txn(db):
            store.update_drop(db, drop_id, state="settling", error=reason)
        out.state, out.message = "settling", error.render() if error else None
        return out
    out.session_id = report.session_id
    by_source = {os.path.abspath(r.source): r for r in report.files}
    verified = {os.path.abspath(p) for p in report.verified_sources()}
    remove = env.settings.inbox.after_verify == "remove"
    records: list[dict[str, Any]] = []
    linked: list[str] = []
    for e in todo:
        key = os.path.abspath(e.path)
        r = by_source.get(key)
        if r is None:
            continue  # not reached (stopped): stays for the next pass
        rec: dict[str, Any] = {
            "rel": e.rel,
            "size": e.size,
            "mtime_ns": e.mtime_ns,
            "outcome": r.outcome,
            "sha256": r.sha256,
            "error": r.error,
            "removed": False,
        }
        if r.outcome in ("new", "held") and key in verified:
            out.new += r.outcome == "new"
            out.held += r.outcome == "held"
            if r.sha256:
                linked.append(r.sha256)
            if store.text(e.rel) in failed_before:
                clear_error(e.path)  # it failed before: its error file is stale now
            if remove:
                rec["remove"] = e.path
        elif r.outcome == "skipped":
            rec["outcome"] = "refused"
            out.refused += 1
            write_error(e.path, e.rel, r.error or "skipped", drop_id=drop_id, hint=_RETRY_HINT)
        else:
            rec["outcome"] = "failed"
            out.failed += 1
            if os.path.lexists(e.path):
                write_error(e.path, e.rel, r.error or "failed", drop_id=drop_id, hint=_RETRY_HINT)
                log.error("inbox.file_failed", path=str(e.path), drop_id=drop_id, error=r.error)
            else:
                rec["removed"] = True  # nothing left to retry: someone deleted it mid-copy
                log.warning("inbox.file_vanished", path=str(e.path), drop_id=drop_id, error=r.error)
        records.append(rec)
    removal = _remove_verified(env, drop_id, report.session_id, records)
    out.removed = len(removal[1]) if removal is not None else 0
    with write_txn(db):
        if removal is not None:
            intent, gone, kept = removal
            audit.append(
                db,
                "inbox.removed",
                actor=env.actor,
                subject=f"session:{report.session_id}",
                data={"intent_seq": intent, "drop_id": drop_id, "files": gone, "left": kept},
            )
            db.execute(
                "update sessions set clearing = 'done', cleared = ? where id = ?",
                [len(gone), report.session_id],
            )
        for rec in records:
            store.record_file(
                db,
                drop_id,
                rec["rel"],
                size=rec["size"],
                mtime_ns=rec["mtime_ns"],
                outcome=rec["outcome"],
                sha256=rec["sha256"],
                error=rec["error"],
                removed=rec["removed"],
                session_id=report.session_id,
            )
        if details.case and linked:
            _link_case(env, details.case, linked, drop_id)
        audit.append(
            db,
            "inbox.drop_ingested",
            actor=env.actor,
            subject=f"inbox_drop:{drop_id}",
            data={
                "folder": out.folder,
                "name": out.name,
                "session_id": report.session_id,
                "new": out.new,
                "held": out.held,
                "failed": out.failed,
                "refused": out.refused,
                "removed": out.removed,
                "after_verify": env.settings.inbox.after_verify,
                "aborted": report.aborted,
            },
        )
        db.execute(
            "update inbox_drops set session_id = ?, files_new = files_new + ?,"
            " files_held = files_held + ?, files_failed = ?, files_removed = files_removed + ?"
            " where id = ?",
            [report.session_id, out.new, out.held, out.failed, out.removed, drop_id],
        )
    log.info(
        "inbox.drop_ingested",
        folder=out.folder,
        drop=out.name,
        drop_id=drop_id,
        session_id=report.session_id,
        new=out.new,
        held=out.held,
        failed=out.failed,
        removed=out.removed,
        aborted=report.aborted,
    )
    from station.usb_dock.gaps import record_all_devices

    # R20: gaps in the devices' file numbers, stored for the device report.
    record_all_devices(db, report.session_id, actor=env.actor)
    if error is not None or report.aborted:
        reason = error.render() if error else str(report.aborted)
        with write_txn(db):
            store.update_drop(db, drop_id, state="settling", error=reason)
        out.state, out.message = "settling", reason
        return out
    return _finish(env, listing, drop_id, out)


def _remove_verified(
    env: InboxEnv, drop_id: int, session_id: int, records: list[dict[str, Any]]
) -> tuple[int, list[str], list[str]] | None:
    """Remove the verified files marked in ``records`` (``rec["remove"]``): first the intent —
    every file with its hash — committed to the audit log, then the unlinks; the caller writes
    the per-file results (DESIGN.md invariant 2, R7). Returns (intent seq, removed, left)."""
    todo = [rec for rec in records if rec.get("remove") is not None]
    if not todo:
        return None
    db = env.db
    with write_txn(db):
        intent = audit.append(
            db,
            "inbox.remove_intent",
            actor=env.actor,
            subject=f"session:{session_id}",
            data={
                "drop_id": drop_id,
                "files": [
                    {"path": store.text(rec["rel"]), "sha256": rec["sha256"], "size": rec["size"]}
                    for rec in todo
                ],
            },
        )
        db.execute("update sessions set clearing = 'intent' where id = ?", [session_id])
    log.info("inbox.remove_intent", drop_id=drop_id, session_id=session_id, files=len(todo))
    gone: list[str] = []
    kept: list[str] = []
    for rec in todo:
        rec["removed"] = _remove_source(rec["remove"], drop_id)
        (gone if rec["removed"] else kept).append(store.text(rec["rel"]))
    return intent, gone, kept


def _remove_source(path: Path, drop_id: int) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return True
    except OSError as exc:
        log.error("inbox.remove_failed", path=str(path), drop_id=drop_id, error=str(exc))
        return False
    return True


def _link_case(env: InboxEnv, case: str, shas: list[str], drop_id: int) -> None:
    """Link the drop's recordings to the sidecar's case through the cases part (R10: they then
    keep as long as the case). An unknown case is logged and left for a clerk, never created."""
    from station.cases.store import link

    try:
        link(env.db, case, list(dict.fromkeys(shas)), actor=env.actor)
    except StationError as exc:
        log.warning(
            "inbox.case_unknown",
            case=case,
            drop_id=drop_id,
            error=exc.render(),
            hint="link later with `station cases link`",
        )


def _finish(env: InboxEnv, listing: DropListing, drop_id: int, out: DropOutcome) -> DropOutcome:
    """Set the final state; with ``after_verify = remove`` tidy a drop left with no evidence."""
    db = env.db
    after = scan_drop(listing.folder, listing.name)
    still_failed = store.failed_files(db, str(listing.folder), listing.name)
    left = {store.text(e.rel) for e in [*after.files, *after.refused]}
    state = "partial" if (still_failed & left) else "done"
    if env.settings.inbox.after_verify == "remove" and not left:
        _tidy(listing)
    with write_txn(db):
        store.update_drop(db, drop_id, state=state, done_at=to_iso(utcnow()))
    out.state = state
    return out


def _tidy(listing: DropListing) -> None:
    """Remove the sidecar and the now empty folders of a fully ingested drop (never rmtree)."""
    is_dir = listing.kind == "dir"
    for side in sidecar_paths(listing.path, is_dir=is_dir):
        if side.is_file() and not side.is_symlink():
            side.unlink(missing_ok=True)
    clear_error(listing.path, drop_dir=is_dir)
    if not is_dir:
        return
    for root, _dirs, files in os.walk(listing.path, followlinks=False):
        for name in files:  # our error files whose file is gone are stale
            if name.endswith(ERROR_SUFFIX):
                target = os.path.join(root, name[: -len(ERROR_SUFFIX)])
                if not os.path.lexists(target):
                    os.unlink(os.path.join(root, name))
    for root, _dirs, _files in os.walk(listing.path, topdown=False, followlinks=False):
        try:
            os.rmdir(root)
        except OSError:
            pass  # not empty: hidden or temporary files stay where they are
