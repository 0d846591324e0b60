"""SLA maths, pure: business hours, clocks with pauses, due and warning times. ``now`` is always an argument.

Business time is counted in the policy's local wall-clock time: a window
``09:00-18:00`` is 09:00 to 18:00 on the clock on the wall that day, so a DST
change neither moves nor stretches it (a window that contains the skipped or
repeated hour is simply one hour shorter or longer in real time).

A conversation's timeline (customer messages, agent replies delivered,
snoozes, resolves, reopens) gives each clock its running intervals:

- first response: from the first customer message to the first agent reply;
- next response: from the first customer message after an agent reply to the
  next agent reply;
- resolution: from the first customer message until resolved, resuming on
  reopen, paused while waiting on the customer;

and every clock is paused while the conversation is snoozed.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
HORIZON_DAYS = 3 * 366  # a target no schedule reaches within this is "never"


@dataclass(frozen=True)
class BusinessHours:
    """Weekly windows in local time (several a day for split shifts), and whole-day holidays."""

    timezone: str
    windows: tuple[tuple[tuple[time, time], ...], ...]  # 7 entries, Monday first
    holidays: frozenset[date] = frozenset()

    @classmethod
    def parse(cls, timezone: str, week: dict[str, list[str]], holidays: Iterable[str] = ()) -> BusinessHours:
        ZoneInfo(timezone)  # raises for an unknown zone
        unknown = set(week) - set(WEEKDAYS)
        if unknown:
            raise ValueError(f"unknown weekday(s) {sorted(unknown)}; use {', '.join(WEEKDAYS)}")
        days = []
        for day in WEEKDAYS:
            spans = sorted(_window(w) for w in week.get(day, []))
            for (_, end), (start, _) in itertools.pairwise(spans):
                if start < end:
                    raise ValueError(f"{day}: business-hour windows overlap")
            days.append(tuple(spans))
        return cls(timezone, tuple(days), frozenset(date.fromisoformat(h) for h in holidays))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def spans(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Business intervals overlapping ``[start, end)``, in UTC, in order."""
        tz = self.tz
        day = start.astimezone(tz).date() - timedelta(days=1)
        last = end.astimezone(tz).date()
        while day <= last:
            if day not in self.holidays:
                for open_at, close_at in self.windows[day.weekday()]:
                    a = _local(day, open_at, tz)
                    b = (
                        _local(day, close_at, tz)
                        if close_at != time(0, 0)
                        else _local(day + timedelta(days=1), time(0, 0), tz)
                    )
                    lo, hi = max(a, start), min(b, end)
                    if lo < hi:
                        yield lo, hi
            day += timedelta(days=1)


def _window(text: str) -> tuple[time, time]:
    m = _WINDOW.match(text.strip())
    if not m:
        raise ValueError(f"not a window: {text!r} (use e.g. 09:00-17:30)")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h2 == 24 and m2 == 0:
        h2 = 0
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError(f"not a window: {text!r}")
    start, end = time(h1, m1), time(h2, m2)
    if end != time(0, 0) and end <= start:
        raise ValueError(f"window {text!r} ends before it starts")
    return start, end


def _local(day: date, at: time, tz: ZoneInfo) -> datetime:
    """Wall-clock ``day at`` in ``tz`` as UTC; a time skipped by DST moves forward to when the clock resumes."""
    naive = datetime.combine(day, at)
    for minute in range(0, 181):  # DST gaps are at most a few hours; usually one
        candidate = naive + timedelta(minutes=minute)
        aware = candidate.replace(tzinfo=tz)
        if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == candidate:
            return aware.astimezone(UTC)
    return naive.replace(tzinfo=tz).astimezone(UTC)


def business_seconds(start: datetime, end: datetime, hours: BusinessHours | None) -> float:
    """Business time between two instants (all of it when ``hours`` is None)."""
    if end <= start:
        return 0.0
    if hours is None:
        return (end - start).total_seconds()
    return sum((b - a).total_seconds() for a, b in hours.spans(start, end))


def add_business(start: datetime, seconds: float, hours: BusinessHours | None) -> datetime | None:
    """The instant at which ``seconds`` of business time have passed since ``start`` (None: not within years)."""
    if hours is None:
        return start + timedelta(seconds=seconds)
    left = seconds
    cursor = start
    for _ in range(HORIZON_DAYS // 7):
        week_end = cursor + timedelta(days=7)
        for a, b in hours.spans(cursor, week_end):
            length = (b - a).total_seconds()
            if length >= left:
                return a + timedelta(seconds=left)
            left -= length
        cursor = week_end
    return None


# ---------------------------------------------------------------------------------------------- clocks


class Kind(StrEnum):
    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


class Mark(StrEnum):
    CUSTOMER = "customer"  # a customer message arrived
    AGENT = "agent"  # an agent reply was delivered
    SNOOZE = "snooze"
    WAKE = "wake"  # snooze over or cancelled
    RESOLVE = "resolve"
    REOPEN = "reopen"


@dataclass(frozen=True)
class Event:
    at: datetime
    mark: Mark


@dataclass(frozen=True)
class Target:
    kind: Kind
    seconds: float


@dataclass(frozen=True)
class Policy:
    name: str
    targets: tuple[Target, ...]
    warn_before: float | None = None  # seconds of business time before the due time
    warn_fraction: float | None = None  # or a share of the target (0.25 = when 25 % is left)
    hours: BusinessHours | None = None
    on_breach: tuple[str, ...] = ("remind",)
    platforms: frozenset[str] = frozenset()
    accounts: frozenset[str] = frozenset()
    priorities: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()

    def applies(self, platform: str, account: str, priority: str, inquiry_type: str | None = None) -> bool:
        return (
            (not self.platforms or platform in self.platforms)
            and (not self.accounts or account in self.accounts)
            and (not self.priorities or priority in self.priorities)
            and (not self.types or inquiry_type in self.types)
        )

    def warn_lead(self, target: float) -> float:
        lead = 0.0
        if self.warn_before is not None:
            lead = max(lead, self.warn_before)
        if self.warn_fraction is not None:
            lead = max(lead, target * self.warn_fraction)
        return min(lead, target)


@dataclass(frozen=True)
class Clock:
    """One SLA clock of a conversation as of ``now``."""

    kind: Kind
    started: datetime  # start of the measured span (first running instant)
    used: float  # business seconds already counted
    running: bool
    due: datetime | None  # when the target is reached if it keeps running (None when stopped or never)
    warn_at: datetime | None
    met: bool = False  # the span ended (reply delivered / resolved) within the target


@dataclass
class _Span:
    kind: Kind
    intervals: list[tuple[datetime, datetime | None]] = field(default_factory=list)
    closed: bool = False

    def run(self, at: datetime) -> None:
        if not self.intervals or self.intervals[-1][1] is not None:
            self.intervals.append((at, None))

    def pause(self, at: datetime) -> None:
        if self.intervals and self.intervals[-1][1] is None:
            self.intervals[-1] = (self.intervals[-1][0], at)


def spans(timeline: list[Event]) -> list[_Span]:
    """The measured spans of every clock, from a timeline in time order."""
    out: list[_Span] = []
    first: _Span | None = None
    nxt: _Span | None = None
    resolution: _Span | None = None
    snoozed = resolved = False
    waiting_on_us = False
    replied_once = False

    def running_ok() -> bool:
        return not snoozed and not resolved

    for ev in sorted(timeline, key=lambda e: e.at):
        match ev.mark:
            case Mark.CUSTOMER:
                if first is None:
                    first = _Span(Kind.FIRST_RESPONSE)
                    out.append(first)
                    resolution = _Span(Kind.RESOLUTION)
                    out.append(resolution)
                elif replied_once and not waiting_on_us:
                    nxt = _Span(Kind.NEXT_RESPONSE)
                    out.append(nxt)
                waiting_on_us = True
                if resolved:
                    resolved = False  # a customer message reopens
                for s in (first, nxt, resolution):
                    if s is not None and not s.closed and running_ok():
                        s.run(ev.at)
            case Mark.AGENT:
                waiting_on_us = False
                replied_once = True
                for s in (first, nxt):
                    if s is not None and not s.closed:
                        s.pause(ev.at)
                        s.closed = True
                if resolution is not None:
                    resolution.pause(ev.at)  # waiting on the customer
            case Mark.SNOOZE:
                snoozed = True
                for s in (first, nxt, resolution):
                    if s is not None:
                        s.pause(ev.at)
            case Mark.WAKE | Mark.REOPEN:
                snoozed = False
                if ev.mark is Mark.REOPEN:
                    resolved = False
                for s in (first, nxt):
                    if s is not None and not s.closed and waiting_on_us:
                        s.run(ev.at)
                if resolution is not None and (waiting_on_us or ev.mark is Mark.REOPEN):
                    resolution.run(ev.at)
            case Mark.RESOLVE:
                resolved = True
                for s in (first, nxt, resolution):
                    if s is not None:
                        s.pause(ev.at)
    return out


def clocks(policy: Policy, timeline: list[Event], now: datetime) -> list[Clock]:
    """Each clock the policy sets a target for, as of ``now`` (its latest span per kind)."""
    latest: dict[Kind, _Span] = {}
    for span in spans([e for e in timeline if e.at <= now]):
        latest[span.kind] = span
    result = []
    for target in policy.targets:
        measured = latest.get(target.kind)
        if measured is None or not measured.intervals:
            continue
        intervals = measured.intervals
        used = sum(business_seconds(a, b if b is not None else now, policy.hours) for a, b in intervals)
        running = intervals[-1][1] is None
        due = warn = None
        if running:
            due = _reach(intervals, target.seconds, policy.hours)
            lead = policy.warn_lead(target.seconds)
            warn = _reach(intervals, target.seconds - lead, policy.hours) if lead else None
        result.append(
            Clock(
                kind=target.kind,
                started=intervals[0][0],
                used=used,
                running=running,
                due=due,
                warn_at=warn,
                met=measured.closed and used <= target.seconds,
            )
        )
    return result


def _reach(
    intervals: list[tuple[datetime, datetime | None]], seconds: float, hours: BusinessHours | None
) -> datetime | None:
    """When the intervals' business time reaches ``seconds`` (the last, still running, continues for ever)."""
    left = seconds
    for start, end in intervals:
        if end is None:
            return add_business(start, left, hours)
        length = business_seconds(start, end, hours)
        if length >= left:
            return add_business(start, left, hours)
        left -= length
    return None


class State(StrEnum):
    NONE = "none"
    ON_TRACK = "on_track"
    WARNING = "warning"
    BREACHED = "breached"
    PAUSED = "paused"


@dataclass(frozen=True)
class Summary:
    """What the card shows: the most urgent running clock."""

    state: State
    kind: Kind | None = None
    due: datetime | None = None


def summarise(policy: Policy, timeline: list[Event], now: datetime) -> Summary:
    running = [c for c in clocks(policy, timeline, now) if c.running and c.due is not None]
    if not running:
        return Summary(State.NONE if not timeline else State.PAUSED)
    worst = min(running, key=lambda c: c.due or now)
    assert worst.due is not None
    if worst.due <= now:
        return Summary(State.BREACHED, worst.kind, worst.due)
    if worst.warn_at is not None and worst.warn_at <= now:
        return Summary(State.WARNING, worst.kind, worst.due)
    return Summary(State.ON_TRACK, worst.kind, worst.due)


def describe(summary: Summary, now: datetime) -> str:
    """``on track (first response due in 1h 5m)``, ``breached 5m ago`` …"""
    if summary.state in (State.NONE, State.PAUSED) or summary.due is None or summary.kind is None:
        return "paused" if summary.state is State.PAUSED else "no SLA running"
    what = summary.kind.value.replace("_", " ")
    gap = abs((summary.due - now).total_seconds())
    if summary.state is State.BREACHED:
        return f"{what} breached {_span(gap)} ago"
    return f"{what} due in {_span(gap)}"


def _span(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{hours // 24}d {hours % 24}h"
