"""The executor's per-recording steps: pend, purge, restore, and recovery of half-done work.

Order inside each step is chosen so an interruption at any point loses nothing and deletes
nothing twice (see ``station.retention.executor``). ``step(name, sha)`` is called at the points
where a crash would hurt most; tests use it to crash there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from station.audit import append
from station.log import get
from station.retention import files as fs
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

    # --- problems --------------------------------------------------------------------------

    def problem(self, sha: str, kind: str, path: str, detail: str) -> None:
        """Report a problem: in the run report, as a log event and in the audit log."""
        self.report.problems.append(Problem(sha, kind, path, detail))
        log.error(f"retention.file_{kind}", sha256=sha, path=path, detail=detail)
        with txn(self.db):
            append(
                self.db,
                f"retention.file_{kind}",
                actor=self.actor,
                subject=f"recording:{sha}" if sha else None,
                data={"path": path, "detail": detail, "run": self.run_id},
            )
            if sha:
                self.db.execute(
                    "update retention_items set problem = ?, problem_at = ? where sha256 = ?",
                    [f"{kind}: {detail}", self.as_of, sha],
                )

    # --- pend: vault → pending-purge -------------------------------------------------------

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

    def pend_one(self, item: Item, purge_after: str) -> None:
        sha = item.sha256
        files = self._files(sha)
        for f in files:
            src, dst = fs.vault_file(self.vault, f["rel"]), fs.pending_path(self.vault, f["rel"])
            if not src.is_file() and not dst.is_file():
                raise ItemProblem(
                    "missing",
                    sha,
                    str(src),
                    f"文件不在保管库中 / the {f['kind']} is missing from the vault; "
                    "nothing of this recording was moved",
                )
            if src.is_file() and src.stat().st_size != f["size"]:
                raise ItemProblem(
                    "changed",
                    sha,
                    str(src),
                    f"文件大小已变 / the {f['kind']} has {src.stat().st_size} bytes, the catalog "
                    f"says {f['size']}",
                )
        moved: list[dict[str, Any]] = []
        try:
            for f in files:
                src = fs.vault_file(self.vault, f["rel"])
                if src.is_file():
                    fs.move(src, fs.pending_path(self.vault, f["rel"]))
                    moved.append(f)
                self.step("pend.moved", sha)
            with txn(self.db):
                state = self.db.execute(
                    "select state from recordings where sha256 = ?", [sha]
                ).fetchone()[0]
                if state != "stored":
                    raise ItemProblem("error", sha, "", f"state changed to {state} meanwhile")
                self.db.execute(
                    "insert into retention_items (sha256, state, rule, reason, keep_until,"
                    " pending_at, purge_after, run_id, files, problem, problem_at, updated_at)"
                    " values (?, 'pending', ?, ?, ?, ?, ?, ?, ?, null, null, ?)"
                    " on conflict (sha256) do update set state = 'pending', rule = excluded.rule,"
                    " reason = excluded.reason, keep_until = excluded.keep_until,"
                    " pending_at = excluded.pending_at, purge_after = excluded.purge_after,"
                    " run_id = excluded.run_id, files = excluded.files, problem = null,"
                    " problem_at = null, updated_at = excluded.updated_at",
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
                self.db.execute(
                    "update recordings set state = 'pending_purge' where sha256 = ?", [sha]
                )
                append(
                    self.db,
                    "retention.pending",
                    actor=self.actor,
                    subject=f"recording:{sha}",
                    data={
                        "rule": item.rule,
                        "reason": item.reason,
                        "keep_until": item.keep_until,
                        "purge_after": purge_after,
                        "files": [f["rel"] for f in files],
                        "run": self.run_id,
                    },
                )
        except Exception:
            for f in reversed(moved):
                try:
                    fs.move(
                        fs.pending_path(self.vault, f["rel"]), fs.vault_file(self.vault, f["rel"])
                    )
                except Exception as exc:  # reported; recover() finishes it on the next run
                    log.error("retention.move_back_failed", sha256=sha, error=str(exc))
            raise
        self.report.pended.append(sha)
        log.info("retention.pending", sha256=sha, rule=item.rule, purge_after=purge_after)

    # --- purge: pending-purge → gone, tombstone kept --------------------------------------

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
        files = json.loads(row["files"])
        for f in files:
            path = fs.pending_path(self.vault, f["rel"])
            if not path.is_file():
                raise ItemProblem(
                    "missing",
                    sha,
                    str(path),
                    f"待删文件不见了 / the pending {f['kind']} is missing; not purged",
                )
            digest = fs.sha256_file(path)  # re-hash before deleting
            if (f["sha256"] and digest != f["sha256"]) or path.stat().st_size != f["size"]:
                raise ItemProblem(
                    "changed",
                    sha,
                    str(path),
                    f"文件内容已变 / the pending {f['kind']} hashes to {digest}, expected "
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
                return  # someone restored or purged it meanwhile: nothing to do
            derivs = [
                {"id": f["id"], "sha256": f["sha256"], "size": f["size"], "rel": f["rel"]}
                for f in files
                if f["kind"] == "derivative"
            ]
            self.db.execute(
                "insert into tombstones (sha256, size, ext, tags, rule, reason, keep_until,"
                " recorded_at, ingested_at, pending_at, purged_at, purged_by, run_id,"
                " derivatives) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                ],
            )
            self.db.execute("update recordings set state = 'purged' where sha256 = ?", [sha])
            self.db.execute(
                "update derivatives set state = 'purged' where original_sha256 = ?"
                " and id in (select value from json_each(?))",
                [sha, json.dumps([d["id"] for d in derivs])],
            )
            self.db.execute(
                "update retention_items set state = 'purged', updated_at = ? where sha256 = ?",
                [self.as_of, sha],
            )
            append(
                self.db,
                "retention.purged",
                actor=self.actor,
                subject=f"recording:{sha}",
                data={
                    "rule": item.rule,
                    "reason": item.reason,
                    "size": rec[1],
                    "derivatives": len(derivs),
                    "run": self.run_id,
                },
            )
        self.step("purge.committed", sha)
        for f in files:
            try:
                fs.remove(fs.pending_path(self.vault, f["rel"]))
            except FileNotFoundError:
                pass
        self.report.purged.append(sha)
        log.info("retention.purged", sha256=sha, rule=item.rule)

    # --- restore: pending-purge → vault ---------------------------------------------------

    def restore_one(self, sha: str, why: str, note: str | None) -> None:
        row = self._item(sha)
        files = json.loads(row["files"])
        for f in files:
            src, dst = fs.pending_path(self.vault, f["rel"]), fs.vault_file(self.vault, f["rel"])
            if src.is_file():
                fs.move(src, dst)
            elif not dst.is_file():
                raise ItemProblem(
                    "missing", sha, str(src), f"待删文件不见了 / the pending {f['kind']} is missing"
                )
            self.step("restore.moved", sha)
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
                subject=f"recording:{sha}",
                data={"why": why, "note": note, "run": self.run_id},
            )
        self.report.restored.append(sha)
        log.info("retention.restored", sha256=sha, why=why)

    # --- recovery of interrupted work -----------------------------------------------------

    def recover(self) -> None:
        root = fs.pending_root(self.vault)
        if not root.is_dir():
            return
        for dirpath, _dirs, names in os.walk(root):
            for name in sorted(names):
                self._recover_file(Path(dirpath) / name)

    def _recover_file(self, path: Path) -> None:
        full = str(path)
        rel = str(path.relative_to(fs.pending_root(self.vault)))
        sha = path.name.split(".", 1)[0]
        rec = self.db.execute(
            "select state, vault_path from recordings where sha256 = ?", [sha]
        ).fetchone()
        if rec is None:
            self.problem("", "unknown", full, "不属于任何录像 / a file no recording owns")
            return
        state = rec[0]
        if state == "pending_purge":
            return
        if state == "stored":
            # A pend interrupted before its commit: the file goes back where it was.
            dst = fs.vault_file(self.vault, rel)
            if dst.exists():
                self.problem(sha, "duplicate", full, f"保管库中已有该文件 / {dst} exists too")
                return
            fs.move(path, dst)
            self.report.recovered.append(sha)
            log.warning("retention.recovered", sha256=sha, path=rel)
            return
        # purged: the purge committed but the files were not all removed yet.
        expected = sha if rel == rec[1] else self._derivative_sha(sha, rel)
        digest = fs.sha256_file(path)
        if expected is not None and digest != expected:
            self.problem(sha, "changed", full, f"残留文件内容不符 / leftover hashes to {digest}")
            return
        fs.remove(path)
        self.report.recovered.append(sha)
        log.warning("retention.leftover_removed", sha256=sha, path=rel)

    def _derivative_sha(self, sha: str, rel: str) -> str | None:
        row = self.db.execute(
            "select sha256 from derivatives where original_sha256 = ? and vault_path = ?",
            [sha, rel],
        ).fetchone()
        return row[0] if row else None
