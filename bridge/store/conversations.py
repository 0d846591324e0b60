"""Conversations: the unique mapping platform conversation ↔ Slack thread."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, inspect, or_, tuple_
from sqlmodel import Session, col, select

from bridge.domain import Customer
from bridge.store.common import insert_ignore
from bridge.store.tables import Conversation

RemoteKey = tuple[str, str, str]
"""(platform, account, remote id) of a conversation."""


def get_or_create(
    session: Session,
    *,
    platform: str,
    account: str,
    remote_id: str,
    customer: Customer,
    channel: str,
    now: float,
    loaded: dict[RemoteKey, Conversation] | None = None,
) -> tuple[Conversation, bool]:
    """The conversation for this remote id, created when new (safe under concurrent callers). ``loaded``: the
    conversations already read in this transaction (``load_remote``), looked in first and added to."""
    key = (platform, account, remote_id)
    known = loaded.get(key) if loaded is not None else None
    if known is not None:
        _refresh_customer(known, customer)
        return known, False
    created = insert_ignore(
        session,
        Conversation,
        dict(
            platform=platform,
            account=account,
            remote_id=remote_id,
            customer_id=customer.id,
            customer_name=customer.name,
            customer_handle=customer.handle,
            customer_avatar=customer.avatar_url,
            customer_profile_url=customer.profile_url,
            channel=channel,
            status="open",
            created_at=now,
        ),
    )
    conv = session.exec(
        select(Conversation).where(
            Conversation.platform == platform, Conversation.account == account, Conversation.remote_id == remote_id
        )
    ).one()
    if not created:
        _refresh_customer(conv, customer)
    if loaded is not None:
        loaded[key] = conv
    return conv, created


def _refresh_customer(conv: Conversation, customer: Customer) -> None:
    """Keep name and avatar current; the card shows what was true when it was drawn."""
    if customer.name and customer.name != customer.id:
        conv.customer_name = customer.name
        conv.customer_handle = customer.handle or conv.customer_handle
        conv.customer_avatar = customer.avatar_url or conv.customer_avatar
        conv.customer_profile_url = customer.profile_url or conv.customer_profile_url


_HELD = "dmbridge.conversations"
"""``session.info`` key: the conversations ``_lock`` read, kept referenced for the transaction's life."""
_THREADS = "dmbridge.threads"
"""``session.info`` key: the conversations ``lock_threads`` read, by (channel, thread_ts), for ``by_thread``."""


def by_thread(session: Session, channel: str, thread_ts: str) -> Conversation | None:
    """The conversation of this thread; from what ``lock_threads`` read in this transaction when it still
    matches (the objects are the session's own, so a change made since shows), else read now."""
    read: dict[tuple[str, str], Conversation] = session.info.get(_THREADS, {})
    conv = read.get((channel, thread_ts))
    fresh = conv is not None and conv in session and not inspect(conv).deleted
    if conv is not None and fresh and conv.channel == channel and conv.thread_ts == thread_ts:
        return conv
    return session.exec(
        select(Conversation).where(Conversation.channel == channel, Conversation.thread_ts == thread_ts)
    ).first()


def get(session: Session, conversation_id: int) -> Conversation | None:
    return session.get(Conversation, conversation_id)


def lock(session: Session, ids: Iterable[int | None], *, key_change: bool = False) -> None:
    """Lock these conversation rows, ascending by id, before the transaction touches any other row.

    Every transaction that writes several conversation rows, or conversation
    rows and outbox rows, takes its conversations first this way (see
    docs/design.md, "Transactions"): row locks are then always acquired in one
    order and two writers cannot wait on each other. ``key_change`` when the
    transaction may change a unique column (``thread_ts``): it takes the
    stronger lock up front instead of upgrading midway. SQLite needs no lock
    (``BEGIN IMMEDIATE`` already holds the one write lock); on both, the rows
    are read whole, so the transaction's ``session.get`` finds them unasked.
    """
    wanted = sorted({i for i in ids if i is not None})
    if wanted:
        _lock(session, col(Conversation.id).in_(wanted), key_change)


def load_remote(session: Session, keys: Iterable[RemoteKey]) -> dict[RemoteKey, Conversation]:
    """The existing conversations of these (platform, account, remote id)s, in one statement; on PostgreSQL
    also locked as ``lock`` does, ascending by id (the ingest's, before it writes anything)."""
    by_account: dict[tuple[str, str], set[str]] = {}
    for platform, account, remote_id in keys:
        by_account.setdefault((str(platform), account), set()).add(remote_id)
    if not by_account:
        return {}
    where = or_(
        *(
            and_(
                col(Conversation.platform) == platform,
                col(Conversation.account) == account,
                col(Conversation.remote_id).in_(sorted(remote_ids)),
            )
            for (platform, account), remote_ids in sorted(by_account.items())
        )
    )
    return {(c.platform, c.account, c.remote_id): c for c in _lock(session, where, False)}


def lock_threads(session: Session, threads: Iterable[tuple[str, str]]) -> None:
    """``lock`` for the conversations of these (channel, thread_ts)s (the Slack event processor's); what it
    reads answers ``by_thread`` for the rest of the transaction."""
    wanted = sorted(set(threads))
    if wanted:
        where = tuple_(col(Conversation.channel), col(Conversation.thread_ts)).in_(wanted)
        found = _lock(session, where, False)
        session.info[_THREADS] = {(c.channel, c.thread_ts): c for c in found if c.thread_ts is not None}


def _lock(session: Session, where: Any, key_change: bool) -> list[Conversation]:
    """The conversations ``where`` selects, read whole (later ``session.get`` calls find them without a query)
    and, on PostgreSQL, locked."""
    query = select(Conversation).where(where).order_by(col(Conversation.id))
    if session.get_bind().dialect.name == "postgresql":
        # FOR NO KEY UPDATE is what an ordinary UPDATE takes: it does not block other transactions' inserts
        # that reference the row (foreign keys take KEY SHARE). The rows are locked as the sort emits them, by id.
        query = query.with_for_update(key_share=not key_change)
    found = list(session.exec(query).all())
    session.info.setdefault(_HELD, []).extend(found)  # the identity map holds unchanged objects only weakly
    return found
