"""Durations and points in time as people type them (pure; ``now`` is always an argument).

Durations: ``30s``, ``15m``, ``2h``, ``3d``, ``1h30m``. Times: a duration from
now, ``tomorrow 9:00``, ``today 17:30``, ``mon 10:00`` (the next Monday), or a
bare ``9:00`` (the next time the clock shows it), in the desk's timezone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^(?:\d+[smhdw])+$")
_PART = re.compile(r"(\d+)([smhdw])")
_CLOCK = re.compile(r"^(\d{1,2})(?::(\d{2}))?$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DAYS = 365
MAX_SECONDS = MAX_DAYS * 86400  # longer is a typo, not a plan (and ``9999999d`` overflowed datetime)
_MAX_DIGITS = 12  # any part longer than this is over the maximum anyway: refused before int() sees it


def parse_duration(text: str) -> float:
    """Seconds in ``2h``, ``15m``, ``1h30m``…; ValueError when it is not a positive duration of at most
    ``MAX_DAYS`` days (the only error it raises, whatever the input)."""
    value = text.strip().lower()
    if not _DURATION.match(value):
        raise ValueError(f"not a duration: {_shown(text)} (use e.g. 30m, 2h, 3d)")
    parts = _PART.findall(value)
    if any(len(n.lstrip("0")) > _MAX_DIGITS for n, _ in parts):
        raise ValueError(f"a duration can be at most {MAX_DAYS} days")
    seconds = sum(int(n) * _UNIT[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    if seconds > MAX_SECONDS:
        raise ValueError(f"a duration can be at most {MAX_DAYS} days")
    return float(seconds)


def _shown(text: str) -> str:
    """The input as quoted in an error: short, so a huge paste does not come back whole."""
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _clock(text: str) -> time:
    m = _CLOCK.match(text)
    if not m:
        raise ValueError(f"not a time of day: {_shown(text)} (use e.g. 9:00)")
    hour, minute = int(m.group(1)), int(m.group(2) or 0)
    if hour > 23 or minute > 59:
        raise ValueError(f"not a time of day: {_shown(text)}")
    return time(hour, minute)


def parse_when(text: str, now: datetime) -> datetime:
    """The moment meant by ``text`` seen from ``now`` (aware; the result is in ``now``'s timezone).

    ValueError (and nothing else) for anything it cannot read or that is
    more than ``MAX_DAYS`` days ahead.

    Wall-clock times are built in local time, so ``tomorrow 9:00`` is 9:00
    on the next calendar day even across a DST change.
    """
    words = text.strip().lower().split()
    if not words:
        raise ValueError("say when, e.g. 2h or tomorrow 9:00")
    if len(words) == 1 and _DURATION.match(words[0]):
        absolute = now.astimezone(UTC) + timedelta(seconds=parse_duration(words[0]))
        return absolute.astimezone(now.tzinfo)
    day, clock_text = (words[0], words[1]) if len(words) == 2 else (None, words[0])
    if len(words) > 2:
        raise ValueError(f"cannot read {_shown(text)} (use e.g. 2h, tomorrow 9:00, mon 10:00)")
    at = _clock(clock_text)
    tz = now.tzinfo
    local_now = now.replace(tzinfo=None)

    def on(day_offset: int) -> datetime:
        date = (local_now + timedelta(days=day_offset)).date()
        return datetime.combine(date, at).replace(tzinfo=tz)

    if day is None:
        candidate = on(0)
        return candidate if candidate > now else on(1)
    if day == "today":
        candidate = on(0)
        if candidate <= now:
            raise ValueError(f"{clock_text} today has passed")
        return candidate
    if day == "tomorrow":
        return on(1)
    key = day[:3]
    if key in WEEKDAYS:
        ahead = (WEEKDAYS.index(key) - local_now.weekday()) % 7 or 7
        return on(ahead)
    raise ValueError(f"cannot read {_shown(text)} (use e.g. 2h, tomorrow 9:00, mon 10:00)")
