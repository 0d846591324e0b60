"""``dmbridge forget --customer PLATFORM:ID``: erase one customer's data on request.

One transaction does all of it, so an interruption leaves either nothing
done or everything (the erasure, and the Slack deletions queued):

- their conversations are detached from them: name, handle, avatar and
  profile link removed, the customer and conversation ids replaced (a new
  message from them starts a new conversation), resolved;
- their messages' texts (``inbound_event``), every outbox payload of those
  conversations, the stored Slack events of their threads, and every audit
  detail (template renderings, relayed replies, reasons) are emptied;
- deliveries not made yet are cancelled (``failed``: "cancelled: customer
  data erased"); if one is being sent at this very moment nothing is changed
  and ``InFlight`` asks to run it again;
- the bot's own messages in Slack (the header card, the customer's mirrored
  messages, the bot's notices in the thread, escalation notices) are queued
  as ``delete`` outbox rows: the running ``dmbridge serve`` sends the
  ``chat.delete`` calls with the usual retries, rate-limit handling and crash
  recovery, so nothing is lost if either process stops half way. Agents' own
  replies cannot be deleted with a bot token (Slack: ``cant_delete_message``);
  the report counts them so an admin can remove them in Slack;
- an audit row without content says "customer data erased on request".

Rows and dedupe keys stay, so a replay of one of their old messages or
events stores nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from bridge.deliveries import DM, POSTS, ChannelNotice, Delete, Delivery, Ephemeral
from bridge.domain import Platform
from bridge.store import desk as desk_store
from bridge.store import outbox
from bridge.store.db import Database
from bridge.store.tables import (
    Audit,
    Conversation,
    CsatSurvey,
    InboundEvent,
    Outbox,
    SlackEvent,
    TemplateChoice,
    TypeExample,
)

ERASED = "customer data erased on request"
ERASED_NAME = "(erased)"
CANCELLED = "cancelled: customer data erased"
POSTED_BY_BOT = tuple(kind.kind for kind in POSTS)
_TS = re.compile(r"^\d{1,12}\.\d{1,9}$")


class InFlight(Exception):
    """A delivery of this customer's conversation is being made right now; nothing was changed."""


@dataclass(frozen=True)
class Erasure:
    conversations: list[int]
    deletions: int  # the bot's Slack messages queued for chat.delete
    agent_replies: int  # agents' messages relayed from the threads: they stay in Slack
    cancelled: int  # deliveries not made yet, cancelled


def parse_customer(text: str) -> tuple[str, str]:
    """``PLATFORM:ID`` → (platform, id); ValueError with the usage otherwise."""
    platform, sep, customer = text.partition(":")
    if not sep or not customer.strip() or platform not in {p.value for p in Platform}:
        raise ValueError(
            f"--customer must be PLATFORM:ID with PLATFORM one of "
            f"{', '.join(p.value for p in Platform)} (e.g. x:1234567890)"
        )
    return platform, customer.strip()


def forget(db: Database, platform: str, customer_id: str, now: float, actor: str = "operator") -> Erasure:
    with db.session() as s:
        convs = list(
            s.exec(
                select(Conversation)
                .where(Conversation.platform == platform, Conversation.customer_id == customer_id)
                .order_by(col(Conversation.id))
                .with_for_update()
            ).all()
        )  # by id, then the rows
        ids = [c.id for c in convs if c.id is not None]
        if not ids:
            return Erasure([], 0, 0, 0)
        # locked, so no worker claims them meanwhile (claims skip locked rows on PostgreSQL; SQLite has one writer)
        rows = list(
            s.exec(
                select(Outbox).where(col(Outbox.conversation_id).in_(ids)).order_by(col(Outbox.id)).with_for_update()
            ).all()
        )
        if any(r.state == outbox.SENDING for r in rows):
            raise InFlight(
                "a message of this customer's conversation is being delivered right now; "
                "nothing was changed: run the command again in a minute"
            )
        targets = _bot_messages(convs, rows)
        relayed = {m for m in (_relayed_message(r) for r in rows) if m is not None}
        cancelled = s.execute(
            update(Outbox)
            .where(col(Outbox.conversation_id).in_(ids), col(Outbox.state) == outbox.PENDING)
            .values(state=outbox.FAILED, last_error=CANCELLED)
        ).rowcount  # type: ignore[attr-defined]
        s.execute(update(Outbox).where(col(Outbox.conversation_id).in_(ids)).values(payload="{}"))
        s.execute(update(InboundEvent).where(col(InboundEvent.conversation_id).in_(ids)).values(text=""))
        s.execute(update(Audit).where(col(Audit.conversation_id).in_(ids)).values(detail=""))
        for learned in (TypeExample, TemplateChoice):  # what suggestions learn from holds their messages too
            s.execute(delete(learned).where(col(learned.conversation_id).in_(ids)))
        s.execute(update(CsatSurvey).where(col(CsatSurvey.conversation_id).in_(ids)).values(comment=None))
        for conv in convs:
            if conv.thread_ts:
                cancelled += _erase_thread(s, conv.channel, conv.thread_ts)
            _detach(conv, now)
            s.add(conv)
        s.flush()
        for conv_id, channel, ts in sorted(targets):
            outbox.enqueue(s, Delete.message(conv_id, channel, ts), now)
        for conv_id in ids:
            desk_store.audit(s, conversation_id=conv_id, actor=actor, action="erase", detail=ERASED, now=now)
        return Erasure(ids, len({(c, t) for _i, c, t in targets}), len(relayed), int(cancelled))


def _readable(row: Outbox) -> Delivery | None:
    """The delivery a row holds; None once an earlier erasure emptied its payload."""
    try:
        return outbox.delivery(row)
    except ValueError:
        return None


def _relayed_message(row: Outbox) -> tuple[str, str] | None:
    """The agent's Slack message an outbox row relays to the customer, if it is such a row."""
    sent = _readable(row) if row.kind == DM.kind else None
    return sent.relayed_message if isinstance(sent, DM) else None


def _bot_messages(convs: list[Conversation], rows: list[Outbox]) -> set[tuple[int, str, str]]:
    """(conversation, channel, ts) of every message the bot posted for these conversations."""
    channel_of = {c.id: c.channel for c in convs}
    found = {(int(c.id), c.channel, c.thread_ts) for c in convs if c.id is not None and c.thread_ts}
    for row in rows:
        if row.state != outbox.SENT or row.kind not in POSTED_BY_BOT or not _TS.match(row.result or ""):
            continue
        if row.kind == ChannelNotice.kind:
            sent = _readable(row)
            channel = sent.channel if isinstance(sent, ChannelNotice) else ""
        else:
            channel = channel_of.get(row.conversation_id, "")
        if channel and row.conversation_id is not None and row.result:
            found.add((row.conversation_id, channel, row.result))
    return found


def _erase_thread(s: Session, channel: str, thread_ts: str) -> int:
    """Empty the stored Slack events of one thread and the ephemeral answers given in it; how many of those
    answers were still to be sent (now cancelled). Read by a text match, then checked on the parsed JSON."""
    needle = f"%{json.dumps(thread_ts)}%"
    for event in s.exec(select(SlackEvent).where(col(SlackEvent.payload).like(needle))).all():
        if _in_thread(json.loads(event.payload), channel, thread_ts):
            event.payload = "{}"
            s.add(event)
    cancelled = 0
    for row in s.exec(select(Outbox).where(Outbox.kind == Ephemeral.kind, col(Outbox.payload).like(needle))).all():
        answer = _readable(row)
        if isinstance(answer, Ephemeral) and answer.channel == channel and answer.thread_ts == thread_ts:
            if row.state == outbox.PENDING:
                row.state, row.last_error = outbox.FAILED, CANCELLED
                cancelled += 1
            row.payload = "{}"
            s.add(row)
    return cancelled


def _in_thread(payload: dict[str, object], channel: str, thread_ts: str) -> bool:
    event = payload.get("event", payload)
    if not isinstance(event, dict) or event.get("channel") != channel:
        return False
    candidates = [event] + [m for m in (event.get("message"), event.get("previous_message")) if isinstance(m, dict)]
    return any(thread_ts in (m.get("thread_ts"), m.get("ts")) for m in candidates)


def _detach(conv: Conversation, now: float) -> None:
    conv.customer_id = "erased"
    conv.customer_name = ERASED_NAME
    conv.customer_handle = conv.customer_avatar = conv.customer_profile_url = None
    conv.remote_id = f"erased:{conv.id}"  # a new message from them opens a new conversation
    conv.thread_ts = None
    conv.status, conv.resolved_at = "resolved", conv.resolved_at or now
    conv.escalation_reason = conv.snoozed_until = conv.sla_next_at = None
    conv.sla_state = conv.sla_due_at = None
