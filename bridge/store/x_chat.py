"""X Chat: the sealed identity and the sealed events waiting for the opener."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, col, select

from bridge.domain import SealedEvent
from bridge.store.common import insert_ignore
from bridge.store.tables import XChatEvent, XChatIdentity

PENDING, OPENED, FAILED = "pending", "opened", "failed"


def store_sealed(session: Session, event: SealedEvent, now: float) -> bool:
    """Keep one sealed event; a redelivery (same account and event id) stores nothing."""
    return insert_ignore(
        session,
        XChatEvent,
        dict(
            account=event.account,
            event_id=event.event_id,
            conversation=event.conversation,
            encoded_event=event.encoded_event,
            state=PENDING,
            attempts=0,
            next_at=0.0,
            received_at=now,
        ),
    )


def due(session: Session, now: float, limit: int = 50) -> list[XChatEvent]:
    """Pending sealed events whose time has come, in the order they were stored."""
    return list(
        session.exec(
            select(XChatEvent)
            .where(col(XChatEvent.state) == PENDING, col(XChatEvent.next_at) <= now)
            .order_by(col(XChatEvent.id))
            .limit(limit)
        ).all()
    )


def next_due(session: Session) -> float | None:
    """When the earliest pending event is due (None when there is none)."""
    rows = session.exec(
        select(XChatEvent.next_at).where(col(XChatEvent.state) == PENDING).order_by(col(XChatEvent.next_at)).limit(1)
    ).all()
    return float(rows[0]) if rows else None


def settle(session: Session, row_id: int, state: str, error: str | None = None) -> bool:
    """Mark a pending event opened or failed; False when another process did already."""
    result = session.execute(
        update(XChatEvent)
        .where(col(XChatEvent.id) == row_id, col(XChatEvent.state) == PENDING)
        .values(state=state, error=error, encoded_event="" if state == OPENED else XChatEvent.encoded_event)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def postpone(session: Session, row_id: int, when: float, error: str) -> None:
    session.execute(
        update(XChatEvent)
        .where(col(XChatEvent.id) == row_id, col(XChatEvent.state) == PENDING)
        .values(next_at=when, error=error, attempts=XChatEvent.attempts + 1)
    )


def identity(session: Session) -> XChatIdentity | None:
    """The brand's sealed identity (one account per install; the newest if several were made)."""
    rows = session.exec(select(XChatIdentity).order_by(col(XChatIdentity.created_at).desc()).limit(1)).all()
    return rows[0] if rows else None


def save_identity(session: Session, user_id: str, key_version: str, sealed: str, now: float) -> None:
    row = session.get(XChatIdentity, user_id)
    if row is None:
        session.add(XChatIdentity(user_id=user_id, key_version=key_version, sealed=sealed, created_at=now))
    else:
        row.key_version, row.sealed, row.created_at = key_version, sealed, now
        session.add(row)
