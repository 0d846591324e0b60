"""Platform messages → stored events, conversations and Slack outbox rows (one transaction per batch)."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session

from bridge import outbound
from bridge.domain import Batch, InboundMessage
from bridge.outbound import slack_lane
from bridge.slack.blocks import customer_text
from bridge.store import conversations, events, outbox
from bridge.store import desk as desk_store
from bridge.store.db import Database
from bridge.text import slack_escape

# A webhook echo of our own send can arrive before the send's result is recorded:
# a brand message's mirror waits this long and checks sent_message again when due.
ECHO_GRACE_SECONDS = 2.0
DAY = 86_400


def ingest(session: Session, connector: str, account: str, batch: Batch, channel_for: Callable[[str], str],
           now: float, auto_assign: bool = False) -> int:
    """Store a poll's or webhook's messages, then its cursor. Returns how many were new.

    Our own sends coming back are recognised by their stored remote id, or
    while a send's outcome is not yet recorded by a matching attempted delivery,
    and dropped; anything else the brand sent (from the platform's own app) is
    mirrored with a label. A message seen before inserts nothing.
    """
    new = 0
    # the batch's existing conversations first, by id (bridge.store.conversations.lock): the messages below
    # come in the platform's order, and the event processor, deliveries and the SLA sweep write them too
    conversations.lock_remote(session, {(m.platform, m.account, m.conversation) for m in batch.messages})
    for msg in batch.messages:
        if msg.from_brand and events.sent_by_us(session, msg.platform, msg.account, msg.remote_id):
            continue
        if msg.from_brand and outbox.attempted_with_text(session, platform=msg.platform, account=msg.account,
                                                         remote_conversation=msg.conversation, text=msg.text):
            continue  # our own send whose outcome is not written yet (in flight, or cut short by a crash)
        if ingest_message(session, msg, channel_for(msg.account), now, auto_assign):
            new += 1
    if batch.cursor is not None:
        events.set_cursor(session, connector, account, batch.cursor, now)
    return new


def store_batch(db: Database, connector: str, batch: Batch, channel_for: Callable[[str], str], now: float,
                auto_assign: bool = False) -> int:
    """Store a webhook delivery's messages in one transaction (before the 200 goes out)."""
    with db.session() as s:
        return ingest(s, connector, "", batch, channel_for, now, auto_assign)


def ingest_message(session: Session, msg: InboundMessage, channel: str, now: float, auto_assign: bool = False) -> bool:
    if events.inbound_known(session, msg.platform, msg.account, msg.remote_id):
        return False
    conv, created = conversations.get_or_create(
        session, platform=msg.platform, account=msg.account, remote_id=msg.conversation, customer=msg.customer,
        channel=channel, now=now)
    assert conv.id is not None
    if not events.store_inbound(session, platform=msg.platform, account=msg.account, remote_id=msg.remote_id,
                                conversation_id=conv.id, from_brand=msg.from_brand, text=msg.text,
                                sent_at=msg.sent_at.timestamp(), now=now):
        return False
    lane = slack_lane(conv.id)
    if msg.needs_profile and not msg.from_brand:
        # before the card in the lane, so the card is drawn with the customer's real name
        outbox.enqueue(session, key=f"profile:{conv.id}:{int(now // DAY)}", target="platform", lane=lane,
                       kind="profile", payload={"customer_id": conv.customer_id}, now=now,
                       conversation_id=conv.id)
    if created:
        outbox.enqueue(session, key=f"card:{conv.id}", target="slack", lane=lane, kind="card",
                       payload={}, now=now, conversation_id=conv.id)
    if created and auto_assign:
        outbox.enqueue(session, key=f"autoassign:{conv.id}", target="slack", lane=lane, kind="autoassign",
                       payload={}, now=now, conversation_id=conv.id)
    desk_store.sla_touch(conv, now)
    session.add(conv)
    if not msg.from_brand:
        # the platform's time of the message: messaging windows count from it, not from our receipt
        conv.last_inbound_at = max(conv.last_inbound_at or 0.0, min(msg.sent_at.timestamp(), now))
        if conv.status != "open":  # resolved or snoozed: the customer wrote again
            was = conv.status
            conv.status, conv.snoozed_until, conv.resolved_at = "open", None, None
            audit_id = desk_store.audit(session, conversation_id=conv.id, actor="customer", action="reopen",
                                        detail=f"was {was}", now=now)
            outbox.enqueue(session, key=f"card_update:{conv.id}:{audit_id}", target="slack", lane=lane,
                           kind="card_update", payload={"reopened": True}, now=now, conversation_id=conv.id)
            outbound.enqueue_notice(session, conv, f"line:{audit_id}",
                                    f"The customer wrote again: this conversation was {was} and is open again."
                                    + (f" <@{conv.assignee}>" if conv.assignee else ""), now)
        session.add(conv)
    label = (f"Sent by @{slack_escape(msg.account)} from the {msg.platform.label} app, outside Slack"
             if msg.from_brand else None)
    text = msg.text
    if msg.attachments:
        text += ("\n" if text else "") + f"[{len(msg.attachments)} attachment(s) — open the conversation on " \
                                         f"{msg.platform.label} to view]"
    echo = {"echo_of": [msg.platform.value, msg.account, msg.remote_id]} if msg.from_brand else {}
    for i, part in enumerate(customer_text(text, label)):
        outbox.enqueue(session, key=f"mirror:{msg.platform}:{msg.account}:{msg.remote_id}:{i}", target="slack",
                       lane=lane, kind="mirror", conversation_id=conv.id, now=now,
                       not_before=now + ECHO_GRACE_SECONDS if msg.from_brand else 0.0,
                       payload={"text": part.text, "blocks": part.blocks, "from_brand": msg.from_brand, **echo})
    return True

