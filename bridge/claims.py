"""Claims that always end: outcomes written with retries, claims given back on any error, recovery.

A delivery loop claims rows (``pending`` → ``sending``), calls out with no
transaction open, then writes the outcomes in one transaction. If that write
fails (a deadlock on PostgreSQL, a database blip) the rows must not stay
``sending`` under this live process, which ``recover()`` would otherwise skip
for good: the write is retried, and failing that every claim of the batch is
given back (``pending``, ``uncertain``: verified before any resend). Should
even that fail, this process's own claims older than
``DMBRIDGE_CLAIM_TIMEOUT`` are taken back by ``recover()``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from sqlmodel import Session

from bridge.store import conversations, outbox
from bridge.store.locks import ProcessLock
from bridge.store.tables import Outbox

if TYPE_CHECKING:
    from bridge.context import Context

log = logging.getLogger(__name__)

WRITE_TRIES = 3
STALE_CLAIM_SECONDS = 120.0


def write_outcomes(ctx: Context, claimed: Iterable[Outbox], writes: list[Callable[[Session], None]]) -> bool:
    """Apply ``writes`` in one transaction, retried; on failure give every claim back. True when written.

    Each write is replayable: a failed transaction is rolled back whole, so
    running them again from the start is safe.
    """
    rows = list(claimed)
    error: Exception | None = None
    for _ in range(WRITE_TRIES):
        try:
            with ctx.db.session() as s:
                # the rows' conversations first, then the rows, each by id (bridge.store.conversations.lock);
                # a card's outcome sets the conversation's thread_ts, a unique column: the stronger lock
                conversations.lock(s, [r.conversation_id for r in rows], key_change=True)
                outbox.lock(s, [r.id for r in rows])
                for write in writes:
                    write(s)
            return True
        except Exception as exc:  # deadlock, serialization failure, lost connection …
            error = exc
            log.warning("writing %d delivery outcomes failed (%s); trying again", len(rows), type(exc).__name__)
    give_back(ctx, rows, f"outcome not recorded: {type(error).__name__}")
    return False


def give_back(ctx: Context, rows: list[Outbox], reason: str) -> int:
    """This process's claims on ``rows`` go back to the queue, to be verified before any resend."""
    ids = [r.id for r in rows if r.id is not None]
    if not ids:
        return 0
    try:
        with ctx.db.session() as s:
            n = outbox.give_back(s, ids, ctx.instance_id, ctx.clock(), reason)
        ctx.wake_slack.set()
        ctx.wake_platform.set()
        return n
    except Exception:  # the database is away: recover() takes the claims back after DMBRIDGE_CLAIM_TIMEOUT
        log.exception("could not give %d claims back; recovery will after the claim timeout", len(ids))
        return 0


def recover(ctx: Context) -> int:
    """Rows left in ``sending`` go back to the queue, marked to be verified first.

    Those of a dead process (its ``instance:{id}`` lock can be taken, see
    ``bridge.store.locks``); this process's own claims older than
    ``DMBRIDGE_CLAIM_TIMEOUT`` (an outcome that could not be written); and rows
    with no recorded owner after ``STALE_CLAIM_SECONDS``.
    """
    with ctx.db.session() as s:
        owners = outbox.claim_owners(s) - {ctx.instance_id}
    total = 0
    for owner in owners:
        lock = ProcessLock(ctx.db, f"instance:{owner}")
        if not lock.try_acquire():
            continue  # alive
        try:
            with ctx.db.session() as s:
                n = outbox.release_claims(s, owner)
            total += n
            log.warning("%d deliveries interrupted by a stopped process go back to the queue, verified first", n)
        finally:
            lock.release(forget=True)
    now = ctx.clock()
    with ctx.db.session() as s:
        total += outbox.recover_stale(s, now - STALE_CLAIM_SECONDS)
        own = outbox.release_claims(s, ctx.instance_id, older_than=now - ctx.settings.dmbridge_claim_timeout)
    if own:
        log.warning("%d deliveries of this process were claimed too long ago; back to the queue, verified first", own)
    total += own
    if total:
        ctx.wake_slack.set()
        ctx.wake_platform.set()
    return total
