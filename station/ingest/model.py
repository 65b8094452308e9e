"""What the ingest engine takes and gives: context, per-file results, progress, the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class IngestContext:
    kind: str  # dock | cli | inbox
    device_id: str | None = None
    officer_id: str | None = None
    unit_id: str | None = None
    drift_s: float | None = None  # device clock minus station clock (R3); None: unknown
    method: str | None = None  # R5 production method
    slot: str | None = None
    session_id: int | None = None


@dataclass
class FileResult:
    source: Path
    rel: str
    outcome: str  # new | held | failed | skipped
    sha256: str | None = None
    size: int = 0
    error: str | None = None
    damaged: str | None = None
    # the vault copy under this hash was re-read from disk and matched in this run, and
    # committed (DESIGN.md invariant 2): a copy just made, or a file already held, re-hashed
    verified: bool = False
    repaired: bool = False  # the vault's copy was rotten and was replaced by this run's copy


@dataclass
class IngestProgress:
    files_total: int
    files_done: int
    bytes_total: int
    bytes_done: int
    current: str | None


@dataclass
class IngestReport:
    session_id: int
    files: list[FileResult] = field(default_factory=list)
    aborted: str | None = None
    elapsed_s: float = 0.0
    bytes_read: int = 0

    def verified_sources(self) -> list[Path]:
        """Source files whose vault copy was re-read from disk, matched, and was committed in
        this run (DESIGN.md invariant 2): only these may be cleared from a recorder or inbox.
        A file already held counts only when this run re-hashed the vault's file."""
        return [f.source for f in self.files if f.outcome in ("new", "held") and f.verified]

    def count(self, outcome: str) -> int:
        return sum(1 for f in self.files if f.outcome == outcome)

    @property
    def ok(self) -> bool:
        return self.aborted is None and self.count("failed") == 0

    def summary(self) -> dict[str, Any]:
        mbps = self.bytes_read / 1e6 / self.elapsed_s if self.elapsed_s > 0 else 0.0
        return {
            "session_id": self.session_id,
            "files": len(self.files),
            "new": self.count("new"),
            "held": self.count("held"),
            "failed": self.count("failed"),
            "skipped": self.count("skipped"),
            "damaged": sum(1 for f in self.files if f.damaged),
            "verified": sum(1 for f in self.files if f.verified),
            "repaired": sum(1 for f in self.files if f.repaired),
            "bytes": self.bytes_read,
            "seconds": round(self.elapsed_s, 3),
            "mb_per_s": round(mbps, 1),
            "aborted": self.aborted,
        }
