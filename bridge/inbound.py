"""Platform messages → stored events, conversations and Slack outbox rows (one transaction per batch)."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session

from bridge.domain import Batch, InboundMessage
from bridge.outbound import slack_lane
from bridge.slack.blocks import customer_text
from bridge.store import conversations, events, outbox


def ingest(session: Session, connector: str, account: str, batch: Batch, channel_for: Callable[[str], str],
           now: float) -> int:
    """Store a poll's or webhook's messages, then its cursor. Returns how many were new.

    Our own sends coming back are recognised by their stored remote id, or
    while a send's outcome is not yet recorded by a matching attempted delivery,
    and dropped; anything else the brand sent (from the platform's own app) is
    mirrored with a label. A message seen before inserts nothing.
    """
    new = 0
    for msg in batch.messages:
        if msg.from_brand and events.sent_by_us(session, msg.platform, msg.account, msg.remote_id):
            continue
        if msg.from_brand and outbox.attempted_with_text(session, platform=msg.platform, account=msg.account,
                                                         remote_conversation=msg.conversation, text=msg.text):
            continue  # our own send whose outcome is not written yet (in flight, or cut short by a crash)
        if ingest_message(session, msg, channel_for(msg.account), now):
            new += 1
    if batch.cursor is not None:
        events.set_cursor(session, connector, account, batch.cursor, now)
    return new


def ingest_message(session: Session, msg: InboundMessage, channel: str, now: float) -> bool:
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
    if created:
        outbox.enqueue(session, key=f"card:{conv.id}", target="slack", lane=lane, kind="card",
                       payload={}, now=now, conversation_id=conv.id)
    if not msg.from_brand:
        conv.last_inbound_at = now
        session.add(conv)
    label = (f"Sent by @{msg.account} from the {msg.platform.label} app, outside Slack"
             if msg.from_brand else None)
    text = msg.text
    if msg.attachments:
        text += ("\n" if text else "") + f"[{len(msg.attachments)} attachment(s) — open the conversation on " \
                                         f"{msg.platform.label} to view]"
    for i, part in enumerate(customer_text(text, label)):
        outbox.enqueue(session, key=f"mirror:{msg.platform}:{msg.account}:{msg.remote_id}:{i}", target="slack",
                       lane=lane, kind="mirror", conversation_id=conv.id, now=now,
                       payload={"text": part.text, "blocks": part.blocks, "from_brand": msg.from_brand})
    return True
