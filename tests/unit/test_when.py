import contextlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.when import parse_duration, parse_when

BERLIN = ZoneInfo("Europe/Berlin")
NY = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("15m", 900), ("2h", 7200), ("3d", 259200), ("1h30m", 5400), ("1w", 604800)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2", "h", "-2h", "2 hours", "0m", "2x"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_tomorrow_nine_is_local_wall_clock_across_dst() -> None:
    # Europe/Berlin springs forward in the night of 28→29 March 2026
    now = datetime(2026, 3, 28, 20, 0, tzinfo=BERLIN)
    at = parse_when("tomorrow 9:00", now)
    assert (at.year, at.month, at.day, at.hour, at.minute) == (2026, 3, 29, 9, 0)
    assert at.astimezone(UTC) - now.astimezone(UTC) == timedelta(hours=12)  # 13 wall-clock hours, one skipped


def test_a_duration_is_absolute_time_across_dst() -> None:
    now = datetime(2026, 11, 1, 0, 30, tzinfo=NY)  # New York falls back at 02:00 that night
    at = parse_when("3h", now)
    assert at.astimezone(UTC) - now.astimezone(UTC) == timedelta(hours=3)


def test_weekday_bare_time_and_today() -> None:
    now = datetime(2026, 11, 25, 10, 0, tzinfo=BERLIN)  # a Wednesday
    assert parse_when("mon 10:00", now) == datetime(2026, 11, 30, 10, 0, tzinfo=BERLIN)
    assert parse_when("wed 9:00", now) == datetime(2026, 12, 2, 9, 0, tzinfo=BERLIN)
    assert parse_when("9:30", now) == datetime(2026, 11, 26, 9, 30, tzinfo=BERLIN)
    assert parse_when("17:00", now) == datetime(2026, 11, 25, 17, 0, tzinfo=BERLIN)
    assert parse_when("today 17:00", now) == datetime(2026, 11, 25, 17, 0, tzinfo=BERLIN)
    with pytest.raises(ValueError, match="passed"):
        parse_when("today 9:00", now)
    with pytest.raises(ValueError):
        parse_when("someday", now)
    with pytest.raises(ValueError):
        parse_when("tomorrow 25:00", now)


@given(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(BERLIN)),
    st.sampled_from(["2h", "tomorrow 9:00", "mon 10:00", "sun 23:59", "0:00", "15m"]),
)
def test_every_accepted_time_is_in_the_future(now: datetime, text: str) -> None:
    assert parse_when(text, now) > now


@pytest.mark.parametrize("text", ["9999999d", "366d", "53w", "8761h", "1" + "0" * 5000 + "s", "365d1s"])
def test_absurd_durations_are_refused_clearly(text: str) -> None:
    with pytest.raises(ValueError, match="at most 365 days"):
        parse_duration(text)
    with pytest.raises(ValueError, match="at most 365 days"):
        parse_when(text, datetime(2026, 6, 1, 12, 0, tzinfo=BERLIN))


def test_the_maximum_itself_is_accepted() -> None:
    assert parse_duration("365d") == 365 * 86400
    assert parse_duration("52w") == 52 * 604800


_WORDS = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"\A(\d{1,20}[smhdwx]){1,4}\Z"),
    st.builds(
        lambda d, c: f"{d} {c}",
        st.sampled_from(["today", "tomorrow", "mon", "sunday", "x"]),
        st.from_regex(r"\A\d{1,4}(:\d{1,3})?\Z"),
    ),
)


@given(
    _WORDS,
    st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.sampled_from([UTC, BERLIN, NY])
    ),
)
def test_the_parsers_raise_nothing_but_value_error(text: str, now: datetime) -> None:
    for parse in (parse_duration, lambda t: parse_when(t, now)):
        with contextlib.suppress(ValueError):
            parse(text)
