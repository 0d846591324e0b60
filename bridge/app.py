"""Composition root: builds the store, connectors, Slack app, loops and HTTP app; decides nothing."""

from __future__ import annotations

import logging
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
from slack_bolt import App
from sqlalchemy import func, text
from sqlmodel import select
from starlette.applications import Starlette

from bridge.config import FileConfig, Settings
from bridge.desk import Desk
from bridge.http import build_http
from bridge.slack.listeners import commands as command_listeners
from bridge.slack.listeners import events as event_listeners
from bridge.slack.listeners import interactions as interaction_listeners
from bridge.slack.listeners.deps import ListenerDeps
from bridge.slack.roster import Roster
from bridge.slack.threads import SlackThreads, make_client
from bridge.store import migrate
from bridge.store.db import Database
from bridge.store.tables import Outbox, SlackEvent
from bridge.workers import (
    Context,
    EventProcessor,
    Loop,
    PlatformDelivery,
    Poller,
    SlackDelivery,
    recover,
    wake_snoozed,
)
from connectors.base import Connector
from connectors.x.connector import XConnector

log = logging.getLogger(__name__)


def build_connectors(settings: Settings) -> dict[str, Connector]:
    found: dict[str, Connector] = {}
    if settings.x_enabled:
        found["x"] = XConnector(
            base_url=settings.x_api_url, consumer_key=settings.x_consumer_key,
            consumer_secret=settings.x_consumer_secret, access_token=settings.x_access_token,
            access_token_secret=settings.x_access_token_secret, user_bearer_token=settings.x_user_bearer_token)
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
    socket_mode: Any = None

    def start(self, *, run_migrations: bool = True) -> None:
        ctx = self.ctx
        if run_migrations:
            migrate.upgrade(ctx.db)
        ctx.bot_user_id, _bot_id = ctx.slack.bot_identity()
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
            poller = Poller(ctx, connector)
            self.pollers[name] = poller
            self.scheduler.add_job(poller.poll_once, "interval", seconds=ctx.settings.x_poll_seconds,
                                   id=f"poll:{name}", max_instances=1, coalesce=True,
                                   next_run_time=_now_dt())
        self.scheduler.add_job(lambda: recover(ctx), "interval", seconds=60, id="recover", max_instances=1)
        self.scheduler.add_job(lambda: wake_snoozed(ctx), "interval", seconds=ctx.settings.dmbridge_sweep_seconds,
                               id="snoozes", max_instances=1, coalesce=True)
        self.scheduler.start()

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
        for wake in (self.ctx.wake_slack, self.ctx.wake_platform, self.ctx.wake_events):
            wake.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        for loop in self.loops:
            loop.join(timeout=10)
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


def build(settings: Settings, file: FileConfig | None = None, *, clock: Callable[[], float] = time.time,
          connectors: dict[str, Connector] | None = None) -> Bridge:
    """Build the whole graph from settings. Nothing starts until ``Bridge.start``."""
    file = file or FileConfig()
    db = Database(settings.database_url)
    client = make_client(settings.slack_bot_token, settings.slack_base_url)
    slack = SlackThreads(client, clock)
    found = connectors if connectors is not None else build_connectors(settings)
    roster = Roster(slack, settings.dmbridge_agents or file.agents)
    desk = Desk(file=file, roster=roster, limits=lambda: {c.platform.value: c.limits for c in found.values()},
                link=slack.thread_link)
    ctx = Context(settings=settings, file=file, db=db, slack=slack, connectors=found, desk=desk, clock=clock)
    bolt = App(client=client, signing_secret=settings.slack_signing_secret or "socket-mode",
               process_before_response=True, token_verification_enabled=False,
               request_verification_enabled=not settings.slack_app_token)
    event_listeners.register(bolt, db, clock, ctx.wake_events.set)
    deps = ListenerDeps(db=db, desk=desk, slack=slack, clock=clock, wake=ctx.wake_slack.set)
    command_listeners.register(bolt, deps)
    interaction_listeners.register(bolt, deps)
    registry = CollectorRegistry()
    registry.register(_OutboxCollector(db))
    scheduler = BackgroundScheduler(timezone="UTC")
    bridge = Bridge(ctx=ctx, bolt=bolt, http=build_http(None, lambda: {}, registry), scheduler=scheduler)
    bridge.http = build_http(bolt, bridge.health, registry)
    return bridge
