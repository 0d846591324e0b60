"""The ``lead`` table: one row per conversation that is a lead (``bridge.leads``)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from bridge.store.tables import Conversation, Lead


def get(session: Session, conversation_id: int) -> Lead | None:
    return session.exec(select(Lead).where(Lead.conversation_id == conversation_id)).first()


def listing(session: Session, limit: int = 50) -> list[tuple[Lead, Conversation]]:
    """Leads still in play first (by stage order in the pipeline), then won and lost, newest change first."""
    rows = session.exec(
        select(Lead, Conversation)
        .join(Conversation, col(Conversation.id) == col(Lead.conversation_id))
        .order_by(col(Lead.updated_at).desc())
        .limit(limit)
    ).all()
    return [(lead, conv) for lead, conv in rows]


def created_between(session: Session, since: float, until: float) -> list[tuple[Lead, Conversation]]:
    rows = session.exec(
        select(Lead, Conversation)
        .join(Conversation, col(Conversation.id) == col(Lead.conversation_id))
        .where(col(Lead.created_at) >= since, col(Lead.created_at) < until)
    ).all()
    return [(lead, conv) for lead, conv in rows]
