"""Conversations: the unique mapping platform conversation ↔ Slack thread."""

from __future__ import annotations

from sqlmodel import Session, select

from bridge.domain import Customer
from bridge.store.common import insert_ignore
from bridge.store.tables import Conversation


def get_or_create(session: Session, *, platform: str, account: str, remote_id: str, customer: Customer,
                  channel: str, now: float) -> tuple[Conversation, bool]:
    """The conversation for this remote id, created when new (safe under concurrent callers)."""
    created = insert_ignore(session, Conversation, dict(
        platform=platform, account=account, remote_id=remote_id, customer_id=customer.id,
        customer_name=customer.name, customer_handle=customer.handle, customer_avatar=customer.avatar_url,
        customer_profile_url=customer.profile_url, channel=channel, status="open", created_at=now,
    ))
    conv = session.exec(select(Conversation).where(
        Conversation.platform == platform, Conversation.account == account,
        Conversation.remote_id == remote_id)).one()
    if not created and customer.name and customer.name != customer.id:
        # keep name and avatar current; the card shows what was true when it was drawn
        conv.customer_name = customer.name
        conv.customer_handle = customer.handle or conv.customer_handle
        conv.customer_avatar = customer.avatar_url or conv.customer_avatar
        conv.customer_profile_url = customer.profile_url or conv.customer_profile_url
        session.add(conv)
    return conv, created


def by_thread(session: Session, channel: str, thread_ts: str) -> Conversation | None:
    return session.exec(select(Conversation).where(
        Conversation.channel == channel, Conversation.thread_ts == thread_ts)).first()


def get(session: Session, conversation_id: int) -> Conversation | None:
    return session.get(Conversation, conversation_id)
