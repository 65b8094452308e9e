"""The retention policy as a pure function (R9, R10, R11).

``decide(recordings, policy, now)`` takes everything it needs as arguments — the recordings with
their case links, marks and holds, the policy and ``now`` — and returns, for each recording, the
time it is kept until (or no end) and the rule that says so. Nothing here reads a file, the clock
or the catalog; the executor (``station.retention.executor``) acts on the answers.

Rules, the longest applicable always wins (R10):

* R9  routine footage: ``routine_months`` (at least 6) after it was recorded, counted on the
  calendar of the station's time zone (a clip recorded 31 August is kept until 28/29 February).
  It is the floor for every recording, case footage included. Footage is routine only when it is
  known to be: no case, no mark, and a category in ``ROUTINE_CATEGORIES`` (patrol, education,
  warning, digital city management — acts not involving a party's money or property).
  Unclassified footage is never assumed routine; footage of enforcement or inspection without a
  case is kept until a clerk links or reclassifies it. An expired recording is only *proposed*
  for purging; a supervisor decides (``station.retention.approval``). A rejected proposal keeps
  the recording until the date the supervisor gave (``kept_until``).
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
from typing import NamedTuple
from zoneinfo import ZoneInfo

from station.config import Settings

# R11: the five situations that call for long-term keeping, in the words of seed 000 第十四条
# (城管工作 generalised to 执法工作 for every enforcement body).
R11_REASONS: dict[int, tuple[str, str]] = {
    1: (
        "对执法工作不满、抵触情绪严重或之前发生过执法冲突、纠纷的行政管理相对人实施管理的",
        "managing a party hostile to enforcement, or with earlier conflicts or disputes",
    ),
    2: (
        "当事人对行政执法人员现场执法、办案有异议或者投诉、上访的，申请行政复议或提起行政诉讼的",
        "the party objects, complains or petitions, or seeks administrative review or sues",
    ),
    3: (
        "当事人逃避、拒绝、阻碍行政执法人员依法执行公务，或者谩骂、侮辱、殴打行政执法人员的",
        "the party evades, refuses or obstructs officers, or curses, insults or assaults them",
    ),
    4: (
        "行政执法人员参与处置群体性事件、突发事件的",
        "officers handling a mass incident or an emergency",
    ),
    5: ("其他需要长期保存的重要情况", "other important situations needing long-term keeping"),
}
_ITEM = {1: "一", 2: "二", 3: "三", 4: "四", 5: "五"}


def reason_text(code: int) -> str:
    """A reason as users read it: the article and item, then the source's words (R11)."""
    zh, en = R11_REASONS.get(code, ("未知理由", "unknown reason"))
    return f"第十四条第（{_ITEM.get(code, str(code))}）项：{zh} / {en}"


def reasons_text(codes: Iterable[int]) -> str:
    return "；".join(reason_text(c) for c in codes)


# R9: categories known to be routine — acts not involving a party's money or property (seed 000
# 第十二条). Every other category, and no category at all, is never assumed routine.
ROUTINE_CATEGORIES = frozenset(
    {"patrol", "education", "warning", "city-management", "routine-other"}
)

# Rule codes, strongest first among the rules without an end date.
RULE_LONG_TERM_CASE = "R11-case"
RULE_LONG_TERM_RECORDING = "R11-recording"
RULE_HOLD = "hold"
RULE_OPEN_CASE = "R10-open"
RULE_IMPORTANT = "important"
RULE_UNCLASSIFIED = "R9-unclassified"
RULE_NOT_ROUTINE = "R9-not-routine"
RULE_CASE = "R10"
RULE_MANAGER_KEEP = "R9-kept"
RULE_ROUTINE = "R9"
RULES = (
    RULE_LONG_TERM_CASE,
    RULE_LONG_TERM_RECORDING,
    RULE_HOLD,
    RULE_OPEN_CASE,
    RULE_IMPORTANT,
    RULE_UNCLASSIFIED,
    RULE_NOT_ROUTINE,
    RULE_CASE,
    RULE_MANAGER_KEEP,
    RULE_ROUTINE,
)
RULE_LABELS: dict[str, tuple[str, str]] = {
    RULE_LONG_TERM_CASE: ("案件长期保存", "long-term case (R11)"),
    RULE_LONG_TERM_RECORDING: ("录像长期保存", "long-term recording (R11)"),
    RULE_HOLD: ("法律保全", "legal hold"),
    RULE_OPEN_CASE: ("案件未结", "open case (R10)"),
    RULE_IMPORTANT: ("重要标记待审", "important marker, not reviewed"),
    RULE_UNCLASSIFIED: ("未分类，不按例行清除", "unclassified, never assumed routine (R9)"),
    RULE_NOT_ROUTINE: ("涉及当事人财产，非例行", "not routine: involves a party (R9)"),
    RULE_CASE: ("案件保存期", "case retention (R10)"),
    RULE_MANAGER_KEEP: ("负责人决定继续保存", "kept by a supervisor's decision (R9)"),
    RULE_ROUTINE: ("例行录像", "routine footage (R9)"),
}


class CaseFacts(NamedTuple):
    number: str
    status: str  # open | closed
    closed_at: dt.datetime | None = None
    retention_years: int | None = None  # None: the policy's case_years
    long_term_reason: int | None = None


class RecordingFacts(NamedTuple):
    sha256: str
    recorded_at: dt.datetime | None  # start of the recording, UTC; None: unknown
    ingested_at: dt.datetime
    important: bool = False
    reviewed: bool = False
    long_term_reason: int | None = None
    holds: tuple[str, ...] = ()  # reasons of the active legal holds
    cases: tuple[CaseFacts, ...] = ()
    category: str | None = None  # R6/R9 tag; None: unclassified, never routine
    kept_until: dt.datetime | None = None  # R9: a supervisor rejected the purge until then


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


class Decision(NamedTuple):
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


_UNCLASSIFIED = (
    "未分类录像不视为例行录像，须先标注分类 / unclassified footage is never assumed routine; "
    "tag its category first (R9)"
)
_NOT_ROUTINE = (
    "执法或检查等涉及当事人财产的录像，未关联案件，须关联案件或改为例行分类 / footage of "
    "enforcement or inspection (a party's money or property) without a case: link it or "
    "reclassify it (R9)"
)


def fast_iso_local(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_HOUR = dt.timedelta(hours=1) - dt.timedelta(microseconds=1)
_IMPORTANT_TEXT = "记录仪重要标记，待审核 / important marker, not reviewed by a clerk yet"
_UTC = dt.UTC
_new = tuple.__new__  # builds the NamedTuples below without their Python-level __new__


# sha -> (long-term reason, reviewed, hold reasons, cases, kept until) of the recordings that
# have a link, hold, mark or supervisor's keep; most recordings have none.
Extra = tuple[int | None, bool, tuple[str, ...], tuple[CaseFacts, ...], dt.datetime | None]


class Decider:
    """``decide_one`` with caches, for streams of recordings (1,000,000 in a few seconds).

    The calendar shift of R9 depends only on the UTC hour a recording started in, as long as
    that hour holds no local midnight and no clock change at either end; such hours are cached,
    the others computed exactly. Reason texts are shared, not rebuilt per recording."""

    def __init__(self, policy: Policy, now: dt.datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("now must carry a time zone")
        self.policy = policy
        self.now = now
        self.tz = ZoneInfo(policy.timezone)
        self._shift: dict[int, dt.timedelta | None] = {}
        self._case_until: dict[tuple[str, dt.datetime, int], dt.datetime] = {}
        self._texts: dict[tuple[str, str, int], str] = {}
        months = policy.routine_months
        self._routine = (
            f"例行录像，录制后保存 {months} 个月 / routine footage, "
            f"{months} months after recording (R9)"
        )
        self._routine_unknown = (
            self._routine + "；录制时间未知，按采集时间计 / recording time unknown, counted from "
            "ingest"
        )

    @property
    def routine_reason(self) -> str:
        """R9's reason for footage whose recording time is known."""
        return self._routine

    def routine_until(self, t: dt.datetime) -> dt.datetime:
        if t.tzinfo is not _UTC:
            t = t.astimezone(_UTC)
        key = t.toordinal() * 24 + t.hour  # the UTC hour (cheaper than datetime.replace)
        try:
            shift = self._shift[key]
        except KeyError:
            shift = self._hour_shift(dt.datetime(t.year, t.month, t.day, t.hour, tzinfo=_UTC))
            self._shift[key] = shift
        if shift is None:
            return add_months(t, self.policy.routine_months, self.tz)
        return t + shift

    def hour_shift(self, hour: dt.datetime) -> dt.timedelta | None:
        """The cached R9 shift of the UTC hour starting at ``hour`` (a whole UTC hour), or None
        when that hour holds a local midnight or a clock change: then each time in it is
        shifted on its own (``add_months``)."""
        key = hour.toordinal() * 24 + hour.hour
        try:
            return self._shift[key]
        except KeyError:
            shift = self._shift[key] = self._hour_shift(hour)
            return shift

    def case_until(self, case: CaseFacts) -> dt.datetime:
        """R10: the end of a closed case's retention (its years, else the policy's)."""
        closed = case.closed_at
        assert closed is not None
        years = case.retention_years or self.policy.case_years
        key = (case.number, closed, years)
        case_until = self._case_until.get(key)
        if case_until is None:
            case_until = self._case_until[key] = add_years(closed, years, self.tz)
        return case_until

    def _hour_shift(self, hour: dt.datetime) -> dt.timedelta | None:
        tz, months = self.tz, self.policy.routine_months
        last = hour + _HOUR
        a, b = hour.astimezone(tz), last.astimezone(tz)
        if a.date() != b.date() or a.utcoffset() != b.utcoffset():
            return None
        ta, tb = add_months(hour, months, tz), add_months(last, months, tz)
        if ta.astimezone(tz).utcoffset() != tb.astimezone(tz).utcoffset():
            return None
        shift = ta - hour
        return shift if tb - last == shift else None

    def _text(self, kind: str, number: str, code: int) -> str:
        key = (kind, number, code)
        text = self._texts.get(key)
        if text is None:
            if kind == "lt-case":
                zh, en = R11_REASONS.get(code, ("?", "?"))
                text = (
                    f"案件 {number} 长期保存（第十四条第（{_ITEM.get(code, code)}）项：{zh}）/ "
                    f"case {number} kept long-term "
                    f"(R11 reason {code}: {en})"
                )
            elif kind == "lt-rec":
                zh, en = R11_REASONS.get(code, ("?", "?"))
                text = (
                    f"录像长期保存（第十四条第（{_ITEM.get(code, code)}）项：{zh}）/ "
                    "recording kept long-term "
                    f"(R11 reason {code}: {en})"
                )
            elif kind == "open":
                text = f"案件 {number} 未结 / case {number} is open (R10)"
            else:
                text = (
                    f"案件 {number} 结案后保存 {code} 年 / case {number}: {code} years after "
                    "closing (R10)"
                )
            self._texts[key] = text
        return text

    def unexpired_from(self) -> str:
        """An ISO date: no rule can have expired a recording started on or after it by ``now``
        (R9 alone keeps everything at least ``routine_months`` × 28 days, and every other rule
        keeps longer); two days' margin for time zones and clock changes."""
        t = self.now - dt.timedelta(days=28 * self.policy.routine_months - 2)
        return t.astimezone(_UTC).date().isoformat()

    def plain(
        self,
        sha: str,
        recorded_at: dt.datetime | None,
        ingested_at: dt.datetime,
        important: bool,
        category: str | None = None,
    ) -> Decision:
        """The decision for a recording with no case link, hold, mark or supervisor's keep
        (most of them): the important marker (never reviewed without a mark), footage not known
        to be routine (unclassified, or of a category involving a party: kept, R9), or routine
        footage (R9)."""
        if important:
            return _new(Decision, (sha, None, RULE_IMPORTANT, _IMPORTANT_TEXT, False))
        if category is None:
            return _new(Decision, (sha, None, RULE_UNCLASSIFIED, _UNCLASSIFIED, False))
        if category not in ROUTINE_CATEGORIES:
            return _new(Decision, (sha, None, RULE_NOT_ROUTINE, _NOT_ROUTINE, False))
        if recorded_at is not None:
            until, reason = self.routine_until(recorded_at), self._routine
        else:
            until, reason = self.routine_until(ingested_at), self._routine_unknown
        return _new(Decision, (sha, until, RULE_ROUTINE, reason, self.now >= until))

    def rows(
        self,
        rows: Iterable[tuple[str, str | None, str, int, int, str, str | None]],
        extra: dict[str, Extra],
    ) -> Iterator[tuple[Decision, int, str]]:
        """Decide over catalog rows ``(sha256, recorded_at, ingested_at, important, size,
        state, category)``, yielding ``(decision, size, state)``. ``extra`` holds the links,
        holds, marks and supervisors' keeps of the recordings that have any (sha -> (long-term
        reason, reviewed, holds, cases, kept until)); the others, most of them, are decided as
        ``plain`` would, inlined: at a million rows every call saved counts."""
        new, parse, get, shifts = _new, dt.datetime.fromisoformat, extra.get, self._shift
        now, routine_until = self.now, self.routine_until
        known, unknown = self._routine, self._routine_unknown
        routine = ROUTINE_CATEGORIES
        for sha, rec_at, ing_at, important, size, state, category in rows:
            x = get(sha)
            if x is not None:
                lt, reviewed, held, linked, kept = x
                facts = (
                    sha,
                    parse(rec_at) if rec_at else None,
                    parse(ing_at),
                    bool(important),
                    reviewed,
                    lt,
                    held,
                    linked,
                    category,
                    kept,
                )
                yield self(new(RecordingFacts, facts)), size, state
                continue
            if important:
                yield (
                    new(Decision, (sha, None, RULE_IMPORTANT, _IMPORTANT_TEXT, False)),
                    size,
                    state,
                )
                continue
            if category not in routine:  # R9: unclassified or involving a party: kept
                rule, text = (
                    (RULE_UNCLASSIFIED, _UNCLASSIFIED)
                    if category is None
                    else (RULE_NOT_ROUTINE, _NOT_ROUTINE)
                )
                yield new(Decision, (sha, None, rule, text, False)), size, state
                continue
            if rec_at:
                t, reason = parse(rec_at), known
            else:
                t, reason = parse(ing_at), unknown
            shift = shifts.get(t.toordinal() * 24 + t.hour) if t.tzinfo is _UTC else None
            until = t + shift if shift is not None else routine_until(t)
            yield new(Decision, (sha, until, RULE_ROUTINE, reason, now >= until)), size, state

    def row(
        self,
        row: tuple[str, str | None, str, int, int, str, str | None],
        extra: dict[str, Extra],
    ) -> Decision:
        """The decision for one catalog row, as ``rows`` gives it."""
        return next(self.rows((row,), extra))[0]

    def __call__(self, rec: RecordingFacts) -> Decision:
        sha, cases = rec.sha256, rec.cases
        if (
            not cases
            and not rec.holds
            and rec.long_term_reason is None
            and not rec.reviewed
            and rec.kept_until is None
        ):
            return self.plain(sha, rec.recorded_at, rec.ingested_at, rec.important, rec.category)
        # Rules without an end date, strongest first (R11 before a hold before an open case).
        for case in cases:
            if case.long_term_reason is not None:
                text = self._text("lt-case", case.number, case.long_term_reason)
                return Decision(sha, None, RULE_LONG_TERM_CASE, text, False)
        if rec.long_term_reason is not None:
            text = self._text("lt-rec", "", rec.long_term_reason)
            return Decision(sha, None, RULE_LONG_TERM_RECORDING, text, False)
        if rec.holds:
            text = "法律保全 / legal hold: " + "; ".join(rec.holds)
            return Decision(sha, None, RULE_HOLD, text, False)
        for case in cases:
            if case.status != "closed" or case.closed_at is None:
                return Decision(
                    sha, None, RULE_OPEN_CASE, self._text("open", case.number, 0), False
                )
        if rec.important and not rec.reviewed:
            return Decision(sha, None, RULE_IMPORTANT, _IMPORTANT_TEXT, False)
        if not cases:
            # R9: only footage known to be routine may expire without a case.
            if rec.category is None:
                return Decision(sha, None, RULE_UNCLASSIFIED, _UNCLASSIFIED, False)
            if rec.category not in ROUTINE_CATEGORIES:
                return Decision(sha, None, RULE_NOT_ROUTINE, _NOT_ROUTINE, False)
        # Dated rules: the latest end wins; R9 is the floor for every recording.
        if rec.recorded_at is not None:
            until, reason = self.routine_until(rec.recorded_at), self._routine
        else:
            until, reason = self.routine_until(rec.ingested_at), self._routine_unknown
        rule = RULE_ROUTINE
        for case in cases:
            closed = case.closed_at
            assert closed is not None  # open cases returned above
            years = case.retention_years or self.policy.case_years
            key = (case.number, closed, years)
            case_until = self._case_until.get(key)
            if case_until is None:
                case_until = add_years(closed, years, self.tz)
                self._case_until[key] = case_until
            if case_until > until:
                until, rule = case_until, RULE_CASE
                reason = self._text("case", case.number, years)
        kept = rec.kept_until
        if kept is not None and kept > until:
            until, rule = kept, RULE_MANAGER_KEEP
            reason = (
                "负责人驳回清除，继续保存至 / a supervisor rejected the purge; kept until "
                + fast_iso_local(kept)
            )
        return _new(Decision, (sha, until, rule, reason, self.now >= until))


def decide_one(rec: RecordingFacts, policy: Policy, now: dt.datetime) -> Decision:
    """The decision for one recording; see the module docstring for the rules."""
    return Decider(policy, now)(rec)


def decide(
    recordings: Iterable[RecordingFacts], policy: Policy, now: dt.datetime
) -> Iterator[Decision]:
    """Decide for each recording (a stream: 1,000,000 recordings need not fit in memory)."""
    decider = Decider(policy, now)
    return map(decider, recordings)


class ArchivalPeriod(NamedTuple):
    """The 保管期限 an archive office reads, beside the station's own retention decision.

    ``code``/``words`` follow the configured scheme (``archive.retention_scheme``); ``years`` is
    the station's period (None: kept without end); ``rule`` and ``station`` are the station's
    rule code and its bilingual reason. The station never purges what it called 永久.
    """

    code: str
    words: str
    years: int | None
    rule: str
    station: str


def period_words(years: int | None, scheme: str, *, months: int | None = None) -> tuple[str, str]:
    """(code, words) for a period of ``years`` (None: without end) in an archive scheme.

    - ``dat22`` (DA/T 22-2015 wording, codes Y/D30/D10 as used with DA/T 13): up to 10 years →
      定期10年, up to 30 → 定期30年, longer or without end → 永久.
    - ``three-tier`` (the older 永久/长期/短期): up to 15 years → 短期 (D), up to 50 → 长期 (C),
      longer or without end → 永久 (Y).
    - ``years``: N年 (code D<N>), months for routine footage (M<N>), 永久 (Y).
    A period shorter than a year (routine footage, R9) takes the shortest class of the scheme.
    """
    if years is None and months is None:
        return "Y", "永久"
    if scheme == "years":
        if years is None:
            return f"M{months}", f"{months}个月"
        return f"D{years}", f"{years}年"
    n = years if years is not None else 0
    if scheme == "three-tier":
        if n <= 15:
            return "D", "短期"
        return ("C", "长期") if n <= 50 else ("Y", "永久")
    if n <= 10:
        return "D10", "定期10年"
    return ("D30", "定期30年") if n <= 30 else ("Y", "永久")


def case_archival_period(case: CaseFacts, policy: Policy, scheme: str) -> ArchivalPeriod:
    """A case's 保管期限: R11 long-term → without end (永久); otherwise its R10 years."""
    if case.long_term_reason is not None:
        zh, en = R11_REASONS.get(case.long_term_reason, ("?", "?"))
        code, words = period_words(None, scheme)
        station = (
            f"长期保存，永不清除（{case.long_term_reason}. {zh}）/ kept without end, never purged "
            f"(R11 reason {case.long_term_reason}: {en})"
        )
        return ArchivalPeriod(code, words, None, RULE_LONG_TERM_CASE, station)
    years = case.retention_years or policy.case_years
    code, words = period_words(years, scheme)
    station = f"结案后保存 {years} 年 / {years} years after the case is closed (R10)"
    return ArchivalPeriod(code, words, years, RULE_CASE, station)


def recording_archival_period(rec: RecordingFacts, policy: Policy, scheme: str) -> ArchivalPeriod:
    """A recording's 保管期限: the longest of its cases', its own R11 mark, else routine (R9)."""
    periods = [case_archival_period(c, policy, scheme) for c in rec.cases]
    if rec.long_term_reason is not None:
        zh, en = R11_REASONS.get(rec.long_term_reason, ("?", "?"))
        code, words = period_words(None, scheme)
        station = (
            f"录像长期保存，永不清除（{rec.long_term_reason}. {zh}）/ recording kept without end "
            f"(R11 reason {rec.long_term_reason}: {en})"
        )
        periods.append(ArchivalPeriod(code, words, None, RULE_LONG_TERM_RECORDING, station))
    if periods:
        return max(periods, key=lambda p: float("inf") if p.years is None else p.years)
    months = policy.routine_months
    code, words = period_words(None, scheme, months=months)
    station = f"例行录像，录制后保存 {months} 个月 / routine footage, {months} months (R9)"
    return ArchivalPeriod(code, words, None, RULE_ROUTINE, station)
