"""Composition root: builds the store, connectors, Slack app, loops and HTTP app; decides nothing."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import CollectorRegistry
from slack_bolt import Ack, App, BoltResponse
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import text
from sqlmodel import select
from starlette.applications import Starlette

from bridge import logs
from bridge import metrics as engine_metrics
from bridge.claims import recover
from bridge.config import FileConfig, Settings, channel_for, desk_channels, secret_from
from bridge.context import Context, wake_snoozed
from bridge.desk import Desk
from bridge.domain import Batch, Platform
from bridge.errors import ConfigError
from bridge.http import build_http
from bridge.inbound import store_batch
from bridge.loops import Loop
from bridge.platform_delivery import PlatformHandler
from bridge.pollers import Poller, Starter
from bridge.processor import EventProcessor
from bridge.runner import Runner
from bridge.sla_runner import SlaRunner, report_text
from bridge.slack.api import SlackApi, make_client
from bridge.slack.listeners import commands as command_listeners
from bridge.slack.listeners import events as event_listeners
from bridge.slack.listeners import interactions as interaction_listeners
from bridge.slack.listeners.deps import ListenerDeps
from bridge.slack.roster import Roster
from bridge.slack_delivery import SlackHandler
from bridge.store import migrate
from bridge.store.db import Database
from bridge.store.locks import ProcessLock
from bridge.store.retention import RetentionJob
from bridge.store.tables import Conversation
from bridge.x_tokens import TokenStore
from connectors.base import Connector, PollingConnector, ProfileLookup, WebhookReceiver
from connectors.meta.connector import MetaApp, MetaConnector, MetaPage
from connectors.meta.graph import Graph
from connectors.meta.webhook import MetaWebhook
from connectors.webhook.connector import GenericConnector, Source
from connectors.webhook.webhook import GenericWebhook
from connectors.x.connector import XConnector
from connectors.x.oauth import TokenEndpoint
from connectors.x.webhook import XWebhook

log = logging.getLogger(__name__)
RECOVER_SECONDS = 5.0


class _SkippedPollFilter(logging.Filter):
    """A poll still running when the next one is due is normal (slow API, backlog); APScheduler warns each time."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


def recent_report(ctx: Context, seconds: float = 60.0) -> Callable[[float], str]:
    """App Home's figures for the last 7 days, computed at most once per ``seconds`` of the bridge's clock (each
    publish would otherwise read a week of timelines)."""
    lock, last = threading.Lock(), [float("-inf")]
    text = [""]

    def report(now: float) -> str:
        with lock:
            if now - last[0] >= seconds or now < last[0]:
                last[0], text[0] = now, report_text(ctx.db, ctx.toml, 7, now)
            return text[0]
    return report


def quiet_skipped_runs() -> None:
    logger = logging.getLogger("apscheduler.scheduler")
    if not any(isinstance(f, _SkippedPollFilter) for f in logger.filters):
        logger.addFilter(_SkippedPollFilter())


@dataclass
class Channels:
    """The configured connectors, by role: senders by platform, pollers and webhook receivers by name."""

    senders: dict[str, Connector] = field(default_factory=dict)
    polled: dict[str, PollingConnector] = field(default_factory=dict)
    receivers: dict[str, WebhookReceiver] = field(default_factory=dict)
    profiles: dict[str, ProfileLookup] = field(default_factory=dict)


def build_channels(settings: Settings, file: FileConfig, environ: Mapping[str, str], *,
                   db: Database | None = None, clock: Callable[[], float] = time.time) -> Channels:
    found = Channels()
    if settings.x_enabled:
        x = XConnector(
            base_url=settings.x_api_url, consumer_key=settings.x_consumer_key,
            consumer_secret=settings.x_consumer_secret, access_token=settings.x_access_token,
            access_token_secret=settings.x_access_token_secret, user_bearer_token=settings.x_user_bearer_token,
            timeout=settings.dmbridge_http_timeout,
            tokens=x_token_store(settings, db or Database(settings.database_url), clock)
            if settings.x_oauth2_refreshing else None)
        found.senders["x"] = found.polled["x"] = x
        if settings.x_webhooks:
            if not settings.x_consumer_secret:
                raise ConfigError("X_WEBHOOKS needs X_CONSUMER_SECRET (it signs X's webhook deliveries)")
            found.receivers["x"] = XWebhook(x, settings.x_consumer_secret)
    if settings.meta_enabled:
        _add_meta(found, settings, file, environ)
    if file.generic.sources:
        sources = {s.name: Source(name=s.name, secret=secret_from(environ, s.secret_env, f"generic source {s.name}"),
                                  callback_url=s.callback_url, signed_timestamp=s.signed_timestamp)
                   for s in file.generic.sources}
        found.senders["generic"] = GenericConnector(sources)
        found.receivers["generic"] = GenericWebhook(sources)
    return found


def x_token_store(settings: Settings, db: Database, clock: Callable[[], float] = time.time) -> TokenStore:
    """The stored X OAuth 2.0 tokens of ``X_CLIENT_ID`` (``dmbridge x-auth``; ``doctor`` reads their status)."""
    endpoint = TokenEndpoint(settings.x_token_url, settings.x_client_id, settings.x_client_secret,
                             timeout=settings.dmbridge_http_timeout, clock=clock)
    return TokenStore(db, endpoint, clock=clock)


def _add_meta(found: Channels, settings: Settings, file: FileConfig, environ: Mapping[str, str]) -> None:
    if not settings.meta_verify_token:
        raise ConfigError("META_APP_SECRET is set but META_VERIFY_TOKEN is not")
    pages = {p.id: MetaPage(
        token=secret_from(environ, p.token_env, f"Meta account {p.id}") if p.token_env
        else settings.meta_page_access_token,
        human_agent_days=settings.meta_human_agent_days if p.human_agent_days is None else p.human_agent_days)
        for p in file.meta.pages}
    if not settings.meta_page_access_token and not pages:
        raise ConfigError("Meta needs META_PAGE_ACCESS_TOKEN or [[meta.pages]] in dmbridge.toml")
    default = MetaPage(token=settings.meta_page_access_token, human_agent_days=settings.meta_human_agent_days)
    app = MetaApp(graph=Graph(settings.meta_graph_url), pages=pages, default=default)
    for connector in (MetaConnector(app, Platform.MESSENGER), MetaConnector(app, Platform.INSTAGRAM)):
        found.senders[connector.platform.value] = connector
        found.profiles[connector.platform.value] = connector
    found.receivers["meta"] = MetaWebhook(app, app_secret=settings.meta_app_secret,
                                          verify_token=settings.meta_verify_token)


def _wake_desk(ctx: Context) -> None:
    """A desk action was stored: deliver its notices, and book its SLA change at once."""
    ctx.wake_slack.set()
    ctx.wake_sla.set()


@dataclass
class Bridge:
    """Everything ``dmbridge serve`` runs, built once and passed down."""

    ctx: Context
    bolt: App
    http: Starlette
    scheduler: BackgroundScheduler
    sla: SlaRunner
    stop_event: threading.Event = field(default_factory=threading.Event)
    channels: Channels = field(default_factory=Channels)
    loops: list[Loop] = field(default_factory=list)
    pollers: dict[str, Poller] = field(default_factory=dict)
    socket_mode: Any = None
    starters: dict[str, Starter] = field(default_factory=dict)
    locks: list[ProcessLock] = field(default_factory=list)
    desk_channels: set[str] = field(default_factory=set)  # where stored Slack messages are kept (slim.py)

    def start(self, *, run_migrations: bool = True) -> None:
        ctx = self.ctx
        if run_migrations:
            migrate.upgrade(ctx.db)
        with ctx.db.read() as s:  # conversations from before a route changed keep their threads' replies
            self.desk_channels.update(str(c) for c in s.exec(select(Conversation.channel).distinct()).all())
        ctx.bot_user_id, ctx.bot_id = ctx.slack.bot_identity()
        alive = ProcessLock(ctx.db, f"instance:{ctx.instance_id}")  # held while this process lives
        if not alive.try_acquire():
            raise RuntimeError("could not take this process's instance lock")
        self.locks.append(alive)
        recover(ctx)
        self.slack_runner = Runner(ctx, SlackHandler(ctx, home_report=recent_report(ctx)))
        self.platform_runner = Runner(ctx, PlatformHandler(ctx))
        slack, platform, processor = self.slack_runner, self.platform_runner, EventProcessor(ctx)
        self.loops = [
            Loop("slack-events", processor.step, ctx.wake_events, self.stop_event),
            Loop("slack-delivery", slack.step, ctx.wake_slack, self.stop_event),
            Loop("platform-delivery", platform.step, ctx.wake_platform, self.stop_event),
            # the SLA sweep: every DMBRIDGE_SWEEP_SECONDS, and at once when a timeline changes (wake_sla)
            Loop("sla", self._sla_step, ctx.wake_sla, self.stop_event),
        ]
        for loop in self.loops:
            loop.start()
        for name, polled in self.channels.polled.items():
            lock = ProcessLock(ctx.db, f"poll:{name}")  # one poller per account across processes
            self.locks.append(lock)
            poller = Poller(ctx, polled, lock)
            self.pollers[name] = poller
            self.scheduler.add_job(poller.poll_once, "interval", seconds=ctx.settings.x_interval,
                                   id=f"poll:{name}", max_instances=1, coalesce=True,
                                   next_run_time=_now_dt())
        polled_ids = {id(c) for c in self.channels.polled.values()}
        for key, sender in ctx.connectors.items():
            if id(sender) in polled_ids:
                continue
            starter = Starter(ctx, sender)
            self.starters[key] = starter
            self.scheduler.add_job(starter.run, "interval", seconds=30, id=f"start:{key}", max_instances=1,
                                   coalesce=True, next_run_time=_now_dt())
        self.scheduler.add_job(lambda: recover(ctx), "interval", seconds=RECOVER_SECONDS, id="recover",
                               max_instances=1)
        self.scheduler.add_job(lambda: wake_snoozed(ctx), "interval", seconds=ctx.settings.dmbridge_sweep_seconds,
                               id="snoozes", max_instances=1, coalesce=True)
        retention = RetentionJob(ctx.db, ctx.toml.retention, ctx.clock)
        self.scheduler.add_job(retention.run, "interval", seconds=ctx.toml.retention.seconds("every"),
                               id="retention", max_instances=1, coalesce=True, next_run_time=_now_dt())
        self.scheduler.start()

    def _sla_step(self) -> float:
        self._sla_sweep()
        return self.ctx.settings.dmbridge_sweep_seconds

    def _sla_sweep(self) -> None:
        """The periodic safety net; it also books a precise run for the next due time before the next sweep."""
        if self.sla.sweep():
            self.ctx.wake_slack.set()
        nxt = self.sla.next_at()
        if nxt is None:
            return
        delay = nxt - self.ctx.clock()
        if 0 < delay < self.ctx.settings.dmbridge_sweep_seconds:
            from datetime import datetime, timedelta

            self.scheduler.add_job(self._sla_sweep, "date", id="sla-precise", replace_existing=True,
                                   run_date=datetime.now(UTC) + timedelta(seconds=delay + 0.05))

    def connect_socket_mode(self) -> None:
        """With SLACK_APP_TOKEN: receive events, commands and interactivity over Slack's WebSocket."""
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        self.socket_mode = SocketModeHandler(self.bolt, self.ctx.settings.slack_app_token)
        self.socket_mode.connect()

    def stop(self) -> None:
        if self.socket_mode is not None:
            self.socket_mode.close()
            self.socket_mode = None
        self.stop_event.set()
        for wake in (self.ctx.wake_slack, self.ctx.wake_platform, self.ctx.wake_events, self.ctx.wake_sla):
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
            with self.ctx.db.read() as s:  # never queues behind a writer
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
          environ: Mapping[str, str] | None = None) -> Bridge:
    """Build the whole graph from settings. Nothing starts until ``Bridge.start``.

    ``environ`` is where the secrets named in ``dmbridge.toml`` are read (default: the process environment).
    """
    file = file or FileConfig()
    quiet_skipped_runs()
    db = Database(settings.database_url)
    channels = build_channels(settings, file, os.environ if environ is None else environ, db=db, clock=clock)
    client = make_client(settings.slack_bot_token, settings.slack_base_url, timeout=settings.dmbridge_http_timeout)
    slack = SlackApi(client, clock)
    roster = Roster(slack, settings.dmbridge_agents or file.agents, admins=file.admins)
    senders = channels.senders
    desk = Desk(file=file, roster=roster, limits=lambda: {c.platform.value: c.limits for c in senders.values()},
                link=slack.thread_link, desk_channels=(settings.dmbridge_channel, *(r.channel for r in file.routes)))
    ctx = Context(settings=settings, toml=file, db=db, slack=slack, connectors=senders, profiles=channels.profiles,
                  desk=desk, clock=clock)
    bolt = App(client=client, signing_secret=settings.slack_signing_secret or "socket-mode",
               process_before_response=True, token_verification_enabled=False)
    logs.quiet()  # bolt has just copied the root level onto its loggers
    bolt.middleware(_own_echoes(ctx))
    kept_channels = desk_channels(settings, file)  # Bridge.start adds the channels of existing conversations
    event_listeners.register(bolt, db, clock, ctx.wake_events.set, kept_channels)
    deps = ListenerDeps(db=db, desk=desk, slack=slack, clock=clock, wake=lambda: _wake_desk(ctx))
    command_listeners.register(bolt, deps)
    interaction_listeners.register(bolt, deps)
    # registered last, so only events no listener above takes reach it: acknowledged (a 404 would make
    # Slack retry) and not stored
    bolt.event(re.compile(".*"))(_acknowledge_unhandled)
    registry = CollectorRegistry()
    ctx.failed_event = engine_metrics.register(registry, db, clock, channels.receivers)
    scheduler = BackgroundScheduler(timezone="UTC")

    def store(route: str, batch: Batch) -> int:
        new = store_batch(db, route, batch, lambda account: channel_for(settings, file, route, account), clock(),
                          auto_assign=file.assignment.mode == "round_robin")
        ctx.wake_platform.set()
        ctx.wake_slack.set()
        ctx.wake_sla.set()
        return new

    bridge = Bridge(ctx=ctx, bolt=bolt, http=build_http(None, lambda: {}, registry, {}, store),
                    scheduler=scheduler, sla=SlaRunner(db, desk, file.policies(), clock), channels=channels,
                    desk_channels=kept_channels)
    skip = _own_echo_check(ctx, settings.slack_signing_secret) if settings.slack_signing_secret else None
    # Socket Mode: events arrive over the WebSocket and /slack/events is not served at all
    bridge.http = build_http(None if settings.slack_app_token else bolt, bridge.health, registry,
                             channels.receivers, store, skip, body_seconds=settings.dmbridge_body_seconds)
    return bridge
