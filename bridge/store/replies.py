"""Automatic replies sent (cooldowns) and CSAT surveys: the ``auto_reply`` and ``csat`` tables."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from bridge.store.common import insert_ignore
from bridge.store.tables import AutoReplySent, CsatSurvey


def last_sent(session: Session, conversation_id: int) -> dict[str, float]:
    """When dmbridge last sent each kind of automatic message in the conversation."""
    rows = session.exec(
        select(AutoReplySent.kind, func.max(AutoReplySent.sent_at))
        .where(AutoReplySent.conversation_id == conversation_id)
        .group_by(col(AutoReplySent.kind))
    ).all()
    return {str(kind): float(at) for kind, at in rows}


def record(session: Session, conversation_id: int, kind: str, key: str, now: float) -> bool:
    values = dict(conversation_id=conversation_id, kind=kind, key=key, sent_at=now)
    return insert_ignore(session, AutoReplySent, values)


def pending(session: Session, key: str) -> AutoReplySent | None:
    """The record under ``key``: an ``AutoReplyDue``'s (decided, not yet sent), or a sent DM's."""
    return session.exec(select(AutoReplySent).where(AutoReplySent.key == key)).first()


def settle(session: Session, row: AutoReplySent, dm_key: str | None) -> None:
    """The decided reply went out as the DM ``dm_key`` (its record now follows that DM), or with ``None`` was
    dropped (an agent answered first, the customer opted out): it no longer counts for the cooldown."""
    if dm_key is None:
        session.delete(row)
    else:
        row.key = dm_key
        session.add(row)


def delivered(session: Session, key: str, remote_id: str) -> None:
    """The platform's id of an automatic message (the SLA timeline leaves it out: not an agent's answer)."""
    row = pending(session, key)  # the record under the DM's key
    if row is not None and row.remote_id is None:
        row.remote_id = remote_id
        session.add(row)


def add_survey(session: Session, conversation_id: int, audit_id: int, now: float) -> CsatSurvey | None:
    """The survey for the resolve ``audit_id``; None when that resolve already has one."""
    if not insert_ignore(session, CsatSurvey, dict(conversation_id=conversation_id, audit_id=audit_id, asked_at=now)):
        return None
    return session.exec(select(CsatSurvey).where(CsatSurvey.audit_id == audit_id)).one()


def open_survey(session: Session, conversation_id: int) -> CsatSurvey | None:
    """The conversation's latest survey, if it is still unanswered."""
    latest = session.exec(
        select(CsatSurvey)
        .where(CsatSurvey.conversation_id == conversation_id)
        .order_by(col(CsatSurvey.asked_at).desc(), col(CsatSurvey.id).desc())
        .limit(1)
    ).first()
    return latest if latest is not None and latest.score is None else None


def latest_score(session: Session, conversation_id: int) -> int | None:
    """The score of the conversation's latest answered survey (what the card shows)."""
    return session.exec(
        select(CsatSurvey.score)
        .where(CsatSurvey.conversation_id == conversation_id, col(CsatSurvey.score).is_not(None))
        .order_by(col(CsatSurvey.answered_at).desc())
        .limit(1)
    ).first()
