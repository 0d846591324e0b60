"""Customer profile refreshes: ``profile`` outbox rows run through the platform's ProfileLookup.

Ingest queues at most one row per conversation per UTC day, ahead of the
card in the conversation's Slack lane. A lookup that fails is given up
quickly: a missing avatar must never hold back the customer's messages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlmodel import Session

from bridge import state
from bridge.errors import DeliveryError, RetryLater
from bridge.store import outbox
from bridge.store.tables import Conversation, Outbox

if TYPE_CHECKING:
    from bridge.context import Context

log = logging.getLogger(__name__)

MAX_PROFILE_ATTEMPTS = 3


def refresh(ctx: Context, row: Outbox, conv: Conversation | None) -> Callable[[Session], None]:
    """Look the customer up (no transaction open); what to write: the new name and avatar, a card redraw if
    they changed, and the row's outcome."""
    row_id = row.id
    assert row_id is not None
    lookup = ctx.profiles.get(conv.platform) if conv is not None else None
    if conv is None or lookup is None:
        return lambda s: outbox.fail(s, row_id, "no profile lookup for this conversation")
    try:
        customer = lookup.profile(conv.account, conv.customer_id)
    except RetryLater as exc:
        reason = exc.reason
        if row.attempts >= MAX_PROFILE_ATTEMPTS:
            return lambda s: outbox.fail(s, row_id, reason)
        when = ctx.clock() + min(5.0, 2.0**row.attempts)
        return lambda s: outbox.retry_at(s, row_id, when, reason)
    except DeliveryError as exc:
        log.info("profile of %s %s not available: %s", conv.platform, conv.customer_id, exc.reason)
        reason = exc.reason
        return lambda s: outbox.fail(s, row_id, reason)
    except Exception as exc:
        log.exception("profile refresh #%s: unexpected error", row_id)
        reason = f"unexpected {type(exc).__name__}"
        return lambda s: outbox.fail(s, row_id, reason)
    conv_id, now = conv.id, ctx.clock()
    assert conv_id is not None

    def write(s: Session) -> None:
        changed = state.profile_changed(s, conv_id, customer, ("profile", row_id), now)
        if changed is None:
            outbox.fail(s, row_id, "conversation is gone")
        else:
            outbox.finish(s, row_id, "changed" if changed else "unchanged")

    return write
