"""Slack thread messages → what to do with them (pure ``classify``) and the outbox rows that follow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from bridge import state
from bridge.deliveries import DM, WARNING, Ephemeral, Reaction
from bridge.domain import AgentFile, Limits, limits_of, safe_file_name
from bridge.slack.markup import slack_to_plain
from bridge.store import conversations, outbox
from bridge.text import slack_escape, split_text, utf8_len

RELAYED_SUBTYPES = (None, "thread_broadcast", "file_share")
IGNORED = "ignored"  # the only key of a stored event the processor needs nothing from


@dataclass(frozen=True)
class Relay:
    channel: str
    thread_ts: str
    ts: str
    user: str
    text: str
    files: tuple[AgentFile, ...] = ()


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
    return Relay(channel, str(thread_ts), ts, user, text, agent_files(event.get("files")))


MAX_FILES = 10  # Slack shares at most 10 files in one message (files.completeUploadExternal)


def agent_files(value: object) -> tuple[AgentFile, ...]:
    """The files of a ``file_share`` message that can be sent on: ids and names as Slack gave them."""
    found = []
    for item in value[:MAX_FILES] if isinstance(value, list) else ():
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or item.get("mode") == "tombstone":
            continue
        size = item.get("size")
        found.append(
            AgentFile(
                id=item["id"][:64],
                name=safe_file_name(item.get("name"), "file"),
                mimetype=str(item.get("mimetype") or "")[:128],
                size=size if isinstance(size, int) and size >= 0 else None,
            )
        )
    return tuple(found)


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


NOTHING_TO_SEND = "That message has no text or file for the customer: nothing was sent."


def file_refusal(files: tuple[AgentFile, ...], limits: Limits) -> str | None:
    """Why the platform would refuse one of ``files`` (judged on what Slack's event said), or None."""
    for file in files:
        if limits.files is None:
            return f"this platform takes text only from dmbridge ({slack_escape(file.name)} was attached)"
        refusal = limits.files.refusal(file.name, file.mimetype, file.size) if file.mimetype else None
        if refusal is not None:  # with no type in the event, the check waits for files.info at send time
            return slack_escape(refusal)
    return None


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
        case Relay(channel, thread_ts, ts, user, text, files):
            conv = conversations.by_thread(session, channel, thread_ts)
            if conv is None or conv.id is None:
                return "ignored: thread is not a conversation"
            if not is_agent:
                ephemeral(session, channel, user, NOT_RELAYED, now, thread_ts)
                return "not relayed: not an agent"
            limits = limits_of(limits_for, conv.platform, conv.via)
            assert limits is not None, f"no connector for {conv.platform}"
            parts = platform_parts(text, limits)
            refusal = file_refusal(files, limits)
            if refusal is not None:
                enqueue_receipt(session, Reaction.on(conv.id, channel, ts, WARNING), now)
                line = f":warning: Not sent to the customer: {refusal}."
                state.say(session, conv, ("refused", channel, ts), line, now)
                return "not relayed: a file the platform refuses"
            if not parts and not files:
                state.say(session, conv, ("empty", channel, ts), NOTHING_TO_SEND, now)
                return "not relayed: nothing to send"
            with_text = limits.files is not None and limits.files.with_text
            for dm in DM.relay(conv.id, channel, ts, parts, user, files, with_text):
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
