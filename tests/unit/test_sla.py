"""The SLA maths: business hours across DST, holidays and split shifts; clocks with pauses."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.sla import (
    BusinessHours,
    Event,
    Kind,
    Mark,
    Policy,
    State,
    Target,
    add_business,
    business_seconds,
    clocks,
    describe,
    summarise,
)

BERLIN = ZoneInfo("Europe/Berlin")
NY = ZoneInfo("America/New_York")
OFFICE = BusinessHours.parse(
    "Europe/Berlin",
    {
        "mon": ["09:00-12:30", "13:30-18:00"],
        "tue": ["09:00-18:00"],
        "wed": ["09:00-18:00"],
        "thu": ["09:00-18:00"],
        "fri": ["09:00-16:00"],
    },
    holidays=["2026-12-25"],
)
H = 3600.0


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN).astimezone(UTC)


def test_split_shift_and_lunch_break() -> None:
    # Monday 2026-11-30, 12:00 → 2 business hours: 30 min before lunch, 1.5 h after it
    assert add_business(berlin(2026, 11, 30, 12, 0), 2 * H, OFFICE) == berlin(2026, 11, 30, 15, 0)


def test_friday_evening_rolls_to_monday() -> None:
    # Friday 2026-11-27 15:00, 2 h: one hour on Friday, one on Monday morning
    assert add_business(berlin(2026, 11, 27, 15, 0), 2 * H, OFFICE) == berlin(2026, 11, 30, 10, 0)


def test_holiday_is_skipped() -> None:
    # Thursday 2026-12-24 17:00 + 2 h: 1 h on the 24th, the 25th is a holiday, Saturday/Sunday closed → Monday
    assert add_business(berlin(2026, 12, 24, 17, 0), 2 * H, OFFICE) == berlin(2026, 12, 28, 10, 0)


def test_windows_follow_the_wall_clock_across_dst() -> None:
    # Berlin leaves summer time on Sunday 2026-10-25; Monday 09:00 is 08:00 UTC, the Friday before 07:00 UTC
    assert add_business(berlin(2026, 10, 23, 15, 0), 2 * H, OFFICE) == datetime(2026, 10, 26, 9, 0, tzinfo=UTC)
    assert berlin(2026, 10, 23, 9, 0) == datetime(2026, 10, 23, 7, 0, tzinfo=UTC)


def test_a_window_containing_the_skipped_hour_is_an_hour_shorter() -> None:
    night = BusinessHours.parse("Europe/Berlin", {d: ["01:00-04:00"] for d in ("sat", "sun")})
    day_start = berlin(2026, 3, 29, 0, 0)
    assert business_seconds(day_start, day_start + timedelta(days=1), night) == 2 * H  # 02:00-03:00 does not exist
    fall = berlin(2026, 10, 25, 0, 0)
    assert business_seconds(fall, fall + timedelta(days=1), night) == 4 * H  # 02:00-03:00 happens twice


def test_new_york_dst_and_24_7() -> None:
    ny = BusinessHours.parse("America/New_York", {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")})
    friday = datetime(2026, 3, 6, 16, 0, tzinfo=NY)  # the US springs forward on 2026-03-08
    assert add_business(friday.astimezone(UTC), 2 * H, ny) == datetime(2026, 3, 9, 10, 0, tzinfo=NY).astimezone(UTC)
    start = datetime(2026, 3, 8, 0, 0, tzinfo=UTC)
    assert add_business(start, 5 * H, None) == start + timedelta(hours=5)


def test_bad_schedules_are_refused() -> None:
    for week in (
        {"mon": ["18:00-09:00"]},
        {"mon": ["09:00-12:00", "11:00-13:00"]},
        {"monday": ["09:00-10:00"]},
        {"mon": ["9-17"]},
    ):
        with pytest.raises(ValueError):
            BusinessHours.parse("Europe/Berlin", week)
    with pytest.raises(Exception):  # noqa: B017
        BusinessHours.parse("Mars/Olympus", {})


def test_empty_schedule_never_reaches_a_target() -> None:
    assert add_business(berlin(2026, 1, 1, 0, 0), 60, BusinessHours.parse("UTC", {})) is None


windows = st.lists(st.tuples(st.integers(0, 22), st.integers(1, 6)), max_size=3)


@st.composite
def schedules(draw: st.DrawFn) -> BusinessHours:
    week = {}
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        spans, cursor = [], draw(st.integers(0, 10))
        for _ in range(draw(st.integers(0, 3))):
            length = draw(st.integers(1, 5))
            if cursor + length > 23:
                break
            spans.append(f"{cursor:02d}:00-{cursor + length:02d}:{draw(st.sampled_from(['00', '30']))}")
            cursor += length + 1 + draw(st.integers(0, 2))
        week[day] = spans
    tz = draw(st.sampled_from(["Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata"]))
    return BusinessHours.parse(tz, week)


instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC))


@settings(max_examples=150, deadline=None)
@given(schedules(), instants, st.floats(min_value=60, max_value=60 * H))
def test_add_business_inverts_business_seconds(hours: BusinessHours, start: datetime, seconds: float) -> None:
    due = add_business(start, seconds, hours)
    if due is None:
        assert all(not w for w in hours.windows)
        return
    assert due >= start
    assert business_seconds(start, due, hours) == pytest.approx(seconds, abs=1e-3)


@settings(max_examples=100, deadline=None)
@given(schedules(), instants, instants, instants)
def test_business_time_is_additive(hours: BusinessHours, a: datetime, b: datetime, c: datetime) -> None:
    a, b, c = sorted((a, b, c))
    assert business_seconds(a, c, hours) == pytest.approx(
        business_seconds(a, b, hours) + business_seconds(b, c, hours), abs=1e-3
    )
    assert business_seconds(a, c, hours) <= (c - a).total_seconds() + 1e-6


# ------------------------------------------------------------------------------------------- clocks

POLICY = Policy(
    "standard",
    (Target(Kind.FIRST_RESPONSE, 2 * H), Target(Kind.NEXT_RESPONSE, 4 * H), Target(Kind.RESOLUTION, 24 * H)),
    warn_before=15 * 60,
)
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def at(minutes: float, mark: Mark) -> Event:
    return Event(T0 + timedelta(minutes=minutes), mark)


def clock(timeline: list[Event], now_minutes: float, kind: Kind):  # type: ignore[no-untyped-def]
    return next(c for c in clocks(POLICY, timeline, T0 + timedelta(minutes=now_minutes)) if c.kind == kind)


def test_first_response_runs_from_the_first_message_and_stops_on_the_reply() -> None:
    tl = [at(0, Mark.CUSTOMER), at(30, Mark.CUSTOMER)]
    c = clock(tl, 60, Kind.FIRST_RESPONSE)
    assert c.running and c.due == T0 + timedelta(hours=2) and c.warn_at == T0 + timedelta(minutes=105)
    c = clock([*tl, at(90, Mark.AGENT)], 200, Kind.FIRST_RESPONSE)
    assert not c.running and c.met and c.used == 90 * 60


def test_next_response_starts_with_the_first_message_after_a_reply() -> None:
    tl = [at(0, Mark.CUSTOMER), at(10, Mark.AGENT), at(100, Mark.CUSTOMER), at(110, Mark.CUSTOMER)]
    c = clock(tl, 120, Kind.NEXT_RESPONSE)
    assert c.running and c.started == T0 + timedelta(minutes=100) and c.due == T0 + timedelta(minutes=100 + 240)


def test_snooze_pauses_and_waiting_on_the_customer_pauses_resolution() -> None:
    tl = [at(0, Mark.CUSTOMER), at(30, Mark.SNOOZE), at(90, Mark.WAKE)]
    c = clock(tl, 100, Kind.FIRST_RESPONSE)
    assert c.used == 40 * 60 and c.due == T0 + timedelta(minutes=100 + 80)
    tl2 = [at(0, Mark.CUSTOMER), at(60, Mark.AGENT)]
    r = clock(tl2, 600, Kind.RESOLUTION)
    assert not r.running and r.used == 60 * 60


def test_resolution_stops_on_resolve_and_resumes_on_reopen() -> None:
    tl = [at(0, Mark.CUSTOMER), at(60, Mark.RESOLVE), at(300, Mark.REOPEN)]
    r = clock(tl, 330, Kind.RESOLUTION)
    assert r.running and r.used == 90 * 60
    tl2 = [at(0, Mark.CUSTOMER), at(60, Mark.RESOLVE), at(300, Mark.CUSTOMER)]
    assert clock(tl2, 330, Kind.RESOLUTION).used == 90 * 60


def test_summary_and_wording() -> None:
    tl = [at(0, Mark.CUSTOMER)]
    s = summarise(POLICY, tl, T0 + timedelta(minutes=10))
    assert s.state is State.ON_TRACK and describe(s, T0 + timedelta(minutes=10)) == "first response due in 1h 50m"
    assert summarise(POLICY, tl, T0 + timedelta(minutes=110)).state is State.WARNING
    late = summarise(POLICY, tl, T0 + timedelta(minutes=125))
    assert (
        late.state is State.BREACHED and describe(late, T0 + timedelta(minutes=125)) == "first response breached 5m ago"
    )
    assert summarise(POLICY, [*tl, at(5, Mark.AGENT)], T0 + timedelta(hours=1)).state is State.PAUSED


marks = st.sampled_from(list(Mark))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3000), marks), max_size=12), st.integers(0, 4000))
def test_clock_invariants(raw: list[tuple[int, Mark]], now_minutes: int) -> None:
    timeline = [at(m, mark) for m, mark in raw]
    now = T0 + timedelta(minutes=now_minutes)
    targets = {t.kind: t.seconds for t in POLICY.targets}
    past = sorted((e for e in timeline if e.at <= now), key=lambda e: e.at)
    for c in clocks(POLICY, timeline, now):
        assert 0 <= c.used <= (now - c.started).total_seconds() + 1e-6
        if c.running:
            # only a customer message, a wake-up or a reopen can leave a clock running
            assert (past and past[-1].mark in (Mark.CUSTOMER, Mark.WAKE, Mark.REOPEN)) or any(
                e.at == past[-1].at and e.mark in (Mark.CUSTOMER, Mark.WAKE, Mark.REOPEN) for e in past
            )
            assert c.due is not None
            if c.used < targets[c.kind]:
                expected = now + timedelta(seconds=targets[c.kind] - c.used)  # 24/7: plain arithmetic
                assert abs((c.due - expected).total_seconds()) < 1e-3
            else:
                assert c.due <= now
