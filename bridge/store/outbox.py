"""The outbox: durable deliveries in both directions, ordered per lane.

A row is claimed by moving it from ``pending`` to ``sending`` in one
statement that also re-checks that no older row of its lane is pending or
sending, so two workers (threads or processes) never send the same row and
each conversation's messages keep their order. On PostgreSQL the row is
selected ``FOR UPDATE SKIP LOCKED`` inside that statement: a worker racing
another for the same row skips it instead of waiting. On SQLite the update
is a compare-and-set under ``BEGIN IMMEDIATE``.

The claim records the claiming process (``claimed_by``); rows a dead
process left in ``sending`` go back to ``pending`` marked ``uncertain``, and
the worker verifies those against the other side before sending again.
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import and_, case, exists, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from bridge.deliveries import KINDS, Delivery
from bridge.store.common import insert_ignore
from bridge.store.tables import Outbox

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"

_ADAPTERS: dict[str, TypeAdapter[Any]] = {}


def _adapter(cls: type[Delivery]) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(cls.kind)
    if adapter is None:
        adapter = _ADAPTERS[cls.kind] = TypeAdapter(cls)
    return adapter


def encode(delivery: Delivery) -> str:
    """The payload column for ``delivery`` (validated, so a wrong field type fails at enqueue, not at send)."""
    data = delivery.payload()
    _adapter(type(delivery)).validate_python({**data, "key": delivery.key, "conversation_id": delivery.conversation_id})
    return json.dumps(data)


def decode(kind: str, key: str, conversation_id: int | None, payload: str) -> Delivery:
    """The typed delivery a stored row holds; ``ValueError`` for an unknown kind or a malformed payload."""
    cls = KINDS.get(kind)
    if cls is None:
        raise ValueError(f"unknown delivery kind {kind!r}")
    data = json.loads(payload) if payload else {}
    names = {f.name for f in fields(cls)}
    if not isinstance(data, dict) or not set(data) <= names:
        raise ValueError(f"malformed {kind} payload")
    value: Delivery = _adapter(cls).validate_python({**data, "key": key, "conversation_id": conversation_id})
    return value


def enqueue(session: Session, delivery: Delivery, now: float, not_before: float = 0.0) -> bool:
    """Add a delivery; a second one with the same key adds nothing."""
    return insert_ignore(
        session,
        Outbox,
        dict(
            dedupe_key=delivery.key,
            target=delivery.target,
            lane=delivery.lane,
            kind=delivery.kind,
            conversation_id=delivery.conversation_id,
            payload=encode(delivery),
            state=PENDING,
            attempts=0,
            next_attempt_at=max(now, not_before),
            created_at=now,
            waiting_shown=False,
        ),
    )


def delivery(row: Outbox) -> Delivery:
    """The typed delivery ``row`` holds (``ValueError`` if it holds none)."""
    return decode(row.kind, row.dedupe_key, row.conversation_id, row.payload)


def queued(session: Session, delivery: Delivery) -> bool:
    """``delivery`` (by its key) was enqueued, whatever became of it."""
    return session.exec(select(Outbox.id).where(Outbox.dedupe_key == delivery.key)).first() is not None


def row_for(session: Session, key: str) -> Outbox | None:
    return session.exec(select(Outbox).where(Outbox.dedupe_key == key)).first()


_older = aliased(Outbox)


def _blocked() -> Any:
    """An older row of the same lane is still pending or sending."""
    return exists().where(
        and_(
            col(_older.lane) == col(Outbox.lane),
            col(_older.id) < col(Outbox.id),
            col(_older.state).in_((PENDING, SENDING)),
        )
    )


def due(session: Session, target: str, now: float, limit: int = 20) -> list[Outbox]:
    """Rows ready to send: due, and first in their lane."""
    stmt = (
        select(Outbox)
        .where(Outbox.target == target, Outbox.state == PENDING, Outbox.next_attempt_at <= now, ~_blocked())
        # ``id + 0``: ordered by the bare id, SQLite (with statistics) walks the whole table in id order to
        # skip a sort, hoping to meet due rows early; they are at the end, behind the sent history
        # (bench/history.py). The due rows are few: reading them by index and sorting is cheap.
        .order_by(col(Outbox.id) + 0)
        .limit(limit)
    )
    return list(session.exec(stmt).all())


def claim(session: Session, row_id: int, now: float, owner: str | None = None) -> bool:
    """pending → sending for ``owner``, atomically and only while first in its lane; False otherwise."""
    return bool(claim_many(session, [row_id], now, owner))


def claim_many(session: Session, row_ids: list[int], now: float, owner: str | None = None) -> list[Outbox]:
    """Claim those of ``row_ids`` that are still pending and first in their lane; the claimed rows, by id.

    On PostgreSQL rows another worker is claiming are skipped (``FOR UPDATE
    SKIP LOCKED``), not waited for.
    """
    if not row_ids:
        return []
    ready = and_(col(Outbox.id).in_(row_ids), col(Outbox.state) == PENDING, ~_blocked())
    if session.get_bind().dialect.name == "postgresql":
        lockable = select(Outbox.id).where(ready).with_for_update(skip_locked=True, of=Outbox)
        where: Any = col(Outbox.id).in_(lockable.scalar_subquery())
    else:
        where = ready
    claimed = (
        session.execute(
            update(Outbox)
            .where(where)
            .values(state=SENDING, claimed_at=now, claimed_by=owner, attempts=Outbox.attempts + 1)
            .returning(col(Outbox.id))
        )
        .scalars()
        .all()
    )
    if not claimed:
        return []
    rows = session.exec(
        select(Outbox)
        .where(col(Outbox.id).in_(claimed))
        .order_by(col(Outbox.id))
        .execution_options(populate_existing=True)
    ).all()
    return list(rows)


def lock(session: Session, row_ids: list[int | None]) -> None:
    """Lock these rows, ascending by id (PostgreSQL; under SQLite's ``BEGIN IMMEDIATE`` nothing is needed).

    Outcome writes take their claimed rows this way, after their conversations
    (``conversations.lock``), before updating them one by one.
    """
    wanted = sorted({i for i in row_ids if i is not None})
    if wanted and session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(Outbox.id).where(col(Outbox.id).in_(wanted)).order_by(col(Outbox.id)).with_for_update(key_share=True)
        ).all()


def finish(session: Session, row_id: int, result: str | None = None) -> None:
    session.execute(update(Outbox).where(col(Outbox.id) == row_id).values(state=SENT, result=result, uncertain=False))


def finish_many(session: Session, results: list[tuple[int, str | None]]) -> None:
    """Several rows sent, in one statement (executemany by primary key)."""
    if results:
        session.execute(
            update(Outbox),
            [{"id": i, "state": SENT, "result": r, "uncertain": False} for i, r in sorted(results, key=lambda x: x[0])],
        )  # by id


def fail(session: Session, row_id: int, error: str) -> None:
    session.execute(update(Outbox).where(col(Outbox.id) == row_id).values(state=FAILED, last_error=error))


def retry_at(
    session: Session,
    row_id: int,
    when: float,
    error: str,
    waiting_shown: bool | None = None,
    uncertain: bool | None = None,
    counted: bool = True,
) -> None:
    """Back to ``pending`` until ``when``; ``uncertain`` when the attempt may have reached the other side.
    Not ``counted``: the claim's attempt is given back (none was made, or none that was the delivery's fault:
    a pause, a rate limit, a wait for the thread post), so a long outage cannot use up the attempts that the
    cap on transient failures counts."""
    values: dict[str, Any] = dict(
        state=PENDING, next_attempt_at=when, last_error=error, claimed_at=None, claimed_by=None
    )
    if not counted:
        values["attempts"] = case((col(Outbox.attempts) > 0, col(Outbox.attempts) - 1), else_=0)
    if waiting_shown is not None:
        values["waiting_shown"] = waiting_shown
    if uncertain is not None:
        values["uncertain"] = uncertain
    session.execute(update(Outbox).where(col(Outbox.id) == row_id).values(**values))


def attempted_with_text(session: Session, *, platform: str, account: str, remote_conversation: str, text: str) -> bool:
    """A delivery to this platform conversation with exactly this text was attempted and its outcome is not
    recorded yet (``sending``, or back in the queue as ``uncertain``): an echo of it is ours."""
    from bridge.store.tables import Conversation

    candidates = session.exec(
        select(Outbox.payload)
        .join(Conversation, col(Conversation.id) == Outbox.conversation_id)
        .where(
            Conversation.platform == platform,
            Conversation.account == account,
            Conversation.remote_id == remote_conversation,
            Outbox.target == "platform",
            or_(col(Outbox.state) == SENDING, and_(col(Outbox.state) == PENDING, col(Outbox.uncertain))),
        )
    ).all()
    return any(json.loads(payload).get("text") == text for payload in candidates)


def claim_owners(session: Session) -> set[str]:
    """The processes that hold rows in ``sending``."""
    found = session.exec(
        select(Outbox.claimed_by).where(Outbox.state == SENDING, col(Outbox.claimed_by).is_not(None)).distinct()
    ).all()
    return {str(owner) for owner in found if owner}


def release_claims(session: Session, owner: str, older_than: float | None = None) -> int:
    """Rows ``owner`` left in ``sending`` (all of them, or those claimed before ``older_than``) go back to
    ``pending``, to be verified before resending."""
    where = and_(col(Outbox.state) == SENDING, col(Outbox.claimed_by) == owner)
    if older_than is not None:
        where = and_(where, col(Outbox.claimed_at) < older_than)
    result = session.execute(
        update(Outbox).where(where).values(state=PENDING, claimed_at=None, claimed_by=None, uncertain=True)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def give_back(session: Session, row_ids: list[int], owner: str, when: float, error: str) -> int:
    """Claims of ``owner`` on ``row_ids`` back to ``pending`` (due at ``when``), to be verified first."""
    result = session.execute(
        update(Outbox)
        .where(col(Outbox.id).in_(row_ids), col(Outbox.state) == SENDING, col(Outbox.claimed_by) == owner)
        .values(state=PENDING, claimed_at=None, claimed_by=None, uncertain=True, next_attempt_at=when, last_error=error)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def recover_stale(session: Session, older_than: float) -> int:
    """Rows in ``sending`` with no recorded owner (claimed before owners were recorded) and old enough."""
    result = session.execute(
        update(Outbox)
        .where(col(Outbox.state) == SENDING, col(Outbox.claimed_by).is_(None), col(Outbox.claimed_at) < older_than)
        .values(state=PENDING, claimed_at=None, uncertain=True)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def next_due_at(session: Session, target: str) -> float | None:
    row = session.exec(
        select(Outbox.next_attempt_at)
        .where(Outbox.target == target, Outbox.state == PENDING)
        .order_by(col(Outbox.next_attempt_at))
        .limit(1)
    ).first()
    return row


def listing(session: Session, *, states: tuple[str, ...], target: str | None = None, limit: int = 50) -> list[Outbox]:
    """Rows in ``states`` (oldest first), for operators; an index range, never the sent history unless asked."""
    stmt = select(Outbox).where(col(Outbox.state).in_(states))
    if target:
        stmt = stmt.where(Outbox.target == target)
    return list(session.exec(stmt.order_by(col(Outbox.id)).limit(limit)).all())


def _not_operable(row: Outbox | None) -> str | None:
    """Why an operator may not retry or drop ``row`` (only pending and failed rows are theirs to change)."""
    if row is None:
        return "no such row"
    return None if row.state in (PENDING, FAILED) else f"it is {row.state}"


def operator_retry(session: Session, row_id: int, now: float) -> str | None:
    """A failed or waiting row goes again now with a fresh attempt count; why not, when it cannot."""
    row = session.get(Outbox, row_id)
    if (refusal := _not_operable(row)) or row is None:
        return refusal
    session.execute(
        update(Outbox)
        .where(col(Outbox.id) == row_id)
        .values(
            state=PENDING,
            attempts=0,
            next_attempt_at=now,
            claimed_at=None,
            claimed_by=None,
            last_error=f"retried by an operator (was: {row.last_error or row.state})"[:500],
        )
    )
    return None


def operator_drop(session: Session, row_id: int) -> str | None:
    """A pending or failed row is given up for good (kept as ``failed``, so its dedupe key stays)."""
    if refusal := _not_operable(session.get(Outbox, row_id)):
        return refusal
    session.execute(
        update(Outbox)
        .where(col(Outbox.id) == row_id)
        .values(state=FAILED, claimed_at=None, claimed_by=None, last_error="dropped by an operator")
    )
    return None


def results(session: Session, conversation_id: int, kind: str) -> set[str]:
    """What this conversation's sent deliveries of ``kind`` answered (uploads: their Slack file ids)."""
    rows = session.exec(
        select(Outbox.result).where(
            col(Outbox.conversation_id) == conversation_id, col(Outbox.kind) == kind, col(Outbox.state) == SENT
        )
    ).all()
    return {str(r) for r in rows if r}
