"""What the records (``bridge.export``) read: conversations by number, customer or time, and their messages as
retention left them (an emptied text is not a message any more and is not exported)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from bridge.store.tables import Audit, Conversation, InboundEvent

SPOKEN = ("relay", "template")
"""Audit actions whose detail is what was sent to the customer (an agent's reply, a template)."""


def conversations(
    session: Session,
    *,
    number: int | None = None,
    customer: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> list[Conversation]:
    """The conversations asked for: one by number, a customer's (id or handle), or those with a message in
    ``[since, until)``."""
    stmt = select(Conversation)
    if number is not None:
        stmt = stmt.where(Conversation.id == number)
    if customer is not None:
        stmt = stmt.where((Conversation.customer_id == customer) | (Conversation.customer_handle == customer))
    if since is not None or until is not None:
        lo, hi = since if since is not None else float("-inf"), until if until is not None else float("inf")
        active = select(InboundEvent.conversation_id).where(
            col(InboundEvent.sent_at) >= lo, col(InboundEvent.sent_at) < hi
        )
        spoken = select(Audit.conversation_id).where(
            col(Audit.action).in_(SPOKEN), col(Audit.at) >= lo, col(Audit.at) < hi
        )
        stmt = stmt.where(col(Conversation.id).in_(active) | col(Conversation.id).in_(spoken))
    return list(session.exec(stmt.order_by(col(Conversation.id))).all())


def messages(
    session: Session, conversation_id: int, since: float | None = None, until: float | None = None
) -> list[tuple[float, str, str, str]]:
    """The conversation's messages in time order: (at, who, author, text); ``who`` is customer, brand (written
    outside Slack), agent or template. Texts retention emptied are left out."""
    lo, hi = since if since is not None else float("-inf"), until if until is not None else float("inf")
    inbound = session.exec(
        select(InboundEvent.sent_at, InboundEvent.from_brand, InboundEvent.text).where(
            InboundEvent.conversation_id == conversation_id,
            InboundEvent.text != "",
            col(InboundEvent.sent_at) >= lo,
            col(InboundEvent.sent_at) < hi,
        )
    ).all()
    spoken = session.exec(
        select(Audit.at, Audit.action, Audit.actor, Audit.detail).where(
            Audit.conversation_id == conversation_id,
            col(Audit.action).in_(SPOKEN),
            Audit.detail != "",
            col(Audit.at) >= lo,
            col(Audit.at) < hi,
        )
    ).all()
    rows = [(at, "brand" if brand else "customer", "", text) for at, brand, text in inbound]
    rows += [(at, "agent" if action == "relay" else "template", actor, text) for at, action, actor, text in spoken]
    return sorted(rows, key=lambda r: r[0])
