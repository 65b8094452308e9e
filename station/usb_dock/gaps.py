"""Gaps on the recorder (R20, seed 000 第二十三条(二): deleting or modifying the original
footage on the recorder is forbidden).

The station cannot see a file that was deleted before docking, but it sees what is missing:

* sequence gaps — the recorder numbers its files; a number missing between two files of one
  dock session, or between the device's last file handed in before and the first one now;
* time-line breaks — files ordered by number whose start times go backwards.

``find_gaps`` is pure and table-tested; ``record_session_gaps`` reads one session's files,
stores each gap in ``sequence_gaps`` with an audit entry (same transaction) and returns the
session flags. A recorder that restarts its numbering (a number at or below the last one seen)
is not a gap.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from station.audit.log import append as audit
from station.catalog import write_txn
from station.log import get
from station.timeutil import to_iso, utcnow
from station.usb_dock.checks import Flag

log = get()

GAP_KINDS = {"sequence": "文件序号缺口 / sequence gap", "timeline": "时间线倒退 / time line"}


@dataclass(frozen=True)
class Gap:
    kind: str  # sequence | timeline
    after_seq: int | None
    before_seq: int | None
    missing: int
    detail: str


def find_gaps(previous: tuple[int, str] | None, files: list[tuple[int, str | None]]) -> list[Gap]:
    """``previous``: (sequence, start) of the device's last file handed in before, or None;
    ``files``: (sequence, start ISO) of this session's files. Returns the gaps, in order."""
    seqs = sorted({(s, t) for s, t in files if s is not None}, key=lambda x: x[0])
    out: list[Gap] = []
    if not seqs:
        return out
    if previous is not None:
        prev_seq, _ = previous
        first = seqs[0][0]
        if first > prev_seq + 1:
            out.append(
                Gap(
                    "sequence",
                    prev_seq,
                    first,
                    first - prev_seq - 1,
                    f"上次交来的最后序号 {prev_seq}，本次从 {first} 开始，"
                    f"缺 {first - prev_seq - 1} 个 / last number handed in before {prev_seq}, "
                    f"now from {first}",
                )
            )
    for (a, ta), (b, tb) in itertools.pairwise(seqs):
        if b > a + 1:
            out.append(
                Gap(
                    "sequence",
                    a,
                    b,
                    b - a - 1,
                    f"序号 {a} 与 {b} 之间缺 {b - a - 1} 个文件 / {b - a - 1} file(s) missing "
                    f"between {a} and {b}",
                )
            )
        if ta and tb and tb < ta:
            out.append(
                Gap(
                    "timeline",
                    a,
                    b,
                    0,
                    f"序号 {b} 的开始时间早于序号 {a} / file {b} starts before file {a}",
                )
            )
    return out


def record_session_gaps(
    db: sqlite_utils.Database, session_id: int, device_id: str, *, actor: str
) -> list[Flag]:
    """Find, store and flag the gaps of one session's files of ``device_id``."""
    files = [
        (int(seq), start)
        for seq, start in db.execute(
            "select distinct r.sequence, r.recorded_at from sightings s"
            " join recordings r on r.sha256 = s.sha256"
            " where s.session_id = ? and r.device_id = ? and r.sequence is not null",
            [session_id, device_id],
        )
    ]
    if not files:
        return []
    first_start = min((t for _, t in files if t), default=None)
    prev_row = None
    if first_start is not None:
        prev_row = db.execute(
            "select sequence, recorded_at from recordings r where device_id = ?"
            " and sequence is not null and recorded_at < ? and not exists (select 1 from"
            " sightings s where s.session_id = ? and s.sha256 = r.sha256)"
            " order by recorded_at desc limit 1",
            [device_id, first_start, session_id],
        ).fetchone()
    previous = (int(prev_row[0]), prev_row[1]) if prev_row else None
    gaps = find_gaps(previous, files)
    if not gaps:
        return []
    now = to_iso(utcnow())
    with write_txn(db):
        for g in gaps:
            db.execute(
                "insert into sequence_gaps (session_id, device_id, kind, after_seq, before_seq,"
                " missing, detail, found_at) values (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    session_id,
                    device_id,
                    g.kind,
                    g.after_seq,
                    g.before_seq,
                    g.missing,
                    g.detail,
                    now,
                ],
            )
        audit(
            db,
            "dock.gaps_found",
            actor=actor,
            subject=f"session:{session_id}",
            data={"device_id": device_id, "gaps": [g.__dict__ for g in gaps]},
        )
    log.info("dock.gaps_found", session_id=session_id, device_id=device_id, gaps=len(gaps))
    flags = []
    missing = sum(g.missing for g in gaps if g.kind == "sequence")
    if missing:
        flags.append(
            Flag(
                "sequence_gap",
                f"文件序号有缺口，缺 {missing} 个，疑似在记录仪上删除（R20）/ {missing} file "
                "number(s) missing: possibly deleted on the recorder — "
                + "; ".join(g.detail.split(" / ")[0] for g in gaps if g.kind == "sequence"),
            )
        )
    if any(g.kind == "timeline" for g in gaps):
        flags.append(
            Flag(
                "timeline_gap",
                "文件时间线倒退 / the files' time line goes backwards: "
                + "; ".join(g.detail.split(" / ")[0] for g in gaps if g.kind == "timeline"),
            )
        )
    return flags


def record_all_devices(db: sqlite_utils.Database, session_id: int, *, actor: str) -> list[Flag]:
    """``record_session_gaps`` for every device with files in the session (a folder or inbox
    ingest may hold several)."""
    flags: list[Flag] = []
    for (device,) in db.execute(
        "select distinct r.device_id from sightings s join recordings r on r.sha256 = s.sha256"
        " where s.session_id = ? and r.device_id is not null order by 1",
        [session_id],
    ).fetchall():
        flags += record_session_gaps(db, session_id, device, actor=actor)
    return flags


def list_gaps(db: sqlite_utils.Database, *, since: str | None = None) -> list[dict[str, Any]]:
    if "sequence_gaps" not in db.table_names():
        return []
    sql = "select * from sequence_gaps"
    args: list[Any] = []
    if since:
        sql += " where found_at >= ?"
        args.append(since)
    return list(db.query(sql + " order by device_id, found_at, id", args))
