"""Response-time reports (pure): volumes, response and resolution times, SLA attainment, busiest hours."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from bridge.sla import Event, Kind, Mark, Policy, business_seconds, spans


@dataclass(frozen=True)
class ConversationFacts:
    """One conversation as the report needs it: who had it, which policy, and its timeline."""

    number: int
    assignee: str | None
    policy: Policy | None
    timeline: list[Event]


@dataclass
class Report:
    since: datetime
    until: datetime
    messages_in: int = 0
    messages_out: int = 0
    conversations: int = 0
    first_response: list[float] = field(default_factory=list)
    next_response: list[float] = field(default_factory=list)
    resolution: list[float] = field(default_factory=list)
    attainment: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))
    by_agent: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))
    hours: Counter[int] = field(default_factory=Counter)


def build_report(facts: list[ConversationFacts], since: datetime, until: datetime, tz: ZoneInfo) -> Report:
    """Everything that happened in ``[since, until)``: a span counts where it ended (or, open, if it started)."""
    report = Report(since, until)

    def inside(t: datetime) -> bool:
        return since <= t < until

    for conv in facts:
        events = sorted(conv.timeline, key=lambda e: e.at)
        active = False
        for ev in events:
            if not inside(ev.at):
                continue
            active = True
            if ev.mark is Mark.CUSTOMER:
                report.messages_in += 1
                report.hours[ev.at.astimezone(tz).hour] += 1
            elif ev.mark is Mark.AGENT:
                report.messages_out += 1
        report.conversations += active
        for span in spans(events):
            if not span.intervals:
                continue
            end = span.intervals[-1][1]
            if end is None or not inside(end):
                continue
            elapsed = sum(((b or until) - a).total_seconds() for a, b in span.intervals)
            if not span.closed or span.kind is Kind.RESOLUTION:
                continue
            (report.first_response if span.kind is Kind.FIRST_RESPONSE else report.next_response).append(elapsed)
            target = _target(conv.policy, span.kind)
            if target is None or conv.policy is None:
                continue
            used = sum(business_seconds(a, b or until, conv.policy.hours) for a, b in span.intervals)
            report.attainment[conv.policy.name].append(used <= target)
            report.by_agent[conv.assignee or "unassigned"].append(used <= target)
        _resolution(report, conv, events, inside, until)
    return report


def _resolution(
    report: Report, conv: ConversationFacts, events: list[Event], inside: Callable[[datetime], bool], until: datetime
) -> None:
    """Time to resolution: from the first customer message to the last resolve in the period."""
    first = next((e.at for e in events if e.mark is Mark.CUSTOMER), None)
    resolved = [e.at for e in events if e.mark is Mark.RESOLVE and inside(e.at)]
    if first is None or not resolved:
        return
    report.resolution.append((resolved[-1] - first).total_seconds())
    target = _target(conv.policy, Kind.RESOLUTION)
    measured = [s for s in spans([e for e in events if e.at <= resolved[-1]]) if s.kind is Kind.RESOLUTION]
    if target is None or conv.policy is None or not measured:
        return
    used = sum(business_seconds(a, b or until, conv.policy.hours) for a, b in measured[-1].intervals)
    report.attainment[conv.policy.name].append(used <= target)
    report.by_agent[conv.assignee or "unassigned"].append(used <= target)


def _target(policy: Policy | None, kind: Kind) -> float | None:
    if policy is None:
        return None
    return next((t.seconds for t in policy.targets if t.kind is kind), None)


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes}m"
    if minutes < 48 * 60:
        return f"{minutes // 60}h {minutes % 60:02d}m"
    return f"{minutes / 1440:.1f}d"


def _stats(values: list[float], p90: bool = False) -> str:
    if not values:
        return "—"
    text = f"median {_duration(statistics.median(values))}"
    if p90:
        ordered = sorted(values)
        text += f", p90 {_duration(ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))])}"
    return text + f" ({len(values)})"


def _share(results: list[bool]) -> str:
    return f"{sum(results) / len(results):.0%} of {len(results)}" if results else "—"


def render(report: Report, title: str) -> str:
    """The report as Slack mrkdwn (also fine as plain text in a terminal)."""
    lines = [
        f"*{title}* ({report.since:%d %b %H:%M} – {report.until:%d %b %H:%M} UTC)",
        f"Messages in: *{report.messages_in}* · out: *{report.messages_out}* · "
        f"conversations with activity: *{report.conversations}*",
        f"First response: {_stats(report.first_response, p90=True)}",
        f"Next response: {_stats(report.next_response)}",
        f"Resolution: {_stats(report.resolution)}",
    ]
    if report.attainment:
        lines.append(
            "SLA met, per policy: "
            + "; ".join(f"{name} {_share(results)}" for name, results in sorted(report.attainment.items()))
        )
        lines.append(
            "SLA met, per agent: "
            + "; ".join(f"{_who(agent)} {_share(results)}" for agent, results in sorted(report.by_agent.items()))
        )
    if report.hours:
        busiest = ", ".join(
            f"{h:02d}:00 ({n})" for h, n in sorted(report.hours.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        )
        lines.append(f"Busiest hours: {busiest}")
    return "\n".join(lines)


def _who(agent: str) -> str:
    return f"<@{agent}>" if agent.startswith(("U", "W")) else agent
