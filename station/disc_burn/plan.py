"""Disc planning, a pure function: which file goes onto which disc (R11, R12).

Cases that fit on one disc are packed whole, first-fit decreasing, so a disc never holds part of
a small case and every disc is readable on its own. A case larger than one disc gets a volume
set of its own ("disc i of n"), filled in recording order, each disc again self-contained (its
own manifest, README, verify.py and audit entries). An original and its archival derivatives
stay on the same disc whenever they fit together.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from station.disc_burn.media import CASE_OVERHEAD, Media, file_cost, smallest_fitting, usable
from station.errors import EmptyCaseError, FileTooLargeError


@dataclass(frozen=True)
class PlanFile:
    sha256: str  # the file's own hash
    recording_sha256: str  # the original it belongs to
    role: str  # original | derivative
    size: int
    source: str  # path relative to the station home
    name: str  # file name wanted on the disc (full, before cleaning)
    profile: str | None = None  # derivative profile


@dataclass(frozen=True)
class PlanRecording:
    """An original with its derivatives: the unit the planner keeps together."""

    sha256: str
    files: tuple[PlanFile, ...]

    @property
    def cost(self) -> int:
        return sum(file_cost(f.size) for f in self.files)


@dataclass(frozen=True)
class PlanCase:
    number: str
    name: str
    recordings: tuple[PlanRecording, ...]  # in recording order

    @property
    def cost(self) -> int:
        return CASE_OVERHEAD + sum(r.cost for r in self.recordings)


@dataclass
class DiscPlan:
    disc_no: int
    files: list[tuple[str, PlanFile]] = field(default_factory=list)  # (case number, file)
    cost: int = 0

    @property
    def cases(self) -> list[str]:
        seen: list[str] = []
        for number, _ in self.files:
            if number not in seen:
                seen.append(number)
        return seen

    @property
    def payload_bytes(self) -> int:
        return sum(f.size for _, f in self.files)


@dataclass
class Plan:
    media: str
    discs: list[DiscPlan]

    @property
    def bytes_total(self) -> int:
        return sum(d.payload_bytes for d in self.discs)

    def to_json(self) -> dict[str, Any]:
        return {
            "media": self.media,
            "discs": [
                {
                    "disc_no": d.disc_no,
                    "cost": d.cost,
                    "files": [{"case": c, **asdict(f)} for c, f in d.files],
                }
                for d in self.discs
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        discs = []
        for d in data["discs"]:
            files = []
            for f in d["files"]:
                f = dict(f)
                case = f.pop("case")
                files.append((case, PlanFile(**f)))
            discs.append(DiscPlan(d["disc_no"], files, d["cost"]))
        return cls(data["media"], discs)


def _check(cases: list[PlanCase], media: Media) -> None:
    room = usable(media)
    for case in cases:
        if not case.recordings:
            raise EmptyCaseError(
                f"案件没有关联录像 / case {case.number} ({case.name}) has no recordings",
                where=f"case {case.number}",
                hint="link recordings to the case first, or leave it out of the disc job",
            )
        for rec in case.recordings:
            for f in rec.files:
                if file_cost(f.size) + CASE_OVERHEAD > room:
                    bigger = smallest_fitting(file_cost(f.size))
                    hint = (
                        f"choose bigger media: --media {bigger.key} ({bigger.label})"
                        if bigger
                        else "no optical media holds it; keep it on the storage-location slip (R13)"
                    )
                    raise FileTooLargeError(
                        f"文件超过光盘容量 / {f.role} {f.name} ({f.size} bytes, sha256 "
                        f"{f.sha256}) does not fit on one {media.label} disc ({room} usable bytes)",
                        where=f"case {case.number}",
                        hint=hint,
                    )


def plan_discs(cases: list[PlanCase], media: Media) -> Plan:
    """Pack ``cases`` onto as few discs of ``media`` as this simple, predictable scheme allows."""
    _check(cases, media)
    room = usable(media)
    whole = [c for c in cases if c.cost <= room]
    big = [c for c in cases if c.cost > room]

    # Whole cases: first-fit decreasing by size.
    shared: list[DiscPlan] = []
    for case in sorted(whole, key=lambda c: -c.cost):
        target = next((d for d in shared if d.cost + case.cost <= room), None)
        if target is None:
            target = DiscPlan(0)
            shared.append(target)
        target.cost += case.cost
        target.files += [(case.number, f) for r in case.recordings for f in r.files]

    # Cases larger than one disc: their own volume set, first fit in recording order.
    spanning: list[DiscPlan] = []
    for case in big:
        own: list[DiscPlan] = []
        for rec in case.recordings:
            units = [rec.files] if rec.cost + CASE_OVERHEAD <= room else [(f,) for f in rec.files]
            for unit in units:
                cost = sum(file_cost(f.size) for f in unit)
                target = next((d for d in own if d.cost + cost <= room), None)
                if target is None:
                    target = DiscPlan(0, cost=CASE_OVERHEAD)
                    own.append(target)
                target.cost += cost
                target.files += [(case.number, f) for f in unit]
        spanning += own

    order = {c.number: i for i, c in enumerate(cases)}
    discs = sorted(shared, key=lambda d: min(order[n] for n in d.cases)) + spanning
    discs.sort(key=lambda d: min(order[n] for n in d.cases))  # stable: spanning sets stay in order
    for i, d in enumerate(discs, start=1):
        d.disc_no = i
    return Plan(media.key, discs)
