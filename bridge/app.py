"""Composition root: builds the store, connectors, Slack app, loops and HTTP app; decides nothing."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from slack_bolt import Ack, App, BoltResponse
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import func, text
from sqlmodel import select
from starlette.applications import Starlette

from bridge.config import FileConfig, Settings
from bridge.http import build_http
from bridge.slack.listeners import commands as command_listeners
from bridge.slack.listeners import events as event_listeners
from bridge.slack.threads import SlackThreads, make_client
from bridge.store import migrate
from bridge.store.db import Database
from bridge.store.locks import ProcessLock
from bridge.store.tables import Outbox, SlackEvent
from bridge.workers import Context, EventProcessor, Loop, PlatformDelivery, Poller, SlackDelivery, recover
from connectors.base import Connector
from connectors.x.connector import XConnector

log = logging.getLogger(__name__)
RECOVER_SECONDS = 5.0


class _SkippedPollFilter(logging.Filter):
    """A poll still running when the next one is due is normal (slow API, backlog); APScheduler warns each time."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


def quiet_skipped_runs() -> None:
    logger = logging.getLogger("apscheduler.scheduler")
    if not any(isinstance(f, _SkippedPollFilter) for f in logger.filters):
        logger.addFilter(_SkippedPollFilter())


def build_connectors(settings: Settings) -> dict[str, Connector]:
    found: dict[str, Connector] = {}
    if settings.x_enabled:
        found["x"] = XConnector(
            base_url=settings.x_api_url, consumer_key=settings.x_consumer_key,
            consumer_secret=settings.x_consumer_secret, access_token=settings.x_access_token,
            access_token_secret=settings.x_access_token_secret, user_bearer_token=settings.x_user_bearer_token,
            timeout=settings.dmbridge_http_timeout)
    return found


class _OutboxCollector(Collector):
    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily("dmbridge_outbox_rows", "Outbox rows by target and state", labels=["target", "state"])
        with self.db.session() as s:
            for target, state, n in s.exec(select(Outbox.target, Outbox.state, func.count())
                                           .group_by(Outbox.target, Outbox.state)).all():
                g.add_metric([target, state], float(n))
        yield g
        e = GaugeMetricFamily("dmbridge_slack_events_unprocessed", "Stored Slack events not yet processed")
        with self.db.session() as s:
            n = s.exec(select(func.count()).select_from(SlackEvent)
                       .where(SlackEvent.processed_at == None)).one()  # noqa: E711
        e.add_metric([], float(n))
        yield e


@dataclass
class Bridge:
    """Everything ``dmbridge serve`` runs, built once and passed down."""

    ctx: Context
    bolt: App
    http: Starlette
    scheduler: BackgroundScheduler
    stop_event: threading.Event = field(default_factory=threading.Event)
    loops: list[Loop] = field(default_factory=list)
    pollers: dict[str, Poller] = field(default_factory=dict)
    locks: list[ProcessLock] = field(default_factory=list)

    def start(self, *, run_migrations: bool = True) -> None:
        ctx = self.ctx
        if run_migrations:
            migrate.upgrade(ctx.db)
        ctx.bot_user_id, ctx.bot_id = ctx.slack.bot_identity()
        alive = ProcessLock(ctx.db, f"instance:{ctx.instance_id}")  # held while this process lives
        if not alive.try_acquire():
            raise RuntimeError("could not take this process's instance lock")
        self.locks.append(alive)
        recover(ctx)
        slack, platform, processor = SlackDelivery(ctx), PlatformDelivery(ctx), EventProcessor(ctx)
        self.loops = [
            Loop("slack-events", processor.step, ctx.wake_events, self.stop_event),
            Loop("slack-delivery", slack.step, ctx.wake_slack, self.stop_event),
            Loop("platform-delivery", platform.step, ctx.wake_platform, self.stop_event),
        ]
        for loop in self.loops:
            loop.start()
        for name, connector in ctx.connectors.items():
            lock = ProcessLock(ctx.db, f"poll:{name}")  # one poller per account across processes
            self.locks.append(lock)
            poller = Poller(ctx, connector, lock)
            self.pollers[name] = poller
            self.scheduler.add_job(poller.poll_once, "interval", seconds=ctx.settings.x_poll_seconds,
                                   id=f"poll:{name}", max_instances=1, coalesce=True,
                                   next_run_time=_now_dt())
        self.scheduler.add_job(lambda: recover(ctx), "interval", seconds=RECOVER_SECONDS, id="recover",
                               max_instances=1)
        self.scheduler.start()

    def stop(self) -> None:
        self.stop_event.set()
        for wake in (self.ctx.wake_slack, self.ctx.wake_platform, self.ctx.wake_events):
            wake.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        for loop in self.loops:
            loop.join(timeout=10)
        for lock in reversed(self.locks):
            lock.release(forget=lock.name.startswith("instance:"))
        self.ctx.db.dispose()

    def health(self) -> dict[str, Any]:
        state: dict[str, Any] = {"ok": True, "checks": dict(self.ctx.health)}
        try:
            with self.ctx.db.session() as s:
                s.exec(text("SELECT 1"))  # type: ignore[call-overload]
            state["checks"]["database"] = "ok"
        except Exception as exc:  # the endpoint reports, it does not raise
            state["checks"]["database"] = f"error: {type(exc).__name__}"
        dead = [loop.name for loop in self.loops if not loop.is_alive()]
        if dead:
            state["checks"]["loops"] = "stopped: " + ", ".join(dead)
        state["ok"] = all(v == "ok" for v in state["checks"].values())
        return state


def _now_dt() -> Any:
    from datetime import datetime

    return datetime.now(UTC)


def _own_echoes(ctx: Context) -> Callable[..., BoltResponse | None]:
    """Bolt middleware: Slack sends each of our own posts back as a ``message`` event; acknowledge those
    at once and store nothing (they would only be classified "bot message" and dropped). Also
    acknowledges ``app_rate_limited`` notices, which no event listener can take."""

    def middleware(body: dict[str, Any], next: Callable[[], BoltResponse | None]) -> BoltResponse | None:
        if isinstance(body, dict) and body.get("type") == "app_rate_limited":
            # Slack tells us it dropped events for a minute; nothing to store, and a 404 would be retried
            log.warning("Slack rate-limited event deliveries to this app (minute %s)", body.get("minute_rate_limited"))
            return BoltResponse(status=200, body="")
        event = body.get("event") if isinstance(body, dict) else None
        typed = isinstance(event, dict) and isinstance(event.get("type"), str)
        if body.get("type") == "event_callback" and not typed:
            return BoltResponse(status=200, body="")  # nothing any listener could take; a 404 would be retried
        if (isinstance(event, dict) and event.get("type") == "message" and ctx.bot_id
                and event.get("bot_id") == ctx.bot_id and event.get("subtype") in (None, "bot_message")):
            return BoltResponse(status=200, body="")
        return next()

    return middleware


def _acknowledge_unhandled(ack: Ack) -> None:
    ack()


def _own_echo_check(ctx: Context, signing_secret: str) -> Callable[[bytes, dict[str, str]], bool]:
    """The HTTP fast path for our own posts echoed back: signature verified, then recognised by bot id."""
    verifier = SignatureVerifier(signing_secret)

    def check(body: bytes, headers: dict[str, str]) -> bool:
        if not ctx.bot_id or b'"bot_id"' not in body:
            return False
        if not verifier.is_valid_request(body, headers):
            return False  # bolt answers it (401)
        try:
            envelope = json.loads(body)
        except ValueError:
            return False
        event = envelope.get("event") if isinstance(envelope, dict) else None
        return (isinstance(event, dict) and event.get("type") == "message" and event.get("bot_id") == ctx.bot_id
                and event.get("subtype") in (None, "bot_message"))

    return check


def build(settings: Settings, file: FileConfig | None = None, *, clock: Callable[[], float] = time.time,
          connectors: dict[str, Connector] | None = None) -> Bridge:
    """Build the whole graph from settings. Nothing starts until ``Bridge.start``."""
    file = file or FileConfig()
    quiet_skipped_runs()
    db = Database(settings.database_url)
    client = make_client(settings.slack_bot_token, settings.slack_base_url, timeout=settings.dmbridge_http_timeout)
    ctx = Context(settings=settings, file=file, db=db, slack=SlackThreads(client, clock),
                  connectors=connectors if connectors is not None else build_connectors(settings), clock=clock)
    bolt = App(client=client, signing_secret=settings.slack_signing_secret or "socket-mode",
               process_before_response=True, token_verification_enabled=False,
               request_verification_enabled=not settings.slack_app_token)
    bolt.middleware(_own_echoes(ctx))
    event_listeners.register(bolt, db, clock, ctx.wake_events.set)
    command_listeners.register(bolt)
    # registered last, so only events no listener above takes reach it: acknowledged (a 404 would make
    # Slack retry) and not stored
    bolt.event(re.compile(".*"))(_acknowledge_unhandled)
    registry = CollectorRegistry()
    registry.register(_OutboxCollector(db))
    scheduler = BackgroundScheduler(timezone="UTC")
    bridge = Bridge(ctx=ctx, bolt=bolt, http=build_http(None, lambda: {}, registry), scheduler=scheduler)
    skip = _own_echo_check(ctx, settings.slack_signing_secret) if settings.slack_signing_secret else None
    bridge.http = build_http(bolt, bridge.health, registry, skip)
    return bridge
