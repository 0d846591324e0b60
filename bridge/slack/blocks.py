"""Pure Block Kit builders. Every customer-supplied string passes through ``slack_escape``.

Every builder is safe for any input (see docs/design.md, "Block Kit within Slack's limits"): long text
is split over several sections or messages, and what cannot be split (a name on the card, a context
element) is cut visibly with "…" while the whole text stays in the thread or in ``/dm show N``. Links
and handles are re-checked here even though the connectors check them at the edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from bridge.domain import GENERIC_HANDLE, Platform, safe_https_url
from bridge.slack.type_blocks import type_actions, type_fact
from bridge.text import ELLIPSIS, clip, clip_escaped, mrkdwn_safe_cut, slack_escape, slack_escaped_len, split_text

if TYPE_CHECKING:
    from bridge.store.tables import Conversation

SECTION_LIMIT = 3000  # characters of one section's text
BLOCKS_PER_MESSAGE = 4  # stays under Slack's aggregate limit (~13k chars of block text per message)
PREVIEW_CHARS = 150
NAME_CHARS = 150  # a customer's name on the card, in notices and lists
REASON_CHARS = 300  # an escalation reason in the card's context element (the whole one is in the thread)
USERNAME_CHARS = 80  # chat.postMessage ``username``
NOTICE_CHARS = BLOCKS_PER_MESSAGE * (SECTION_LIMIT - 10)  # one notice message's text (over its sections)

Block = dict[str, Any]


@dataclass(frozen=True)
class SlackMessage:
    """One chat.postMessage: the notification fallback ``text`` and the blocks that carry the content."""

    text: str
    blocks: list[Block]


@dataclass(frozen=True)
class CardView:
    """What the header card shows about a conversation."""

    number: int
    platform_label: str
    customer_name: str
    handle: str | None
    profile_url: str | None
    status: str
    assignee: str | None
    priority: str = "normal"
    team: str | None = None
    escalation_reason: str | None = None
    snoozed_until: str | None = None  # already formatted for people
    reopened: bool = False
    sla: str | None = None  # already formatted mrkdwn
    inquiry_type: str | None = None
    suggested_type: str | None = None
    types: tuple[tuple[str, str], ...] = ()  # [[types]] (name, emoji): the card's type select
    csat: int | None = None  # the customer's latest satisfaction score, 1-5
    opted_out: bool = False  # the customer opted out of automatic messages
    lead: str | None = None  # "qualified · 1,200.00 EUR" (bridge.leads.lead_label); None: not a lead


STATUS_LABEL = {
    "open": ":large_green_circle: open",
    "snoozed": ":zzz: snoozed",
    "resolved": ":white_check_mark: resolved",
}
PRIORITY_LABEL = {
    "low": "low",
    "normal": "normal",
    "high": ":small_orange_diamond: high",
    "urgent": ":red_circle: urgent",
}


def header_card(card: CardView) -> SlackMessage:
    name = clip_escaped(card.customer_name, NAME_CHARS)
    who = f"*{name}*"
    if card.handle:
        handle = clip_escaped("@" + card.handle, 65)
        url = safe_https_url(card.profile_url)
        linkable = url is not None and GENERIC_HANDLE.fullmatch(card.handle) is not None
        who += f" (<{url}|{handle}>)" if linkable else f" ({handle})"
    assignee = f"<@{card.assignee}>" if card.assignee else "nobody yet"
    status = STATUS_LABEL.get(card.status, card.status)
    if card.status == "snoozed" and card.snoozed_until:
        status += f" until {card.snoozed_until}"
    priority = PRIORITY_LABEL.get(card.priority, card.priority)
    facts = [f"Status: *{status}*", f"Assignee: {assignee}", f"Priority: {priority}"]
    if card.team:
        reason = ""
        if card.escalation_reason:
            reason = f" — {clip_escaped(card.escalation_reason, REASON_CHARS)}"
            if reason.endswith(ELLIPSIS):
                reason += f" (the whole reason: in the thread and `/dm show {card.number}`)"
        facts.append(f"Escalated to *{clip_escaped(card.team, 100)}*{reason}")
    if card.reopened:
        facts.append("Reopened: the customer wrote again")
    if card.sla:
        facts.append(clip(card.sla, SECTION_LIMIT, can_cut=mrkdwn_safe_cut))
    kind = type_fact(card.inquiry_type, card.suggested_type, card.types)
    if kind:
        facts.append(kind)
    if card.csat is not None:
        facts.append(f"CSAT: ⭐ {card.csat}/5")
    if card.opted_out:
        facts.append(":no_bell: opted out of automatic messages")
    if card.lead:
        facts.append(f"Lead: *{card.lead}*")
    more = [
        ("Unassign", "unassign"),
        ("De-escalate", "deescalate"),
        ("Snooze 2 hours", "snooze:2h"),
        ("Snooze until tomorrow 9:00", "snooze:tomorrow 9:00"),
    ]
    actions: list[Block] = [
        _button("Assign to me", "conv_claim", "primary" if not card.assignee else None),
        {
            "type": "users_select",
            "action_id": "conv_assign",
            "placeholder": {"type": "plain_text", "text": "Assign to…"},
            **({"initial_user": card.assignee} if card.assignee else {}),
        },
        _button("Reply with template", "conv_template"),
        _button("Escalate", "conv_escalate"),
        _button("Reopen", "conv_reopen") if card.status == "resolved" else _button("Resolve", "conv_resolve"),
        *([] if card.lead else [_button("Mark as lead", "conv_lead")]),
        {
            "type": "overflow",
            "action_id": "conv_more",
            "options": [{"text": {"type": "plain_text", "text": label}, "value": value} for label, value in more],
        },
    ]
    blocks: list[Block] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*#{card.number}* · {card.platform_label} · {who}"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f} for f in facts]},
        {"type": "actions", "block_id": "conv_actions", "elements": actions},
        *[b for b in [type_actions(card.inquiry_type, card.suggested_type, card.types)] if b],
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "Reply in this thread to answer the customer. Start with `//` or `note:` for an internal "
                    "note; mention the bot for commands (`@dmbridge help`).",
                }
            ],
        },
    ]
    text = f"#{card.number} {card.platform_label} conversation with {name} ({card.status})"
    return SlackMessage(text=text, blocks=blocks)


def slack_date(ts: float, fallback: str) -> str:
    """A moment each reader sees in their own timezone (``fallback`` where Slack cannot format it)."""
    return f"<!date^{int(ts)}^{{date_short_pretty}} at {{time}}|{fallback}>"


def _button(text: str, action_id: str, style: str | None = None) -> Block:
    button: Block = {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": text}}
    if style:
        button["style"] = style
    return button


# how the customer last wrote, where a platform has two ways (replies go back the same way)
VIA_LABEL = {"xchat": " (X Chat :lock:)", "dm": " (legacy DM)"}


def customer_text(text: str, label: str | None = None) -> list[SlackMessage]:
    """Customer text as one or more messages, nothing dropped: ≤3,000 escaped chars a section."""
    # a piece of only whitespace would be an empty section, which Slack refuses: only whitespace is left out
    pieces = [slack_escape(p) for p in split_text(text, SECTION_LIMIT, slack_escaped_len) if p.strip()]
    sections: list[Block] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": piece, "verbatim": True}} for piece in pieces
    ] or [{"type": "section", "text": {"type": "mrkdwn", "text": "_(no text)_", "verbatim": True}}]
    groups = [sections[i : i + BLOCKS_PER_MESSAGE] for i in range(0, len(sections), BLOCKS_PER_MESSAGE)]
    messages = []
    for i, group in enumerate(groups):
        n = i + 1
        blocks: list[Block] = list(group)
        if label:
            blocks.append(
                {
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": clip(label, SECTION_LIMIT, can_cut=mrkdwn_safe_cut)}],
                }
            )
        if len(groups) > 1:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"part {n} of {len(groups)}"}]})
        first = str(pieces[i * BLOCKS_PER_MESSAGE]) if pieces else ""
        preview = clip(first, PREVIEW_CHARS, can_cut=mrkdwn_safe_cut)
        messages.append(SlackMessage(text=preview, blocks=blocks))
    return messages


def customer_username(name: str, platform_label: str) -> str:
    """The ``username`` of a mirrored post: the customer's name marked with the platform, so a customer
    called like an agent still reads as the customer ("Maria López (X)")."""
    suffix = f" ({platform_label})"
    return clip(" ".join(name.split()) or "customer", USERNAME_CHARS - len(suffix)) + suffix


def _split_mrkdwn(text: str, limit: int) -> list[str]:
    """mrkdwn we wrote, in pieces of at most ``limit`` characters, never cutting an entity, a link or a
    mention; a quote ("> ") cut mid-line goes on quoted in the next piece."""
    pieces: list[str] = []
    for piece in split_text(text, limit - 2, can_cut=mrkdwn_safe_cut):
        if pieces and not pieces[-1].endswith("\n") and pieces[-1].rsplit("\n", 1)[-1].startswith("> "):
            piece = "> " + piece
        pieces.append(piece)
    return [p for p in pieces if p.strip()] or ["_(no text)_"]


def notice_parts(text: str) -> list[str]:
    """A long notice as several whole notices, each of which :func:`notice` shows without cutting."""
    return [text] if len(text) <= NOTICE_CHARS else _split_mrkdwn(text, NOTICE_CHARS)


def notice(text: str) -> SlackMessage:
    """A message from the bot itself (text we wrote, customer parts already escaped), over as many
    sections as it needs. Past one message's worth (:data:`NOTICE_CHARS`, under Slack's aggregate limit)
    it is cut visibly: callers split long ones with :func:`notice_parts` first."""
    if len(text) > NOTICE_CHARS:
        text = clip(text, NOTICE_CHARS - 20, can_cut=mrkdwn_safe_cut) + " _(cut: too long)_"
    sections = _split_mrkdwn(text, SECTION_LIMIT) if len(text) > SECTION_LIMIT else [text]
    sections = [s for s in sections if s.strip()] or ["_(no text)_"]
    blocks: list[Block] = [{"type": "section", "text": {"type": "mrkdwn", "text": s}} for s in sections]
    return SlackMessage(text=clip(text, SECTION_LIMIT, can_cut=mrkdwn_safe_cut), blocks=blocks)


SLA_LABEL = {
    "on_track": ":large_green_circle: on track",
    "warning": ":large_yellow_circle: due soon",
    "breached": ":red_circle: breached",
    "paused": ":double_vertical_bar: paused",
}


def card_view(
    conv: Conversation,
    tz: tzinfo,
    reopened: bool = False,
    types: Sequence[tuple[str, str]] = (),
    csat: int | None = None,
    lead: str | None = None,
) -> CardView:
    """What the header card shows of ``conv`` (times in the desk's timezone, SLA due times in each reader's)."""
    assert conv.id is not None
    until = None
    if conv.snoozed_until:
        until = datetime.fromtimestamp(conv.snoozed_until, tz).strftime("%a %d %b %H:%M")
    sla_line = None
    if conv.sla_state and conv.sla_policy:
        when = ""
        if conv.sla_due_at and conv.sla_kind:
            fallback = datetime.fromtimestamp(conv.sla_due_at, tz).strftime("%a %d %b %H:%M")
            verb = "was due" if conv.sla_state == "breached" else "due"
            when = f" · {conv.sla_kind.replace('_', ' ')} {verb} {slack_date(conv.sla_due_at, fallback)}"
        sla_line = f"SLA *{conv.sla_policy}*: {SLA_LABEL.get(conv.sla_state, conv.sla_state)}{when}"
    return CardView(
        number=conv.id,
        platform_label=Platform(conv.platform).label + VIA_LABEL.get(conv.via or "", ""),
        customer_name=conv.customer_name,
        handle=conv.customer_handle,
        profile_url=conv.customer_profile_url,
        status=conv.status,
        assignee=conv.assignee,
        priority=conv.priority,
        team=conv.team,
        escalation_reason=conv.escalation_reason,
        snoozed_until=until,
        reopened=reopened and conv.status == "open",
        sla=sla_line,
        inquiry_type=conv.inquiry_type,
        suggested_type=conv.suggested_type,
        types=tuple(types),
        csat=csat,
        opted_out=conv.opted_out_at is not None,
        lead=lead,
    )
