"""Pollers and start-up jobs for connectors: fetch with no transaction open, then store in one."""

from __future__ import annotations

import logging
import threading

from bridge.config import channel_for
from bridge.context import Context, enqueue_channel_notice
from bridge.errors import AuthFailed, RetryLater
from bridge.inbound import ingest
from bridge.loops import backoff
from bridge.store import events
from bridge.store.locks import ProcessLock
from connectors.base import Connector, PollingConnector

log = logging.getLogger(__name__)


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
        if self.lock is not None and not self.lock.try_acquire():
            return 0  # another process polls this account
        try:
            if not self.started:
                c.start()
                self.started = True
            with ctx.db.session() as s:
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
            if first:
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
        self.failures = 0
        ctx.health[c.platform.value] = "ok"
        ctx.auth_state(c.platform.value).works()
        with ctx.db.session() as s:
            new = ingest(
                s,
                c.name,
                c.account,
                batch,
                lambda account: channel_for(ctx.settings, ctx.toml, c.name, account),
                ctx.clock(),
                auto_assign=ctx.toml.assignment.mode == "round_robin",
            )
        if new:
            ctx.wake_slack.set()
            ctx.wake_sla.set()
        return new


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
