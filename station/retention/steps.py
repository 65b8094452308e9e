"""The executor's per-recording steps: pend, purge, restore, and finishing interrupted purges.

Pending purge is a catalog state: the files stay where they are (mode 0444, still checked by
``station verify``) until the grace period is over. The order inside each step is chosen so an
interruption at any point loses nothing and deletes nothing twice (see
``station.retention.executor``). ``step(name, sha)`` is called where a crash would hurt most;
tests crash there on purpose.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from station.audit import append
from station.audit.protect import seal
from station.fleet.local import freed_paths
from station.log import get
from station.retention import files as fs
from station.retention.approval import approval_for
from station.retention.runtypes import Item, ItemProblem, Problem, RunReport, txn
from station.vault import Vault

log = get()


@dataclass
class Ctx:
    vault: Vault
    db: sqlite_utils.Database
    actor: str
    run_id: int | None
    as_of: str
    report: RunReport
    step: Callable[[str, str], None]

    # --- problems ---------------------------------------------------------------------------

    def problem(self, sha: str, kind: str, path: str, detail: str) -> None:
        """Report a problem: in the run report, as a log event and in the audit log."""
        self.report.problems.append(Problem(sha, kind, path, detail))
        log.error(f"retention.file_{kind}", sha256=sha, path=path, detail=detail)
        with txn(self.db):
            append(
                self.db,
                f"retention.file_{kind}",
                actor=self.actor,
                subject=sha or None,
                data={"path": path, "detail": detail, "run": self.run_id},
            )
            if sha:
                self.db.execute(
                    "update retention_items set problem = ?, problem_at = ? where sha256 = ?",
                    [f"{kind}: {detail}", self.as_of, sha],
                )

    # --- pend: stored → pending_purge -------------------------------------------------------

    def _files(self, sha: str) -> list[dict[str, Any]]:
        row = self.db.execute(
            "select vault_path, size from recordings where sha256 = ?", [sha]
        ).fetchone()
        found = [{"kind": "original", "id": None, "rel": row[0], "sha256": sha, "size": row[1]}]
        for did, rel, dsha, size in self.db.execute(
            "select id, vault_path, sha256, size from derivatives where original_sha256 = ?"
            " and state = 'done' and vault_path is not null order by id",
            [sha],
        ):
            found.append(
                {"kind": "derivative", "id": did, "rel": rel, "sha256": dsha, "size": size}
            )
        return found

    def _check_present(self, sha: str, files: list[dict[str, Any]], verb: str) -> None:
        freed = freed_paths(self.db, sha)  # only in the central store now: nothing to check here
        for f in files:
            if f["rel"] in freed:
                continue
            path = fs.vault_file(self.vault, f["rel"])
            if not path.is_file():
                raise ItemProblem(
                    "missing",
                    sha,
                    str(path),
                    f"文件不在保管库中 / the {f['kind']} is missing from the vault; not {verb}",
                )
            size = path.stat().st_size
            if f["size"] is not None and size != f["size"]:
                raise ItemProblem(
                    "changed",
                    sha,
                    str(path),
                    f"文件大小已变 / the {f['kind']} has {size} bytes, the catalog says "
                    f"{f['size']}; not {verb}",
                )

    def pend_one(self, item: Item, purge_after: str) -> None:
        sha = item.sha256
        files = self._files(sha)
        self._check_present(sha, files, "pended")
        self.step("pend.checked", sha)
        with txn(self.db):
            state = self.db.execute(
                "select state from recordings where sha256 = ?", [sha]
            ).fetchone()[0]
            if state != "stored":
                raise ItemProblem("error", sha, "", f"state changed to {state} meanwhile")
            self.db.execute(
                "insert into retention_items (sha256, state, rule, reason, keep_until,"
                " pending_at, purge_after, run_id, files, files_removed, problem, problem_at,"
                " updated_at) values (?, 'pending', ?, ?, ?, ?, ?, ?, ?, 0, null, null, ?)"
                " on conflict (sha256) do update set state = 'pending', rule = excluded.rule,"
                " reason = excluded.reason, keep_until = excluded.keep_until,"
                " pending_at = excluded.pending_at, purge_after = excluded.purge_after,"
                " run_id = excluded.run_id, files = excluded.files, files_removed = 0,"
                " problem = null, problem_at = null, updated_at = excluded.updated_at",
                [
                    sha,
                    item.rule,
                    item.reason,
                    item.keep_until,
                    self.as_of,
                    purge_after,
                    self.run_id,
                    json.dumps(files),
                    self.as_of,
                ],
            )
            self.db.execute("update recordings set state = 'pending_purge' where sha256 = ?", [sha])
            append(
                self.db,
                "retention.pending",
                actor=self.actor,
                subject=sha,
                data={
                    "rule": item.rule,
                    "reason": item.reason,
                    "keep_until": item.keep_until,
                    "purge_after": purge_after,
                    "files": [f["rel"] for f in files],
                    "run": self.run_id,
                    **seal(self.db, ("retention_items", [sha])),
                },
            )
        self.report.pended.append(sha)
        log.info("retention.pending", sha256=sha, rule=item.rule, purge_after=purge_after)

    # --- purge: re-hash, tombstone + state in one commit, then unlink ----------------------

    def _item(self, sha: str) -> dict[str, Any]:
        rows = list(self.db.query("select * from retention_items where sha256 = ?", [sha]))
        if not rows:
            raise ItemProblem("error", sha, "", "no retention item for this recording")
        return rows[0]

    def _tags(self, sha: str) -> dict[str, Any]:
        rec = next(
            self.db.query(
                "select r.unit_id, u.name as unit_name, u.department, r.device_id, r.officer_id,"
                " r.category, r.proves, r.method, r.producer, r.important, r.original_name"
                " from recordings r left join units u on u.unit_id = r.unit_id"
                " where r.sha256 = ?",
                [sha],
            )
        )
        rec["cases"] = list(
            self.db.query(
                "select c.number, c.name, c.party, c.cause from case_recordings l"
                " join cases c on c.number = l.case_number where l.sha256 = ?",
                [sha],
            )
        )
        return rec

    def purge_one(self, item: Item) -> None:
        sha = item.sha256
        row = self._item(sha)
        busy = self.db.execute(
            "select count(*) from derivatives where original_sha256 = ?"
            " and state in ('queued', 'running')",
            [sha],
        ).fetchone()[0]
        if busy:
            # A derivative is being written: purge on a later run, so none is left behind.
            log.info("retention.purge_deferred", sha256=sha, derivatives_busy=busy)
            self.report.waiting += 1
            return
        approved = approval_for(self.db, sha)
        if approved is None:
            # R9: no supervisor's approval behind this pending purge: nothing is deleted.
            log.warning("retention.purge_unapproved", sha256=sha)
            self.report.waiting += 1
            return
        files = json.loads(row["files"])
        # Derivatives finished during the grace period go with their original.
        known = {f["rel"] for f in files}
        files += [f for f in self._files(sha) if f["rel"] not in known]
        self._check_present(sha, files, "purged")
        freed = freed_paths(self.db, sha)
        for f in files:
            if f["rel"] in freed:
                continue  # the central copy goes with the fleet pass, once its lock allows
            path = fs.vault_file(self.vault, f["rel"])
            digest = fs.sha256_file(path)  # re-hash right before deleting
            if f["sha256"] and digest != f["sha256"]:
                raise ItemProblem(
                    "changed",
                    sha,
                    str(path),
                    f"文件内容已变 / the {f['kind']} hashes to {digest}, expected "
                    f"{f['sha256']}; not purged",
                )
        self.step("purge.verified", sha)
        with txn(self.db):
            rec = self.db.execute(
                "select state, size, ext, recorded_at, ingested_at from recordings"
                " where sha256 = ?",
                [sha],
            ).fetchone()
            current = self.db.execute(
                "select state from retention_items where sha256 = ?", [sha]
            ).fetchone()[0]
            if rec[0] != "pending_purge" or current != "pending":
                return  # restored or purged meanwhile: nothing to do
            derivs = [
                {"id": f["id"], "sha256": f["sha256"], "size": f["size"], "rel": f["rel"]}
                for f in files
                if f["kind"] == "derivative"
            ]
            self.db.execute(
                "insert into tombstones (sha256, size, ext, tags, rule, reason, keep_until,"
                " recorded_at, ingested_at, pending_at, purged_at, purged_by, run_id,"
                " derivatives, approved_by, approved_at, approval_reason)"
                " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    sha,
                    rec[1],
                    rec[2],
                    json.dumps(self._tags(sha), ensure_ascii=False),
                    item.rule,
                    item.reason,
                    item.keep_until,
                    rec[3],
                    rec[4],
                    row["pending_at"],
                    self.as_of,
                    self.actor,
                    self.run_id,
                    json.dumps(derivs),
                    approved["decided_by"],
                    approved["decided_at"],
                    approved["decision_reason"],
                ],
            )
            self.db.execute("update recordings set state = 'purged' where sha256 = ?", [sha])
            self.db.execute(
                "update derivatives set state = 'purged' where original_sha256 = ?"
                " and id in (select value from json_each(?))",
                [sha, json.dumps([d["id"] for d in derivs])],
            )
            self.db.execute(
                "update retention_items set state = 'purged', files_removed = 0, updated_at = ?"
                " where sha256 = ?",
                [self.as_of, sha],
            )
            append(
                self.db,
                "retention.purged",
                actor=self.actor,
                subject=sha,
                data={
                    "rule": item.rule,
                    "reason": item.reason,
                    "size": rec[1],
                    "derivatives": len(derivs),
                    "run": self.run_id,
                    "approved_by": approved["decided_by"],
                    **seal(self.db, ("retention_items", [sha]), ("tombstones", [sha])),
                },
            )
        self.step("purge.committed", sha)
        self._remove_files(sha, files)
        self.report.purged.append(sha)
        log.info("retention.purged", sha256=sha, rule=item.rule)

    def _remove_files(self, sha: str, files: list[dict[str, Any]]) -> None:
        for f in files:
            try:
                fs.remove(fs.vault_file(self.vault, f["rel"]))
            except FileNotFoundError:
                pass
        with txn(self.db):
            self.db.execute("update retention_items set files_removed = 1 where sha256 = ?", [sha])

    # --- restore: pending_purge → stored ----------------------------------------------------

    def restore_one(self, sha: str, why: str, note: str | None) -> None:
        row = self._item(sha)
        self._check_present(sha, json.loads(row["files"]), "restored")
        with txn(self.db):
            self.db.execute(
                "update recordings set state = 'stored'"
                " where sha256 = ? and state = 'pending_purge'",
                [sha],
            )
            self.db.execute(
                "update retention_items set state = 'restored', updated_at = ? where sha256 = ?",
                [self.as_of, sha],
            )
            append(
                self.db,
                "retention.restored",
                actor=self.actor,
                subject=sha,
                data={
                    "why": why,
                    "note": note,
                    "run": self.run_id,
                    **seal(self.db, ("retention_items", [sha])),
                },
            )
        self.report.restored.append(sha)
        log.info("retention.restored", sha256=sha, why=why)

    # --- recovery of interrupted purges -----------------------------------------------------

    def recover(self) -> None:
        """Finish purges that committed but were interrupted before every file was unlinked:
        each leftover is re-hashed (its tombstone says what it was) and then removed."""
        for sha, text in self.db.execute(
            "select sha256, files from retention_items where state = 'purged' and files_removed = 0"
        ).fetchall():
            files = json.loads(text)
            for f in files:
                path = fs.vault_file(self.vault, f["rel"])
                if not path.is_file():
                    continue
                digest = fs.sha256_file(path)
                if f["sha256"] and digest != f["sha256"]:
                    self.problem(
                        sha, "changed", str(path), f"残留文件内容不符 / leftover hashes to {digest}"
                    )
                    break
            else:
                self._remove_files(sha, files)
                self.report.recovered.append(sha)
                log.warning("retention.leftover_removed", sha256=sha)
