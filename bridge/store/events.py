"""What came in: Slack requests, platform messages, and poll cursors."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from bridge.store.common import insert_ignore
from bridge.store.tables import Cursor, InboundEvent, SentMessage, SlackEvent


def record_slack_event(
    session: Session, *, dedupe_key: str, event_id: str | None, kind: str, payload: dict[str, Any], now: float
) -> bool:
    """Store a Slack request before it is acknowledged; a retry or duplicate stores nothing."""
    return insert_ignore(
        session,
        SlackEvent,
        dict(dedupe_key=dedupe_key, event_id=event_id, kind=kind, payload=json.dumps(payload), received_at=now),
    )


def unprocessed_slack_events(session: Session, limit: int = 50) -> list[SlackEvent]:
    return list(
        session.exec(
            select(SlackEvent).where(col(SlackEvent.processed_at).is_(None)).order_by(col(SlackEvent.id)).limit(limit)
        ).all()
    )


def mark_processed(session: Session, row_id: int, outcome: str, now: float) -> bool:
    """Mark done; False when another worker already did (the caller then rolls back)."""
    result = session.execute(
        update(SlackEvent)
        .where(col(SlackEvent.id) == row_id, col(SlackEvent.processed_at).is_(None))
        .values(processed_at=now, outcome=outcome)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def mark_failed(session: Session, row_id: int, error: str) -> None:
    """Processing this event raised: keep the error (it is then marked processed as ``failed``)."""
    session.execute(update(SlackEvent).where(col(SlackEvent.id) == row_id).values(error=error))


def still_unprocessed(session: Session, row_ids: list[int]) -> set[int]:
    """Which of these events no worker has processed yet (call inside the processing transaction)."""
    if not row_ids:
        return set()
    found = session.exec(
        select(SlackEvent.id).where(col(SlackEvent.id).in_(row_ids), col(SlackEvent.processed_at).is_(None))
    ).all()
    return {int(i) for i in found if i is not None}


def mark_all_processed(session: Session, outcomes: list[tuple[int, str]], now: float) -> None:
    """Mark a batch processed, with each event's outcome, in one statement."""
    if outcomes:
        session.execute(update(SlackEvent), [{"id": i, "processed_at": now, "outcome": o} for i, o in outcomes])


def store_inbound(
    session: Session,
    *,
    platform: str,
    account: str,
    remote_id: str,
    conversation_id: int,
    from_brand: bool,
    text: str,
    sent_at: float,
    now: float,
) -> bool:
    return insert_ignore(
        session,
        InboundEvent,
        dict(
            platform=platform,
            account=account,
            remote_id=remote_id,
            conversation_id=conversation_id,
            from_brand=from_brand,
            text=text,
            sent_at=sent_at,
            stored_at=now,
        ),
    )


def inbound_known_among(session: Session, platform: str, account: str, remote_ids: Iterable[str]) -> set[str]:
    """Which of these remote ids of one account are stored already (one statement)."""
    return _among(session, InboundEvent, platform, account, remote_ids)


def _among(
    session: Session,
    table: type[InboundEvent] | type[SentMessage],
    platform: str,
    account: str,
    remote_ids: Iterable[str],
) -> set[str]:
    """Which of these remote ids of one account ``table`` holds, in one statement."""
    wanted = sorted(set(remote_ids))
    if not wanted:
        return set()
    found = session.exec(
        select(table.remote_id).where(
            table.platform == platform, table.account == account, col(table.remote_id).in_(wanted)
        )
    ).all()
    return set(found)


def inbound_known(session: Session, platform: str, account: str, remote_id: str) -> bool:
    return (
        session.exec(
            select(InboundEvent.id).where(
                InboundEvent.platform == platform, InboundEvent.account == account, InboundEvent.remote_id == remote_id
            )
        ).first()
        is not None
    )


def record_sent(
    session: Session,
    *,
    platform: str,
    account: str,
    remote_id: str,
    conversation_id: int,
    slack_channel: str | None,
    slack_ts: str | None,
    now: float,
) -> None:
    insert_ignore(
        session,
        SentMessage,
        dict(
            platform=platform,
            account=account,
            remote_id=remote_id,
            conversation_id=conversation_id,
            slack_channel=slack_channel,
            slack_ts=slack_ts,
            sent_at=now,
        ),
    )


def sent_among(session: Session, platform: str, account: str, remote_ids: Iterable[str]) -> set[str]:
    """Which of these remote ids of one account are messages we sent (one statement)."""
    return _among(session, SentMessage, platform, account, remote_ids)


def sent_by_us(session: Session, platform: str, account: str, remote_id: str) -> bool:
    return (
        session.exec(
            select(SentMessage.id).where(
                SentMessage.platform == platform, SentMessage.account == account, SentMessage.remote_id == remote_id
            )
        ).first()
        is not None
    )


def get_cursor(session: Session, connector: str, account: str) -> str | None:
    row = session.get(Cursor, (connector, account))
    return row.value if row else None


def set_cursor(session: Session, connector: str, account: str, value: str, now: float) -> None:
    row = session.get(Cursor, (connector, account))
    if row is None:
        session.add(Cursor(connector=connector, account=account, value=value, updated_at=now))
    else:
        row.value, row.updated_at = value, now
        session.add(row)
