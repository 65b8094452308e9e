"""decide() as a pure function, checked against tables of dates (R9, R10, R11)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from station.config import Settings, parse_settings
from station.retention.policy import (
    RULE_CASE,
    RULE_HOLD,
    RULE_IMPORTANT,
    RULE_LONG_TERM_CASE,
    RULE_LONG_TERM_RECORDING,
    RULE_OPEN_CASE,
    RULE_ROUTINE,
    CaseFacts,
    Decider,
    Decision,
    Policy,
    RecordingFacts,
    add_months,
    decide,
)
from station.retention.runtypes import fast_iso
from station.timeutil import to_iso

SH = ZoneInfo("Asia/Shanghai")
P = Policy()  # 6 months, 5 years, Asia/Shanghai


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def one(rec: RecordingFacts, now: str, policy: Policy = P) -> Decision:
    (d,) = decide([rec], policy, utc(now))
    return d


def rec(recorded: str | None, **kw: object) -> RecordingFacts:
    kw.setdefault("category", "patrol")  # R9: known routine unless the row says otherwise
    return RecordingFacts(
        sha256="a" * 64,
        recorded_at=utc(recorded) if recorded else None,
        ingested_at=utc(kw.pop("ingested", recorded or "2026-01-01T00:00:00+08:00")),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


# R9: six calendar months on the station's wall clock (Asia/Shanghai), day clamped at month end.
ROUTINE = [
    # recorded (local, +08:00)     keep until (local, +08:00)
    ("2026-01-15T10:00:00+08:00", "2026-07-15T10:00:00+08:00"),
    ("2026-08-31T09:30:00+08:00", "2027-02-28T09:30:00+08:00"),  # month end → shorter February
    ("2027-08-31T09:30:00+08:00", "2028-02-29T09:30:00+08:00"),  # leap year keeps the 29th
    ("2027-08-29T09:30:00+08:00", "2028-02-29T09:30:00+08:00"),
    ("2028-02-29T12:00:00+08:00", "2028-08-29T12:00:00+08:00"),  # leap day itself
    ("2026-12-31T23:59:59+08:00", "2027-06-30T23:59:59+08:00"),  # year boundary, 31 → 30
    ("2026-03-31T08:00:00+08:00", "2026-09-30T08:00:00+08:00"),
    # 17:00 UTC on 31 Aug is already 1 Sep in Shanghai: counted on the local calendar.
    ("2026-08-31T17:00:00+00:00", "2027-03-01T01:00:00+08:00"),
    # 15:59 UTC on 31 Aug is still 31 Aug 23:59 in Shanghai.
    ("2026-08-31T15:59:00+00:00", "2027-02-28T23:59:00+08:00"),
]


@pytest.mark.parametrize(("recorded", "until"), ROUTINE)
def test_routine_six_months_local_calendar(recorded: str, until: str) -> None:
    d = one(rec(recorded), "2026-01-01T00:00:00Z")
    assert d.rule == RULE_ROUTINE
    assert d.keep_until == utc(until)
    assert not d.expired


def test_expiry_boundary_is_exact() -> None:
    r = rec("2026-01-15T10:00:00+08:00")
    assert not one(r, "2026-07-15T09:59:59+08:00").expired
    assert one(r, "2026-07-15T10:00:00+08:00").expired


def test_time_zone_of_the_station_matters() -> None:
    # The same instant, counted on the UTC calendar instead of Shanghai's (R9 on the station's
    # wall clock): 31 Aug 17:00 UTC stays 31 Aug in UTC → end of February.
    r = rec("2026-08-31T17:00:00+00:00")
    d = one(r, "2026-01-01T00:00:00Z", Policy(timezone="UTC"))
    assert d.keep_until == utc("2027-02-28T17:00:00+00:00")


def test_longer_routine_setting_and_minimum() -> None:
    r = rec("2026-01-15T10:00:00+08:00")
    assert one(r, "2026-01-01T00:00:00Z", Policy(routine_months=12)).keep_until == utc(
        "2027-01-15T10:00:00+08:00"
    )
    with pytest.raises(ValueError, match="R9"):
        Policy(routine_months=5)
    assert Policy.from_settings(Settings()).routine_months == 6
    s = parse_settings({"retention": {"routine_months": 9}, "station": {"timezone": "UTC"}})
    assert Policy.from_settings(s) == Policy(routine_months=9, timezone="UTC")


def test_unknown_recording_time_counts_from_ingest() -> None:
    r = rec(None, ingested="2026-02-10T08:00:00+08:00")
    d = one(r, "2026-03-01T00:00:00Z")
    assert d.rule == RULE_ROUTINE
    assert d.keep_until == utc("2026-08-10T08:00:00+08:00")
    assert "unknown" in d.reason


def closed(number: str, when: str, years: int | None = None, lt: int | None = None) -> CaseFacts:
    return CaseFacts(number, "closed", utc(when), years, lt)


def opened(number: str, lt: int | None = None) -> CaseFacts:
    return CaseFacts(number, "open", None, None, lt)


# R10 and the longest rule wins.
CASES = [
    # cases linked                                              now     rule  keep until
    ([opened("A")], "2040-01-01T00:00:00Z", RULE_OPEN_CASE, None),
    (
        [closed("A", "2026-03-31T10:00:00+08:00")],
        "2026-06-01T00:00:00Z",
        RULE_CASE,
        "2031-03-31T10:00:00+08:00",
    ),
    # closed on a leap day: five years later there is no 29 February.
    (
        [closed("A", "2028-02-29T16:00:00+08:00")],
        "2028-06-01T00:00:00Z",
        RULE_CASE,
        "2033-02-28T16:00:00+08:00",
    ),
    # per-case retention of 10 years.
    (
        [closed("A", "2026-05-01T09:00:00+08:00", years=10)],
        "2026-06-01T00:00:00Z",
        RULE_CASE,
        "2036-05-01T09:00:00+08:00",
    ),
    # two cases: the later end wins.
    (
        [
            closed("A", "2027-01-10T09:00:00+08:00"),
            closed("B", "2026-06-01T09:00:00+08:00", years=8),
        ],
        "2026-07-01T00:00:00Z",
        RULE_CASE,
        "2034-06-01T09:00:00+08:00",
    ),
    # two cases, one still open: kept while it is open.
    (
        [closed("A", "2026-06-01T09:00:00+08:00"), opened("B")],
        "2050-01-01T00:00:00Z",
        RULE_OPEN_CASE,
        None,
    ),
    # a long-term mark on either case keeps it forever (R11).
    (
        [closed("A", "2026-06-01T09:00:00+08:00"), closed("B", "2026-06-02T09:00:00+08:00", lt=3)],
        "2090-01-01T00:00:00Z",
        RULE_LONG_TERM_CASE,
        None,
    ),
    (
        [opened("A", lt=2)],
        "2090-01-01T00:00:00Z",
        RULE_LONG_TERM_CASE,
        None,
    ),
]


@pytest.mark.parametrize(("cases", "now", "rule", "until"), CASES)
def test_case_rules(cases: list[CaseFacts], now: str, rule: str, until: str | None) -> None:
    d = one(rec("2026-01-15T10:00:00+08:00", cases=tuple(cases)), now)
    assert d.rule == rule
    assert d.keep_until == (utc(until) if until else None)
    assert d.expired is False


def test_r9_floor_beats_a_short_case_retention() -> None:
    # The case closed long before this clip was recorded and keeps only 1 year: R9's six months
    # from recording end later, so R9 wins (the longest rule wins, R10).
    r_late = rec("2026-12-20T10:00:00+08:00", cases=(closed("A", "2026-01-01T10:00:00+08:00", 1),))
    d = one(r_late, "2027-01-01T00:00:00Z")
    assert d.rule == RULE_ROUTINE
    assert d.keep_until == utc("2027-06-20T10:00:00+08:00")


def test_case_reopened_then_closed_again() -> None:
    clip = "2026-01-15T10:00:00+08:00"
    first = one(
        rec(clip, cases=(closed("A", "2026-02-01T10:00:00+08:00"),)), "2031-02-02T00:00:00Z"
    )
    assert first.expired and first.rule == RULE_CASE
    # Reopened (status open, closing date cleared): kept again, whatever the date.
    reopened = one(rec(clip, cases=(opened("A"),)), "2031-02-02T00:00:00Z")
    assert reopened.rule == RULE_OPEN_CASE and not reopened.expired
    # Closed a second time: five years from the new closing date.
    again = one(
        rec(clip, cases=(closed("A", "2031-03-01T10:00:00+08:00"),)), "2031-03-02T00:00:00Z"
    )
    assert again.keep_until == utc("2036-03-01T10:00:00+08:00") and not again.expired


def test_long_term_mark_on_recording_and_hold_and_important() -> None:
    old = "2020-01-15T10:00:00+08:00"
    now = "2030-01-01T00:00:00Z"
    assert one(rec(old), now).expired
    lt = one(rec(old, long_term_reason=4), now)
    assert (lt.rule, lt.keep_until, lt.expired) == (RULE_LONG_TERM_RECORDING, None, False)
    assert "R11 reason 4" in lt.reason
    held = one(rec(old, holds=("复议 2026-01 / administrative review",)), now)
    assert (held.rule, held.expired) == (RULE_HOLD, False)
    assert "administrative review" in held.reason
    imp = one(rec(old, important=True), now)
    assert (imp.rule, imp.expired) == (RULE_IMPORTANT, False)
    # A clerk reviewed it: the marker no longer keeps it; R9 applies again.
    reviewed = one(rec(old, important=True, reviewed=True), now)
    assert (reviewed.rule, reviewed.expired) == (RULE_ROUTINE, True)


def test_strongest_rule_named_first() -> None:
    # Everything at once: the R11 case mark is what the decision names.
    r = rec(
        "2020-01-15T10:00:00+08:00",
        important=True,
        long_term_reason=5,
        holds=("h",),
        cases=(opened("A"), closed("B", "2021-01-01T00:00:00Z", lt=1)),
    )
    assert one(r, "2030-01-01T00:00:00Z").rule == RULE_LONG_TERM_CASE
    # Hold beats an open case, which beats the important marker.
    r2 = rec("2020-01-15T10:00:00+08:00", important=True, holds=("h",), cases=(opened("A"),))
    assert one(r2, "2030-01-01T00:00:00Z").rule == RULE_HOLD
    r3 = rec("2020-01-15T10:00:00+08:00", important=True, cases=(opened("A"),))
    assert one(r3, "2030-01-01T00:00:00Z").rule == RULE_OPEN_CASE


def test_decide_is_pure_and_streams() -> None:
    recs = [rec("2026-01-15T10:00:00+08:00")] * 3
    now = utc("2026-08-01T00:00:00Z")
    a = list(decide(recs, P, now))
    b = list(decide(iter(recs), P, now))
    assert a == b and len(a) == 3 and all(d.expired for d in a)
    with pytest.raises(ValueError, match="time zone"):
        list(decide(recs, P, dt.datetime(2026, 1, 1)))


def test_add_months_clamps_to_month_end() -> None:
    t = utc("2026-01-31T12:00:00+08:00")
    assert add_months(t, 1, SH) == utc("2026-02-28T12:00:00+08:00")
    assert add_months(t, 13, SH) == utc("2027-02-28T12:00:00+08:00")
    assert add_months(t, 25, SH) == utc("2028-02-29T12:00:00+08:00")


@settings(max_examples=400, deadline=None)
@given(
    t=st.datetimes(
        min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2060, 12, 31),
        timezones=st.just(dt.UTC),
    ),
    zone=st.sampled_from(
        [
            "Asia/Shanghai",
            "America/New_York",
            "Europe/Berlin",
            "Asia/Kolkata",
            "Australia/Lord_Howe",
            "Pacific/Chatham",
            "UTC",
        ]
    ),
    months=st.sampled_from([6, 7, 12, 18]),
)
def test_cached_shift_equals_exact_calendar_arithmetic(
    t: dt.datetime, zone: str, months: int
) -> None:
    # The decider caches R9's shift per UTC hour; it must agree with the plain arithmetic
    # everywhere, DST changes and half-hour zones included.
    decider = Decider(Policy(routine_months=months, timezone=zone), utc("2030-01-01T00:00:00Z"))
    # Warm the cache with the hour's start first, then ask for t inside the same hour.
    decider.routine_until(t.replace(minute=0, second=0, microsecond=0))
    assert decider.routine_until(t) == add_months(t, months, ZoneInfo(zone))


@settings(max_examples=200, deadline=None)
@given(
    t=st.datetimes(
        min_value=dt.datetime(1970, 1, 1),
        max_value=dt.datetime(2200, 1, 1),
        timezones=st.sampled_from([dt.UTC, ZoneInfo("Asia/Shanghai")]),
    )
)
def test_fast_iso_matches_to_iso(t: dt.datetime) -> None:
    assert fast_iso(t) == to_iso(t)


@pytest.mark.parametrize(
    ("years", "scheme", "expected"),
    [
        (None, "dat22", ("Y", "永久")),
        (5, "dat22", ("D10", "定期10年")),
        (10, "dat22", ("D10", "定期10年")),
        (11, "dat22", ("D30", "定期30年")),
        (31, "dat22", ("Y", "永久")),
        (5, "three-tier", ("D", "短期")),
        (16, "three-tier", ("C", "长期")),
        (None, "three-tier", ("Y", "永久")),
        (5, "years", ("D5", "5年")),
        (None, "years", ("Y", "永久")),
    ],
)
def test_period_words(years: int | None, scheme: str, expected: tuple[str, str]) -> None:
    from station.retention.policy import period_words

    assert period_words(years, scheme) == expected


def test_archival_period_beside_the_station_decision() -> None:
    from station.retention.policy import (
        CaseFacts,
        Policy,
        RecordingFacts,
        case_archival_period,
        recording_archival_period,
    )

    policy = Policy()
    marked = CaseFacts("A-1", "open", long_term_reason=2)
    plain = CaseFacts("A-2", "closed", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 12)
    p1 = case_archival_period(marked, policy, "dat22")
    assert (p1.code, p1.words, p1.years, p1.rule) == ("Y", "永久", None, "R11-case")
    assert "R11" in p1.station and "复议" in p1.station
    p2 = case_archival_period(plain, policy, "dat22")
    assert (p2.code, p2.words, p2.years, p2.rule) == ("D30", "定期30年", 12, "R10")
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    rec = RecordingFacts("ab" * 32, now, now, cases=(plain, marked))
    assert recording_archival_period(rec, policy, "dat22").words == "永久"  # the longest wins
    routine = recording_archival_period(RecordingFacts("cd" * 32, now, now), policy, "years")
    assert (routine.code, routine.words, routine.rule) == ("M6", "6个月", "R9")
