"""Automatic replies (pure): which ``[[auto_replies]]`` entry, if any, answers a customer's message.

At most one automatic reply per customer message, chosen by the situation: outside the business hours of the
conversation's SLA policy an *away* message; otherwise on a new conversation (or after ``after_silence``) a
*welcome*; otherwise an *acknowledgement*. The first entry of that kind whose filters match is the candidate;
when it is within its cooldown for this conversation nothing is sent (no falling through to another kind).
Nothing at all for an opted-out customer, or once an agent has answered (a welcome after a silence longer than
``after_silence`` starts afresh: an answer before the silence does not count).

Times for the customer (``{next_open}``, ``{expected_reply}``) are written in the policy's timezone, the one
its business hours are in: "today at 14:30", "tomorrow at 09:00", "Monday at 09:00", "Monday 5 January at
09:00" beyond a week.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bridge.playbook_config import AutoReply
from bridge.sla import HORIZON_DAYS, BusinessHours, add_business

KINDS = ("away", "welcome", "acknowledgement")
SOON = "as soon as we can"


@dataclass(frozen=True)
class Facts:
    """What the decision needs to know of the conversation, as of the customer's message at ``now``."""

    platform: str
    account: str
    inquiry_type: str | None
    now: float
    new: bool
    """This message opened the conversation."""
    previous_inbound: float | None = None
    """The customer's message before this one."""
    agent_answered: float | None = None
    """When an agent last replied (a relay or a template)."""
    opted_out: bool = False
    last_sent: Mapping[str, float] = field(default_factory=dict)
    """When dmbridge last sent each kind here."""


def matches(rule: AutoReply, facts: Facts) -> bool:
    return (
        (not rule.platforms or facts.platform in {p.lower() for p in rule.platforms})
        and (not rule.accounts or facts.account in rule.accounts)
        and (not rule.types or facts.inquiry_type in {t.lower() for t in rule.types})
    )


def silent(rule: AutoReply, facts: Facts) -> bool:
    """A welcome's ``after_silence`` has passed since the customer's previous message and any answer."""
    silence = rule.seconds("after_silence")
    if silence is None or facts.previous_inbound is None:
        return False
    latest = max(facts.previous_inbound, facts.agent_answered or 0.0)
    return facts.now - latest >= silence


def decide(rules: Sequence[AutoReply], facts: Facts, hours: BusinessHours | None) -> AutoReply | None:
    """The automatic reply to send, or None."""
    if facts.opted_out:
        return None
    wanted = []
    if hours is not None and not is_open(hours, facts.now):
        wanted.append("away")
    wanted += ["welcome", "acknowledgement"]
    for kind in wanted:
        rule = next((r for r in rules if r.kind == kind and matches(r, facts)), None)
        if rule is None:
            continue
        fresh = kind == "welcome" and silent(rule, facts)
        if kind == "welcome" and not facts.new and not fresh:
            continue
        if facts.agent_answered is not None and not fresh:
            return None
        cooldown = rule.seconds("cooldown") or 0.0
        last = facts.last_sent.get(kind)
        if last is not None and facts.now - last < cooldown:
            return None
        return rule
    return None


# ------------------------------------------------------------------------------------------- times for customers


def is_open(hours: BusinessHours, now: float) -> bool:
    at = _utc(now)
    return any(True for _ in hours.spans(at, at + timedelta(seconds=1)))


def next_open(hours: BusinessHours, now: float) -> datetime | None:
    """When business hours next begin after ``now`` (``now`` itself when open); None within years."""
    at = _utc(now)
    for week in range(HORIZON_DAYS // 7):
        start = at + timedelta(days=7 * week)
        for a, _b in hours.spans(start, start + timedelta(days=7)):
            return a
    return None


def expected_reply(hours: BusinessHours | None, first_response: float | None, now: float) -> datetime | None:
    """When the first-response target falls due if the clock starts now."""
    if first_response is None:
        return None
    return add_business(_utc(now), first_response, hours)


def when_text(at: datetime | None, now: float, timezone: str) -> str:
    """``today at 14:30``, ``tomorrow at 09:00``, ``Monday at 09:00``, ``Monday 5 January at 09:00``."""
    if at is None:
        return SOON
    tz = ZoneInfo(timezone)
    local, today = at.astimezone(tz), _utc(now).astimezone(tz).date()
    days = (local.date() - today).days
    clock = f"{local:%H:%M}"
    if days <= 0:
        return f"today at {clock}"
    if days == 1:
        return f"tomorrow at {clock}"
    if days < 7:
        return f"{local:%A} at {clock}"
    return f"{local:%A} {local.day} {local:%B} at {clock}"


def values(hours: BusinessHours | None, first_response: float | None, now: float, timezone: str) -> dict[str, str]:
    """The template variables of automatic replies."""
    zone = hours.timezone if hours is not None else timezone
    opening = next_open(hours, now) if hours is not None else None
    return {
        "next_open": when_text(opening, now, zone),
        "expected_reply": when_text(expected_reply(hours, first_response, now), now, zone),
    }


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
