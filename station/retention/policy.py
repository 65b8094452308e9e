"""The retention policy as a pure function (R9, R10, R11).

``decide(recordings, policy, now)`` takes everything it needs as arguments — the recordings with
their case links, marks and holds, the policy and ``now`` — and returns, for each recording, the
time it is kept until (or no end) and the rule that says so. Nothing here reads a file, the clock
or the catalog; the executor (``station.retention.executor``) acts on the answers.

Rules, the longest applicable always wins (R10):

* R9  routine footage: ``routine_months`` (at least 6) after it was recorded, counted on the
  calendar of the station's time zone (a clip recorded 31 August is kept until 28/29 February).
  It is the floor for every recording, case footage included.
* R10 case footage: as long as its case — while the case is open it is kept; after closing,
  ``retention_years`` of the case (default ``case_years``, 5) from the closing date.
* R11 a long-term mark (reason code 1–5) on a linked case or on the recording itself: forever.
* legal hold: kept until the hold is released.
* the recorder's important (IMP) marker: kept until a clerk has reviewed the recording.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from station.config import Settings

# R11: the five situations that call for long-term keeping (seed 000 第十四条).
R11_REASONS: dict[int, tuple[str, str]] = {
    1: ("当事人敌视执法或曾有冲突纠纷", "party hostile to enforcement or earlier conflicts"),
    2: ("当事人异议、投诉、信访、复议或诉讼", "objection, complaint, petition, review or lawsuit"),
    3: ("逃避、拒绝、阻碍执法或辱骂、殴打执法人员", "evading, obstructing or assaulting officers"),
    4: ("处置群体性事件或突发事件", "mass incident or emergency"),
    5: ("其他需要长期保存的情形", "other situation needing long-term keeping"),
}

# Rule codes, strongest first among the rules without an end date.
RULE_LONG_TERM_CASE = "R11-case"
RULE_LONG_TERM_RECORDING = "R11-recording"
RULE_HOLD = "hold"
RULE_OPEN_CASE = "R10-open"
RULE_IMPORTANT = "important"
RULE_CASE = "R10"
RULE_ROUTINE = "R9"
RULES = (
    RULE_LONG_TERM_CASE,
    RULE_LONG_TERM_RECORDING,
    RULE_HOLD,
    RULE_OPEN_CASE,
    RULE_IMPORTANT,
    RULE_CASE,
    RULE_ROUTINE,
)
RULE_LABELS: dict[str, tuple[str, str]] = {
    RULE_LONG_TERM_CASE: ("案件长期保存", "long-term case (R11)"),
    RULE_LONG_TERM_RECORDING: ("录像长期保存", "long-term recording (R11)"),
    RULE_HOLD: ("法律保全", "legal hold"),
    RULE_OPEN_CASE: ("案件未结", "open case (R10)"),
    RULE_IMPORTANT: ("重要标记待审", "important marker, not reviewed"),
    RULE_CASE: ("案件保存期", "case retention (R10)"),
    RULE_ROUTINE: ("例行录像", "routine footage (R9)"),
}


@dataclass(frozen=True, slots=True)
class CaseFacts:
    number: str
    status: str  # open | closed
    closed_at: dt.datetime | None = None
    retention_years: int | None = None  # None: the policy's case_years
    long_term_reason: int | None = None


@dataclass(frozen=True, slots=True)
class RecordingFacts:
    sha256: str
    recorded_at: dt.datetime | None  # start of the recording, UTC; None: unknown
    ingested_at: dt.datetime
    important: bool = False
    reviewed: bool = False
    long_term_reason: int | None = None
    holds: tuple[str, ...] = ()  # reasons of the active legal holds
    cases: tuple[CaseFacts, ...] = ()


@dataclass(frozen=True, slots=True)
class Policy:
    routine_months: int = 6
    case_years: int = 5
    timezone: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        if self.routine_months < 6:
            raise ValueError("R9: routine footage is kept at least 6 months")
        if self.case_years < 1:
            raise ValueError("R10: case retention must be at least one year")

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            routine_months=settings.retention.routine_months,
            case_years=settings.retention.case_years,
            timezone=settings.station.timezone,
        )


@dataclass(frozen=True, slots=True)
class Decision:
    sha256: str
    keep_until: dt.datetime | None  # None: no end while the rule holds
    rule: str
    reason: str
    expired: bool

    @property
    def indefinite(self) -> bool:
        return self.keep_until is None


def add_months(t: dt.datetime, months: int, tz: dt.tzinfo) -> dt.datetime:
    """``t`` plus ``months`` calendar months on the wall clock of ``tz``; the day is clamped to
    the end of a shorter month (31 Aug + 6 → 28 Feb, or 29 Feb in a leap year)."""
    local = t.astimezone(tz)
    year, month0 = divmod(local.month - 1 + months, 12)
    year += local.year
    day = min(local.day, calendar.monthrange(year, month0 + 1)[1])
    return local.replace(year=year, month=month0 + 1, day=day).astimezone(dt.UTC)


def add_years(t: dt.datetime, years: int, tz: dt.tzinfo) -> dt.datetime:
    return add_months(t, 12 * years, tz)


def _case_reason(case: CaseFacts, years: int) -> str:
    return (
        f"案件 {case.number} 结案后保存 {years} 年 / case {case.number}: "
        f"{years} years after closing (R10)"
    )


def decide_one(rec: RecordingFacts, policy: Policy, now: dt.datetime, tz: dt.tzinfo) -> Decision:
    """The decision for one recording; see the module docstring for the rules."""
    # Rules without an end date, strongest first (R11 before a hold before an open case).
    for case in rec.cases:
        if case.long_term_reason is not None:
            zh, en = R11_REASONS.get(case.long_term_reason, ("?", "?"))
            return Decision(
                rec.sha256,
                None,
                RULE_LONG_TERM_CASE,
                f"案件 {case.number} 长期保存（{case.long_term_reason}. {zh}）/ case "
                f"{case.number} kept long-term (R11 reason {case.long_term_reason}: {en})",
                False,
            )
    if rec.long_term_reason is not None:
        zh, en = R11_REASONS.get(rec.long_term_reason, ("?", "?"))
        return Decision(
            rec.sha256,
            None,
            RULE_LONG_TERM_RECORDING,
            f"录像长期保存（{rec.long_term_reason}. {zh}）/ recording kept long-term "
            f"(R11 reason {rec.long_term_reason}: {en})",
            False,
        )
    if rec.holds:
        return Decision(
            rec.sha256,
            None,
            RULE_HOLD,
            "法律保全 / legal hold: " + "; ".join(rec.holds),
            False,
        )
    for case in rec.cases:
        if case.status != "closed" or case.closed_at is None:
            return Decision(
                rec.sha256,
                None,
                RULE_OPEN_CASE,
                f"案件 {case.number} 未结 / case {case.number} is open (R10)",
                False,
            )
    if rec.important and not rec.reviewed:
        return Decision(
            rec.sha256,
            None,
            RULE_IMPORTANT,
            "记录仪重要标记，待审核 / important marker, not reviewed by a clerk yet",
            False,
        )
    # Dated rules: the latest end wins; R9 is the floor for every recording.
    start = rec.recorded_at or rec.ingested_at
    until = add_months(start, policy.routine_months, tz)
    rule = RULE_ROUTINE
    reason = (
        f"例行录像，录制后保存 {policy.routine_months} 个月 / routine footage, "
        f"{policy.routine_months} months after recording (R9)"
    )
    if rec.recorded_at is None:
        reason += "；录制时间未知，按采集时间计 / recording time unknown, counted from ingest"
    for case in rec.cases:
        assert case.closed_at is not None  # open cases returned above
        years = case.retention_years or policy.case_years
        case_until = add_years(case.closed_at, years, tz)
        if case_until > until:
            until, rule, reason = case_until, RULE_CASE, _case_reason(case, years)
    return Decision(rec.sha256, until, rule, reason, now >= until)


def decide(
    recordings: Iterable[RecordingFacts], policy: Policy, now: dt.datetime
) -> Iterator[Decision]:
    """Decide for each recording (a stream: 1,000,000 recordings need not fit in memory)."""
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    tz = ZoneInfo(policy.timezone)
    for rec in recordings:
        yield decide_one(rec, policy, now, tz)
