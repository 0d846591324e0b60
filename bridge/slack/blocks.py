"""Pure Block Kit builders. Every customer-supplied string passes through ``slack_escape``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.text import slack_escape, slack_escaped_len, split_text

SECTION_LIMIT = 3000  # characters of one section's text
BLOCKS_PER_MESSAGE = 4  # stays under Slack's aggregate limit (~13k chars of block text per message)
PREVIEW_CHARS = 150

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


STATUS_LABEL = {"open": ":large_green_circle: open", "snoozed": ":zzz: snoozed",
                "resolved": ":white_check_mark: resolved"}
PRIORITY_LABEL = {"low": "low", "normal": "normal", "high": ":small_orange_diamond: high",
                  "urgent": ":red_circle: urgent"}


def header_card(card: CardView) -> SlackMessage:
    name = slack_escape(card.customer_name)
    who = f"*{name}*"
    if card.handle:
        handle = slack_escape("@" + card.handle)
        who += f" (<{card.profile_url}|{handle}>)" if card.profile_url else f" ({handle})"
    assignee = f"<@{card.assignee}>" if card.assignee else "nobody yet"
    status = STATUS_LABEL.get(card.status, card.status)
    if card.status == "snoozed" and card.snoozed_until:
        status += f" until {card.snoozed_until}"
    priority = PRIORITY_LABEL.get(card.priority, card.priority)
    facts = [f"Status: *{status}*", f"Assignee: {assignee}", f"Priority: {priority}"]
    if card.team:
        reason = f" — {slack_escape(card.escalation_reason)}" if card.escalation_reason else ""
        facts.append(f"Escalated to *{slack_escape(card.team)}*{reason}")
    if card.reopened:
        facts.append("Reopened: the customer wrote again")
    if card.sla:
        facts.append(card.sla)
    more = [("Unassign", "unassign"), ("De-escalate", "deescalate"), ("Snooze 2 hours", "snooze:2h"),
            ("Snooze until tomorrow 9:00", "snooze:tomorrow 9:00")]
    actions: list[Block] = [
        _button("Assign to me", "conv_claim", "primary" if not card.assignee else None),
        {"type": "users_select", "action_id": "conv_assign",
         "placeholder": {"type": "plain_text", "text": "Assign to…"},
         **({"initial_user": card.assignee} if card.assignee else {})},
        _button("Reply with template", "conv_template"),
        _button("Escalate", "conv_escalate"),
        _button("Reopen", "conv_reopen") if card.status == "resolved" else _button("Resolve", "conv_resolve"),
        {"type": "overflow", "action_id": "conv_more", "options": [
            {"text": {"type": "plain_text", "text": label}, "value": value} for label, value in more]},
    ]
    blocks: list[Block] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*#{card.number}* · {card.platform_label} · {who}"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f} for f in facts]},
        {"type": "actions", "block_id": "conv_actions", "elements": actions},
        {"type": "context", "elements": [{"type": "mrkdwn", "text":
            "Reply in this thread to answer the customer. Start with `//` or `note:` for an internal note; "
            "mention the bot for commands (`@dmbridge help`)."}]},
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


def customer_text(text: str, label: str | None = None) -> list[SlackMessage]:
    """Customer text as one or more messages, nothing dropped: ≤3,000 escaped chars a section."""
    pieces = [slack_escape(p) for p in split_text(text, SECTION_LIMIT, slack_escaped_len) if p]
    sections: list[Block] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": piece, "verbatim": True}} for piece in pieces
    ] or [{"type": "section", "text": {"type": "mrkdwn", "text": "_(no text)_", "verbatim": True}}]
    groups = [sections[i:i + BLOCKS_PER_MESSAGE] for i in range(0, len(sections), BLOCKS_PER_MESSAGE)]
    messages = []
    for i, group in enumerate(groups):
        n = i + 1
        blocks: list[Block] = list(group)
        if label:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": label}]})
        if len(groups) > 1:
            blocks.append({"type": "context", "elements": [
                {"type": "mrkdwn", "text": f"part {n} of {len(groups)}"}]})
        first = str(pieces[i * BLOCKS_PER_MESSAGE]) if pieces else ""
        preview = first if len(first) <= PREVIEW_CHARS else first[:PREVIEW_CHARS] + "…"
        messages.append(SlackMessage(text=preview, blocks=blocks))
    return messages


def notice(text: str) -> SlackMessage:
    """A short message from the bot itself (text we wrote, customer parts already escaped)."""
    return SlackMessage(text=text, blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}])
