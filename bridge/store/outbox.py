"""The outbox: durable deliveries in both directions, ordered per lane.

A row is claimed with a compare-and-set from ``pending`` to ``sending``, so
two workers (threads or processes) never send the same row; it is sent only
when no older row of its lane is still pending or sending, which keeps each
conversation's messages in order.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import and_, exists, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from bridge.store.common import insert_ignore
from bridge.store.tables import Outbox

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"


def enqueue(session: Session, *, key: str, target: str, lane: str, kind: str, payload: dict[str, Any],
            now: float, conversation_id: int | None = None, not_before: float = 0.0) -> bool:
    """Add a delivery; a second call with the same ``key`` adds nothing."""
    return insert_ignore(session, Outbox, dict(
        dedupe_key=key, target=target, lane=lane, kind=kind, conversation_id=conversation_id,
        payload=json.dumps(payload), state=PENDING, attempts=0, next_attempt_at=max(now, not_before),
        created_at=now, waiting_shown=False,
    ))


def due(session: Session, target: str, now: float, limit: int = 20) -> list[Outbox]:
    """Rows ready to send: due, and first in their lane."""
    older = aliased(Outbox)
    blocked = exists().where(and_(col(older.lane) == col(Outbox.lane), col(older.id) < col(Outbox.id),
                                  col(older.state).in_((PENDING, SENDING))))
    stmt = (select(Outbox)
            .where(Outbox.target == target, Outbox.state == PENDING, Outbox.next_attempt_at <= now, ~blocked)
            .order_by(col(Outbox.id)).limit(limit))
    return list(session.exec(stmt).all())


def claim(session: Session, row_id: int, now: float) -> bool:
    """pending → sending, atomically; False when someone else has it."""
    result = session.execute(update(Outbox).where(col(Outbox.id) == row_id, col(Outbox.state) == PENDING)
                             .values(state=SENDING, claimed_at=now, attempts=Outbox.attempts + 1))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def finish(session: Session, row_id: int, result: str | None = None) -> None:
    session.execute(update(Outbox).where(col(Outbox.id) == row_id).values(state=SENT, result=result))


def fail(session: Session, row_id: int, error: str) -> None:
    session.execute(update(Outbox).where(col(Outbox.id) == row_id).values(state=FAILED, last_error=error))


def retry_at(session: Session, row_id: int, when: float, error: str, waiting_shown: bool | None = None) -> None:
    values: dict[str, Any] = dict(state=PENDING, next_attempt_at=when, last_error=error, claimed_at=None)
    if waiting_shown is not None:
        values["waiting_shown"] = waiting_shown
    session.execute(update(Outbox).where(col(Outbox.id) == row_id).values(**values))


def recover_stale(session: Session, older_than: float) -> int:
    """Rows left in ``sending`` by a crashed worker go back to ``pending``."""
    result = session.execute(update(Outbox).where(col(Outbox.state) == SENDING,
                                                  col(Outbox.claimed_at) < older_than)
                             .values(state=PENDING, claimed_at=None))
    return int(result.rowcount)  # type: ignore[attr-defined]


def next_due_at(session: Session, target: str) -> float | None:
    row = session.exec(select(Outbox.next_attempt_at).where(Outbox.target == target, Outbox.state == PENDING)
                       .order_by(col(Outbox.next_attempt_at)).limit(1)).first()
    return row


def load(row: Outbox) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(row.payload)
    return data
