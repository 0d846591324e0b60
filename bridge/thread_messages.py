"""Slack thread messages → what to do with them (pure ``classify``) and the outbox rows that follow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from bridge import state
from bridge.deliveries import DM, Ephemeral, Reaction
from bridge.domain import Limits, limits_of
from bridge.slack.markup import slack_to_plain
from bridge.store import conversations, outbox
from bridge.text import split_text, utf8_len

RELAYED_SUBTYPES = (None, "thread_broadcast", "file_share")
IGNORED = "ignored"  # the only key of a stored event the processor needs nothing from


@dataclass(frozen=True)
class Relay:
    channel: str
    thread_ts: str
    ts: str
    user: str
    text: str


@dataclass(frozen=True)
class Note:
    channel: str
    thread_ts: str


@dataclass(frozen=True)
class Command:
    channel: str
    thread_ts: str
    ts: str
    user: str
    text: str


@dataclass(frozen=True)
class Changed:
    """An agent edited or deleted a message in a thread."""

    channel: str
    thread_ts: str
    ts: str
    deleted: bool


@dataclass(frozen=True)
class Ignore:
    reason: str


Action = Relay | Note | Command | Changed | Ignore


def classify(event: dict[str, Any], bot_user_id: str, note_prefixes: tuple[str, ...]) -> Action:
    """Decide what a message event in the channel means. Pure."""
    if IGNORED in event or not event:  # stored without content (bridge/slack/slim.py), or pruned
        return Ignore(str(event.get(IGNORED, "no content")))
    subtype = event.get("subtype")
    channel = str(event.get("channel", ""))
    if subtype in ("message_changed", "message_deleted"):
        msg = event.get("message") if subtype == "message_changed" else event.get("previous_message")
        if not isinstance(msg, dict) or msg.get("bot_id") or msg.get("app_id"):
            return Ignore("change to a bot message")
        ts, thread_ts = str(msg.get("ts", "")), msg.get("thread_ts")
        if not thread_ts or thread_ts == ts:
            return Ignore("change outside a thread")
        if subtype == "message_changed" and (msg.get("text") == (event.get("previous_message") or {}).get("text")):
            return Ignore("not an edit of the text")
        return Changed(channel, str(thread_ts), ts, deleted=subtype == "message_deleted")
    if event.get("bot_id") or event.get("app_id") or subtype == "bot_message":
        return Ignore("bot message")
    if subtype not in RELAYED_SUBTYPES:
        return Ignore(f"subtype {subtype}")
    ts, thread_ts = str(event.get("ts") or ""), event.get("thread_ts")
    if not ts:
        return Ignore("no ts")
    if not thread_ts or thread_ts == ts:
        return Ignore("not a thread reply")
    user, text = str(event.get("user", "")), str(event.get("text") or "")
    if not user:
        return Ignore("no author")
    if f"<@{bot_user_id}" in text or event.get("type") == "app_mention":
        return Command(channel, str(thread_ts), ts, user, text)
    if text.lstrip().lower().startswith(note_prefixes):
        return Note(channel, str(thread_ts))
    return Relay(channel, str(thread_ts), ts, user, text)


def platform_parts(text: str, limits: Limits) -> list[str]:
    """Plain text for the customer, split to the platform's limit, in order."""
    plain = slack_to_plain(text).strip()
    if not plain:
        return []
    cost = utf8_len if limits.count_bytes else None
    return [p for p in split_text(plain, limits.max_chars, cost) if p.strip()]


def ephemeral(s: Session, channel: str, user: str, text: str, now: float, thread_ts: str | None = None) -> None:
    """An answer only ``user`` sees, delivered by the Slack worker."""
    outbox.enqueue(s, Ephemeral.to(channel, user, text, thread_ts), now)


def enqueue_receipt(session: Session, receipt: Reaction | None, now: float) -> None:
    """A receipt on the agent's message (nothing when there is no message to mark)."""
    if receipt is not None:
        outbox.enqueue(session, receipt, now)


NOT_RELAYED = (
    "Only agents of this desk can answer customers; your message was not sent to the customer. "
    "Start it with `//` to keep it as a note."
)


def apply(
    session: Session,
    action: Relay | Note | Changed | Ignore,
    limits_for: dict[str, Limits],
    now: float,
    is_agent: bool = True,
) -> str:
    """Turn a classified message into outbox rows. Returns the outcome stored with the event."""
    match action:
        case Ignore(reason):
            return f"ignored: {reason}"
        case Note():
            return "note"
        case Relay(channel, thread_ts, ts, user, text):
            conv = conversations.by_thread(session, channel, thread_ts)
            if conv is None or conv.id is None:
                return "ignored: thread is not a conversation"
            if not is_agent:
                ephemeral(session, channel, user, NOT_RELAYED, now, thread_ts)
                return "not relayed: not an agent"
            limits = limits_of(limits_for, conv.platform, conv.via)
            assert limits is not None, f"no connector for {conv.platform}"
            parts = platform_parts(text, limits)
            if not parts:
                state.say(
                    session,
                    conv,
                    ("empty", channel, ts),
                    "Only text is relayed for now: that message was not sent to the customer.",
                    now,
                )
                return "not relayed: no text"
            for dm in DM.relay(conv.id, channel, ts, parts, user):
                outbox.enqueue(session, dm, now)
            state.reply_queued(session, conv, now, author=user, text="".join(parts))
            return f"relayed in {len(parts)} part(s)"
        case Changed(channel, thread_ts, ts, deleted):
            conv = conversations.by_thread(session, channel, thread_ts)
            if conv is None or outbox.row_for(session, DM.first_relay_key(channel, ts)) is None:
                return "ignored: change to a message that was not relayed"
            what = "Deleting" if deleted else "Editing"
            state.say(
                session,
                conv,
                ("changed", channel, ts),
                f"{what} a message here does not change what the customer received; write a new reply to correct it.",
                now,
            )
            return "changed: notice"
    return "ignored"
