"""Pollers and start-up jobs for connectors: fetch with no transaction open, then store in one."""

from __future__ import annotations

import logging
import threading

from sqlmodel import Session

from bridge.config import channel_for
from bridge.context import Context, enqueue_channel_notice
from bridge.domain import Batch, SealedEvent
from bridge.errors import AuthFailed, NotStarted, RetryLater
from bridge.inbound import ingest
from bridge.loops import backoff
from bridge.store import events, x_chat
from bridge.store.locks import ProcessLock
from bridge.store.tables import XChatEvent
from connectors.base import Connector, PollingConnector
from connectors.xchat.connector import XChatConnector

log = logging.getLogger(__name__)

IDLE_SECONDS = 5.0  # the opener's look for due events when nothing woke it


def store_found(ctx: Context, s: Session, connector: str, account: str, batch: Batch, *, route: str) -> int:
    """What a poll or the opener found, stored in the caller's transaction; channels by ``dmbridge.toml``'s routes
    for ``route``. Returns how many messages were new."""
    return ingest(
        s,
        connector,
        account,
        batch,
        lambda acct: channel_for(ctx.settings, ctx.toml, route, acct),
        ctx.clock(),
        auto_assign=ctx.toml.assignment.mode == "round_robin",
        toml=ctx.toml,
    )


class Poller:
    """One connector's poll: fetch with no transaction open, then store events and cursor together.

    With a ``lock`` only the process holding it polls (one poller per account across processes).
    """

    def __init__(self, ctx: Context, connector: PollingConnector, lock: ProcessLock | None = None) -> None:
        self.ctx, self.connector, self.lock = ctx, connector, lock
        self.not_before = 0.0
        self.started = False
        self.failures = 0
        self.first_done = threading.Event()

    def poll_once(self) -> int:
        try:
            return self._poll()
        finally:
            self.first_done.set()  # tried once: succeeded (the mark is set), failed, or another process leads

    def _poll(self) -> int:
        ctx, c = self.ctx, self.connector
        now = ctx.clock()
        if now < self.not_before:
            return 0
        try:
            if not self.started:  # every process, leader or not: its deliveries and webhooks need the identity
                c.start()
                self.started = True
                self._works()
            if self.lock is not None and not self.lock.try_acquire():
                return 0  # another process polls this account
            with ctx.db.read() as s:  # the cursor is written with the batch it came with, in one transaction
                cursor = events.get_cursor(s, c.name, c.account)
            batch = c.poll(cursor)
        except RetryLater as exc:
            self.failures += 1
            self.not_before = exc.retry_at if exc.retry_at else now + backoff(self.failures)
            log.warning("%s poll postponed until %.0f: %s", c.name, self.not_before, exc.reason)
            return 0
        except AuthFailed as exc:
            state = ctx.auth_state(c.platform.value)
            first = state.refused(now)
            ctx.health[c.platform.value] = exc.reason
            self.not_before = state.paused_until
            if first and (self.lock is None or self.lock.try_acquire()):  # said by the poller only, not by all
                log.error("%s poll paused: %s", c.name, exc.reason)
                with ctx.db.session() as s:
                    enqueue_channel_notice(
                        s,
                        ctx,
                        c.platform.value,
                        state.since,
                        f":warning: {exc.reason}. New {c.platform.label} messages are not "
                        "being fetched until the credential works again (see /healthz).",
                    )
            return 0
        self._works()
        with ctx.db.session() as s:
            new = store_found(ctx, s, c.name, c.account, batch, route=c.name)
        if new:
            ctx.wake_slack.set()
            ctx.wake_sla.set()
            if batch.sealed:  # X Chat events found by reconciliation: opened at once, not at the next look
                ctx.wake_sealed.set()
        return new

    def _works(self) -> None:
        """X answered: the failures, the health line and the credential's pause are over."""
        self.failures = 0
        self.ctx.health[self.connector.platform.value] = "ok"
        self.ctx.auth_state(self.connector.platform.value).works()


class Starter:
    """Starts a push-only connector (learns its identity); retried by the scheduler until it succeeds."""

    def __init__(self, ctx: Context, connector: Connector) -> None:
        self.ctx, self.connector = ctx, connector
        self.started = threading.Event()

    def run(self) -> None:
        if self.started.is_set():
            return
        c = self.connector
        try:
            c.start()
        except (RetryLater, AuthFailed) as exc:
            self.ctx.health[c.platform.value] = exc.reason
            log.warning("%s start failed, retrying: %s", c.platform.value, exc.reason)
            return
        self.ctx.health[c.platform.value] = "ok"
        self.started.set()


class Opener:
    """Opens the stored sealed X Chat events: decrypt with no transaction open, then one transaction that
    ingests the messages and settles the rows (opened, or failed with the reason). X unreachable or a
    refused credential: the batch waits with a backoff. Only the process holding ``lock`` opens, so
    messages are mirrored in the order they were stored."""

    def __init__(self, ctx: Context, connector: XChatConnector, lock: ProcessLock | None = None) -> None:
        self.ctx, self.connector, self.lock = ctx, connector, lock
        self.failures = 0
        self.opened = 0  # events settled by this process (tests wait on it)

    def step(self) -> float:
        """One batch; returns the seconds until the next is due (the loop is also woken by new events)."""
        ctx, c = self.ctx, self.connector
        if self.lock is not None and not self.lock.try_acquire():
            return IDLE_SECONDS
        try:
            account = c.account
        except NotStarted:
            return 1.0  # not started yet (its poller starts it)
        now = ctx.clock()
        with ctx.db.read() as s:
            rows = x_chat.due(s, now)
            upcoming = x_chat.next_due(s) if not rows else None
        if not rows:
            return min(IDLE_SECONDS, max(upcoming - now, 0.1)) if upcoming is not None else IDLE_SECONDS
        sealed = [SealedEvent(r.account, r.conversation, r.event_id, r.encoded_event) for r in rows]
        try:
            opened = {o.event_id: o for o in c.open(sealed)}
        except (RetryLater, AuthFailed) as exc:
            return self._wait(rows, now, exc.reason, exc.retry_at if isinstance(exc, RetryLater) else None)
        except Exception as exc:  # unforeseen (chatxdk, a bug): the batch waits, and gives up after the attempt cap
            log.exception("opening X Chat events failed")
            return self._wait(rows, now, f"{type(exc).__name__}: {str(exc)[:200]}", None, capped=True)
        self.failures = 0
        messages = [o.message for r in rows if (o := opened.get(r.event_id)) is not None and o.message is not None]
        with ctx.db.session() as s:
            # X's routes: X Chat and legacy DMs of an account share its desk channel
            store_found(ctx, s, c.name, account, Batch(messages=tuple(messages), cursor=None), route="x")
            for row in rows:
                assert row.id is not None
                result = opened.get(row.event_id)
                error = "not opened" if result is None else result.error
                x_chat.settle(s, row.id, x_chat.FAILED if error else x_chat.OPENED, error)
        for row in rows:
            if (result := opened.get(row.event_id)) is None or result.error:
                log.warning("X Chat event %s could not be opened: %s", row.event_id, result.error if result else "-")
        self.opened += len(rows)
        ctx.wake_slack.set()
        ctx.wake_sla.set()
        return 0.0

    def _wait(
        self, rows: list[XChatEvent], now: float, reason: str, retry_at: float | None, capped: bool = False
    ) -> float:
        """The batch waits for ``retry_at`` (a rate limit's reset) or a backoff; an unforeseen failure counts
        against ``DMBRIDGE_MAX_ATTEMPTS``, after which the event fails with its reason and the rest go on."""
        self.failures += 1
        when = retry_at or now + backoff(self.failures)
        with self.ctx.db.session() as s:
            for row in rows:
                assert row.id is not None
                if capped and row.attempts + 1 >= self.ctx.settings.dmbridge_max_attempts:
                    x_chat.settle(s, row.id, x_chat.FAILED, reason)
                else:
                    x_chat.postpone(s, row.id, when, reason)
        log.warning("X Chat events wait until %.0f: %s", when, reason)
        return max(when - now, 0.1)
