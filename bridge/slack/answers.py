"""Pure builders of the desk's text answers to ``/dm``: lists, timelines, templates, SLA policies.

Each answer is a text-only message, so each fits one message's ``text`` (cut visibly past that).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from bridge.domain import Platform
from bridge.sla import Policy
from bridge.store.tables import Audit, Conversation, InboundEvent
from bridge.text import clip, clip_escaped, mrkdwn_safe_cut, slack_escape

Link = Callable[[str, str], str]

TEXT_LIMIT = 40_000  # a message's ``text``
DETAIL_CHARS = 2000  # one audit entry's detail in /dm show


def age(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m"
    if minutes < 48 * 60:
        return f"{minutes // 60}h"
    return f"{minutes // 1440}d"


def conversation_line(conv: Conversation, link: Link, now: float) -> str:
    assert conv.thread_ts is not None
    who = f"<@{conv.assignee}>" if conv.assignee else "_unassigned_"
    waiting = (
        "waiting on us" if (conv.last_inbound_at or 0) >= (conv.last_outbound_at or 0) else "waiting on the customer"
    )
    flags = f" · :rotating_light: {clip_escaped(conv.team, 60)} ({conv.priority})" if conv.team else ""
    snoozed = " · :zzz: snoozed" if conv.status == "snoozed" else ""
    return (
        f"<{link(conv.channel, conv.thread_ts)}|#{conv.id}> · {Platform(conv.platform).label} · "
        f"{clip_escaped(conv.customer_name, 80)} · {who} · {age(now - conv.created_at)} · {waiting}"
        f"{flags}{snoozed}"
    )


def listing_text(scope: str, convs: list[Conversation], link: Link, now: float) -> str:
    title = {
        "mine": "Your open conversations",
        "unassigned": "Unassigned conversations",
        "escalated": "Escalated conversations",
        "all": "Open conversations",
    }[scope]
    if not convs:
        return f"*{title}*: none."
    lines = fit_lines(
        [conversation_line(c, link, now) for c in convs],
        TEXT_LIMIT - 200,
        lambda n: f"_and {n} more; narrow the list (`/dm list mine`, `unassigned`, `escalated`)_",
    )
    return f"*{title}* ({len(convs)}):\n" + "\n".join(lines)


def fit_lines(lines: list[str], budget: int, more: Callable[[int], str] | None = None) -> list[str]:
    """The first lines that fit ``budget`` characters (newlines counted), then ``more(left out)``."""
    kept: list[str] = []
    used = 0
    for i, line in enumerate(lines):
        if used + len(line) + 1 > budget:
            return [*kept, more(len(lines) - i)] if more else kept
        kept.append(line)
        used += len(line) + 1
    return kept


def timeline_text(
    conv: Conversation, inbound: list[InboundEvent], actions: list[Audit], tz: ZoneInfo, link: Link, limit: int = 40
) -> str:
    rows: list[tuple[float, str]] = []
    for ev in inbound:
        who = "brand (outside Slack)" if ev.from_brand else clip_escaped(conv.customer_name, 80)
        rows.append((ev.sent_at, f"{who}: {_clip(slack_escape(ev.text))}"))
    for a in actions:
        actor = f"<@{a.actor}>" if a.actor.startswith(("U", "W")) else a.actor
        if a.action in ("relay", "template"):
            rows.append((a.at, f"{actor} → customer: {_clip(slack_escape(a.detail))}"))
        else:
            detail = f" {clip_escaped(a.detail, DETAIL_CHARS)}" if a.detail else ""
            rows.append((a.at, f"_{actor} {a.action}{detail}_"))
    rows.sort(key=lambda r: r[0])
    shown = rows[-limit:]
    while len(shown) > 1 and sum(len(r[1]) + 20 for r in shown) > TEXT_LIMIT - 2000:
        shown = shown[1:]  # the newest entries that fit one message
    limit = len(shown)
    head = (
        f"*#{conv.id}* · {Platform(conv.platform).label} · {clip_escaped(conv.customer_name, 1000)} · "
        f"{conv.status}" + (f" · <{link(conv.channel, conv.thread_ts)}|open the thread>" if conv.thread_ts else "")
    )
    more = f"\n_({len(rows) - limit} earlier entries not shown)_" if len(rows) > limit else ""
    lines = [f"`{datetime.fromtimestamp(t, tz):%d %b %H:%M}` {text}" for t, text in shown]
    return head + more + "\n" + ("\n".join(lines) if lines else "_nothing yet_")


def _clip(text: str, n: int = 300) -> str:
    """Escaped text on one line, cut visibly (never inside an entity or a grapheme)."""
    return clip(" ".join(text.split()), n, can_cut=mrkdwn_safe_cut)


def template_list_text(rows: list[tuple[str, str]]) -> str:
    if not rows:
        return "No templates yet. Add one: `/dm template add thanks Thanks {first_name}! — {agent_first_name}`"
    lines = fit_lines(
        [f"• `{name}` — {_clip(slack_escape(text), 120)}" for name, text in rows],
        TEXT_LIMIT - 200,
        lambda n: f"_and {n} more: `/dm template show NAME`_",
    )
    return "*Templates:*\n" + "\n".join(lines)


def template_show_text(name: str, text: str) -> str:
    """``/dm template show NAME``: the text as stored, within one message (cut visibly past that)."""
    return f"*{name}*:\n```{clip_escaped(text, TEXT_LIMIT - 200)}```"


def policies_text(policies: list[Policy]) -> str:
    if not policies:
        return "No SLA policies are set. Add `[[sla]]` tables to dmbridge.toml (see the README)."
    lines = ["*SLA policies* (the first that applies to a conversation is its policy):"]
    for p in policies:
        scope = (
            ", ".join(
                filter(
                    None,
                    [
                        "platforms " + "/".join(sorted(p.platforms)) if p.platforms else "",
                        "accounts " + "/".join(sorted(p.accounts)) if p.accounts else "",
                        "priority " + "/".join(sorted(p.priorities)) if p.priorities else "",
                    ],
                )
            )
            or "every conversation"
        )
        targets = ", ".join(f"{t.kind.value.replace('_', ' ')} {age(t.seconds)}" for t in p.targets)
        warn = (
            f"warn {age(p.warn_before)} before"
            if p.warn_before
            else f"warn when {p.warn_fraction:.0%} is left"
            if p.warn_fraction
            else "no warning"
        )
        hours = f"business hours ({p.hours.timezone})" if p.hours else "24/7"
        lines.append(f"• *{p.name}* — {scope}: {targets}; {warn}; {hours}; on breach: {', '.join(p.on_breach)}")
    return "\n".join(fit_lines(lines, TEXT_LIMIT - 200, lambda n: f"_and {n} more (see dmbridge.toml)_"))
