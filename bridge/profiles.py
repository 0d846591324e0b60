"""Customer profile refreshes: ``profile`` outbox rows run through the platform's ProfileLookup.

Ingest queues at most one row per conversation per UTC day, ahead of the
card in the conversation's Slack lane. A lookup that fails is given up
quickly: a missing avatar must never hold back the customer's messages.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bridge.errors import DeliveryError, RetryLater
from bridge.store import outbox
from bridge.store.tables import Conversation, Outbox

if TYPE_CHECKING:
    from bridge.workers import Context

log = logging.getLogger(__name__)

MAX_PROFILE_ATTEMPTS = 3


def refresh(ctx: Context, row: Outbox, conv: Conversation | None) -> None:
    assert row.id is not None
    lookup = ctx.profiles.get(conv.platform) if conv is not None else None
    if conv is None or lookup is None:
        with ctx.db.session() as s:
            outbox.fail(s, row.id, "no profile lookup for this conversation")
        return
    try:
        customer = lookup.profile(conv.account, conv.customer_id)
    except RetryLater as exc:
        with ctx.db.session() as s:
            if row.attempts >= MAX_PROFILE_ATTEMPTS:
                outbox.fail(s, row.id, exc.reason)
            else:
                outbox.retry_at(s, row.id, ctx.clock() + min(5.0, 2.0 ** row.attempts), exc.reason)
        return
    except DeliveryError as exc:
        log.info("profile of %s %s not available: %s", conv.platform, conv.customer_id, exc.reason)
        with ctx.db.session() as s:
            outbox.fail(s, row.id, exc.reason)
        return
    with ctx.db.session() as s:
        fresh = s.get(Conversation, conv.id)
        assert fresh is not None and fresh.id is not None
        shown = (fresh.customer_name, fresh.customer_handle, fresh.customer_avatar, fresh.customer_profile_url)
        fresh.customer_name = customer.name or fresh.customer_name
        fresh.customer_handle = customer.handle or fresh.customer_handle
        fresh.customer_avatar = customer.avatar_url or fresh.customer_avatar
        fresh.customer_profile_url = customer.profile_url or fresh.customer_profile_url
        s.add(fresh)
        changed = shown != (fresh.customer_name, fresh.customer_handle, fresh.customer_avatar,
                            fresh.customer_profile_url)
        if changed and fresh.thread_ts:
            outbox.enqueue(s, key=f"card_update:profile:{row.id}", target="slack", lane=row.lane,
                           kind="card_update", payload={}, now=ctx.clock(), conversation_id=fresh.id)
        outbox.finish(s, row.id, "changed" if changed else "unchanged")
