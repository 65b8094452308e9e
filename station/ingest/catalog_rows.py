"""The catalog rows of one stored batch, with their audit entries, in one transaction: a
``recordings`` row and ``recording.ingested`` for new content, ``recording.sighted`` for content
held already, ``ingest.file_<outcome>`` otherwise, and a ``sightings`` row for every file. The
catalog decides new against held at commit time (a file linked by a run that crashed before its
commit is new; one committed by a concurrent session meanwhile is held); a purged recording that
turns up again is stored again (``recording.restored_by_ingest``, R7, R9).
"""

from __future__ import annotations

import sqlite_utils

from station import audit
from station.audit.seal import recording_seal
from station.catalog import write_txn
from station.ingest import sessions
from station.ingest.bookkeeping import Result, RunBook, Staged
from station.ingest.rows import AUDITED
from station.log import get
from station.timeutil import from_timestamp, to_iso, utcnow

log = get()


class CatalogRows:
    def __init__(self, book: RunBook) -> None:
        self.book = book

    def sighting(
        self,
        db: sqlite_utils.Database,
        s: Staged,
        outcome: str,
        error: str | None,
        sid: int,
        now: str | None = None,
    ) -> None:
        db.execute(
            "insert into sightings (session_id, sha256, source_path, source_size,"
            " source_mtime, outcome, error, at) values (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                sid,
                s.sha256,
                s.entry.rel,
                s.entry.size,
                to_iso(from_timestamp(s.entry.mtime)),
                outcome,
                error,
                now or to_iso(utcnow()),
            ],
        )

    def revive(self, db: sqlite_utils.Database, s: Staged, sid: int) -> None:
        """A recording purged by retention turns up again on a recorder: it is evidence in the
        vault again (the link just made), never dropped; its tombstone stays (R7, R9)."""
        db.execute("update recordings set state = 'stored' where sha256 = ?", [s.sha256])
        self.sighting(db, s, "new", None, sid)
        audit.append(
            db,
            "recording.restored_by_ingest",
            actor=self.book.actor,
            subject=s.sha256,
            data={"session_id": sid, "source_path": s.entry.rel, "previous_state": "purged"},
        )
        log.warning("ingest.purged_recording_returned", sha256=s.sha256, path=s.entry.rel)

    def write(self, db: sqlite_utils.Database, results: list[Result]) -> None:
        """The batch's rows and audit entries in one transaction on ``db`` (a savepoint when
        ``db`` is in one already: a group commit's, ``group_commit``)."""
        now = to_iso(utcnow())
        sid = self.book.report.session_id
        with write_txn(db):
            for s, outcome, error, damaged in results:
                entry = s.entry
                if outcome in ("new", "held"):
                    # the catalog decides: a file linked by a run that crashed before its commit
                    # is new; one committed by a concurrent session meanwhile is held
                    known = db.execute(
                        "select state from recordings where sha256 = ?", [s.sha256]
                    ).fetchone()
                    outcome = "held" if known else "new"
                    if known and known[0] == "purged":
                        self.revive(db, s, sid)
                        outcome = "new"
                        s.outcome = outcome
                        continue
                if outcome == "new":
                    assert s.sha256 is not None
                    row = self.book.rows.recording(db, entry, s.sha256, s.size, damaged, now)
                    cols = ", ".join(row)
                    marks = ", ".join("?" for _ in row)
                    db.execute(
                        f"insert into recordings ({cols}) values ({marks})", list(row.values())
                    )
                    audit.append(
                        db,
                        "recording.ingested",
                        actor=self.book.actor,
                        subject=s.sha256,
                        data={**{k: row[k] for k in AUDITED}, **recording_seal(row)},
                    )
                    log.info(
                        "ingest.file_stored",
                        sha256=s.sha256,
                        path=entry.rel,
                        size=s.size,
                        damaged=damaged,
                    )
                elif outcome == "held":
                    audit.append(
                        db,
                        "recording.sighted",
                        actor=self.book.actor,
                        subject=s.sha256,
                        data={"session_id": sid, "source_path": entry.rel},
                    )
                    log.info("ingest.file_held", sha256=s.sha256, path=entry.rel)
                else:
                    audit.append(
                        db,
                        f"ingest.file_{outcome}",
                        actor=self.book.actor,
                        subject=f"session:{sid}",
                        data={"source_path": entry.rel, "error": error},
                    )
                self.sighting(db, s, outcome, error, sid, now)
                s.outcome = outcome
            sessions.update(
                db, sid, files_done=self.book.files_done, bytes_done=self.book.bytes_done
            )
        for i, (s, _o, error, damaged) in enumerate(results):
            results[i] = (s, s.outcome or _o, error, damaged)
