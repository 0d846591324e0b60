"""The ``lead`` table: one row per conversation that is a lead (``bridge.leads``)."""

from __future__ import annotations

from sqlalchemy import case
from sqlmodel import Session, col, select

from bridge.leads import STAGES
from bridge.store.tables import Conversation, Lead

_PIPELINE = case({stage: i for i, stage in enumerate(STAGES)}, value=col(Lead.stage), else_=len(STAGES))


def get(session: Session, conversation_id: int) -> Lead | None:
    return session.exec(select(Lead).where(Lead.conversation_id == conversation_id)).first()


def listing(session: Session, limit: int = 50) -> list[tuple[Lead, Conversation]]:
    """By stage in the pipeline's order (new, qualified, meeting, then won and lost), newest change first within
    a stage."""
    rows = session.exec(
        select(Lead, Conversation)
        .join(Conversation, col(Conversation.id) == col(Lead.conversation_id))
        .order_by(_PIPELINE, col(Lead.updated_at).desc())
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
