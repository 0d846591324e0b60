"""Templates, the audit trail, and the desk's queries over conversations."""

from __future__ import annotations

from sqlalchemy import exists, func, update
from sqlmodel import Session, col, select

from bridge.store.common import insert_ignore
from bridge.store.tables import Audit, AutoReplySent, Conversation, CsatSurvey, InboundEvent, SentMessage, Template


def audit(session: Session, *, conversation_id: int | None, actor: str, action: str, detail: str, now: float) -> int:
    row = Audit(conversation_id=conversation_id, actor=actor, action=action, detail=detail, at=now)
    session.add(row)
    session.flush()
    assert row.id is not None
    return row.id


def history(session: Session, conversation_id: int, limit: int = 200) -> tuple[list[InboundEvent], list[Audit]]:
    inbound = session.exec(
        select(InboundEvent)
        .where(InboundEvent.conversation_id == conversation_id)
        .order_by(col(InboundEvent.sent_at).desc())
        .limit(limit)
    ).all()
    actions = session.exec(
        select(Audit).where(Audit.conversation_id == conversation_id).order_by(col(Audit.at).desc()).limit(limit)
    ).all()
    return list(inbound), list(actions)


def last_auto_assignee(session: Session) -> str | None:
    row = session.exec(
        select(Audit.detail).where(Audit.action == "autoassign").order_by(col(Audit.id).desc()).limit(1)
    ).first()
    return row or None


def open_counts(session: Session, users: list[str]) -> dict[str, int]:
    rows = session.exec(
        select(Conversation.assignee, func.count())
        .where(col(Conversation.assignee).in_(users), Conversation.status != "resolved")
        .group_by(Conversation.assignee)
    ).all()
    return {str(user): int(n) for user, n in rows}


def listing(session: Session, scope: str, user: str, limit: int = 50) -> list[Conversation]:
    stmt = select(Conversation).where(Conversation.status != "resolved", col(Conversation.thread_ts).is_not(None))
    if scope == "mine":
        stmt = stmt.where(Conversation.assignee == user)
    elif scope == "unassigned":
        stmt = stmt.where(col(Conversation.assignee).is_(None))
    elif scope == "escalated":
        stmt = stmt.where(col(Conversation.team).is_not(None))
    return list(session.exec(stmt.order_by(col(Conversation.id)).limit(limit)).all())


def status_counts(session: Session) -> dict[str, int]:
    rows = session.exec(select(Conversation.status, func.count()).group_by(Conversation.status)).all()
    return {str(status): int(n) for status, n in rows}


def due_snoozes(session: Session, now: float) -> list[Conversation]:
    return list(
        session.exec(
            select(Conversation).where(Conversation.status == "snoozed", col(Conversation.snoozed_until) <= now)
        ).all()
    )


def wake(session: Session, conversation_id: int, until: float) -> bool:
    """snoozed → open, once: False when someone else already woke it."""
    result = session.execute(
        update(Conversation)
        .where(
            col(Conversation.id) == conversation_id,
            col(Conversation.status) == "snoozed",
            col(Conversation.snoozed_until) == until,
        )
        .values(status="open", snoozed_until=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def get_template(session: Session, name: str) -> Template | None:
    return session.exec(select(Template).where(Template.name == name)).first()


def all_templates(session: Session) -> list[Template]:
    return list(session.exec(select(Template).order_by(col(Template.name))).all())


def save_template(session: Session, name: str, text: str, by: str, now: float) -> bool:
    """Insert or replace; True when it is new."""
    if insert_ignore(session, Template, dict(name=name, text=text, updated_by=by, updated_at=now)):
        return True
    session.execute(update(Template).where(col(Template.name) == name).values(text=text, updated_by=by, updated_at=now))
    return False


def delete_template(session: Session, name: str) -> bool:
    row = get_template(session, name)
    if row is None:
        return False
    session.delete(row)
    return True


def sla_touch(conv: Conversation, now: float) -> None:
    """The conversation's timeline changed: its SLA is evaluated at the next sweep."""
    conv.sla_next_at = now


def sla_due(session: Session, now: float, limit: int = 500) -> list[int]:
    """Conversations whose SLA must be evaluated now: one indexed range scan."""
    rows = session.exec(
        select(Conversation.id)
        .where(col(Conversation.sla_next_at) <= now)
        .order_by(col(Conversation.sla_next_at))
        .limit(limit)
    ).all()
    return [int(r) for r in rows if r is not None]


def next_sla_at(session: Session) -> float | None:
    return session.exec(select(func.min(Conversation.sla_next_at))).one()


def timeline_rows(
    session: Session, conversation_ids: list[int]
) -> dict[int, tuple[list[tuple[float, bool]], list[float], list[tuple[float, str]]]]:
    """What SLA clocks are made of, per conversation, in three queries: (sent_at, from_brand) of platform
    messages, our deliveries' times, and (at, action) of status changes. dmbridge's automatic messages are not
    an agent's answer, and a CSAT answer is not a customer waiting: both are left out (``bridge.automatic``)."""
    found: dict[int, tuple[list[tuple[float, bool]], list[float], list[tuple[float, str]]]] = {
        i: ([], [], []) for i in conversation_ids
    }
    for cid, t, brand in session.exec(
        select(InboundEvent.conversation_id, InboundEvent.sent_at, InboundEvent.from_brand).where(
            col(InboundEvent.conversation_id).in_(conversation_ids),
            ~exists().where(
                col(CsatSurvey.conversation_id) == col(InboundEvent.conversation_id),
                col(CsatSurvey.answer_id) == col(InboundEvent.remote_id),
            ),
        )
    ).all():
        found[int(cid)][0].append((float(t), bool(brand)))
    for cid, t in session.exec(
        select(SentMessage.conversation_id, SentMessage.sent_at).where(
            col(SentMessage.conversation_id).in_(conversation_ids),
            ~exists().where(
                col(AutoReplySent.conversation_id) == col(SentMessage.conversation_id),
                col(AutoReplySent.remote_id) == col(SentMessage.remote_id),
            ),
        )
    ).all():
        found[int(cid)][1].append(float(t))
    for audited, t, action in session.exec(
        select(Audit.conversation_id, Audit.at, Audit.action).where(
            col(Audit.conversation_id).in_(conversation_ids), col(Audit.action).in_(("snooze", "resolve", "reopen"))
        )
    ).all():
        if audited is not None:
            found[int(audited)][2].append((float(t), str(action)))
    return found


def active_between(session: Session, since: float, until: float) -> list[Conversation]:
    """Conversations with a message either way, or a resolve, in ``[since, until)``."""
    ids = set(
        session.exec(
            select(InboundEvent.conversation_id).where(
                col(InboundEvent.sent_at) >= since, col(InboundEvent.sent_at) < until
            )
        ).all()
    )
    ids |= set(
        session.exec(
            select(SentMessage.conversation_id).where(
                col(SentMessage.sent_at) >= since, col(SentMessage.sent_at) < until
            )
        ).all()
    )
    ids |= {
        i
        for i in session.exec(
            select(Audit.conversation_id).where(
                Audit.action == "resolve", col(Audit.at) >= since, col(Audit.at) < until
            )
        ).all()
        if i is not None
    }
    if not ids:
        return []
    return list(session.exec(select(Conversation).where(col(Conversation.id).in_(ids))).all())
