"""Composition root: builds the store, Slack app, loops and HTTP app around the connectors of ``bridge.wiring``;
decides nothing."""

from __future__ import annotations

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
from slack_bolt import App
from sqlalchemy import text
from sqlmodel import select
from starlette.applications import Starlette

from bridge import logs, stats, x_costs
from bridge import metrics as engine_metrics
from bridge.claims import recover
from bridge.config import Settings, channel_for, desk_channels, secret_from
from bridge.context import Context, wake_snoozed
from bridge.crm import CrmClient
from bridge.desk import Desk
from bridge.domain import Batch
from bridge.http import build_http
from bridge.inbound import store_batch
from bridge.loops import Loop
from bridge.platform_delivery import PlatformHandler
from bridge.pollers import Opener, Poller, Starter
from bridge.processor import EventProcessor
from bridge.runner import Runner
from bridge.sla_runner import SlaRunner, report_text
from bridge.slack.api import SlackApi, make_client
from bridge.slack.echoes import acknowledge_unhandled, own_echo_check, own_echoes
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
from bridge.toml_config import FileConfig
from bridge.wiring import Channels, build_channels
from bridge.x_costs import Meter
from connectors.base import all_limits

log = logging.getLogger(__name__)
RECOVER_SECONDS = 5.0
USAGE_SECONDS = 30.0  # how often this process adds its X calls to today's x_usage rows


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
    opener: Opener | None = None
    meter: Meter | None = None  # X Chat's calls and deliveries, added to today's x_usage rows
    locks: list[ProcessLock] = field(default_factory=list)
    desk_channels: set[str] = field(default_factory=set)  # where stored Slack messages are kept (slim.py)
    platform: PlatformHandler | None = None  # replies to customers; also serves /media links (built with the app)

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
        self.platform = self.platform or PlatformHandler(ctx)
        self.platform_runner = Runner(ctx, self.platform)
        slack, platform, processor = self.slack_runner, self.platform_runner, EventProcessor(ctx)
        way = ctx.edge.give_way
        self.loops = [
            Loop("slack-events", processor.step, ctx.wake_events, self.stop_event, way),
            Loop("slack-delivery", slack.step, ctx.wake_slack, self.stop_event, way),
            Loop("platform-delivery", platform.step, ctx.wake_platform, self.stop_event, way),
            # the SLA sweep: every DMBRIDGE_SWEEP_SECONDS, and at once when a timeline changes (wake_sla)
            Loop("sla", self._sla_step, ctx.wake_sla, self.stop_event, way),
        ]
        if self.channels.opener is not None:  # X Chat: the stored sealed events, opened in one process
            lock = ProcessLock(ctx.db, "open:xchat")
            self.locks.append(lock)
            self.opener = Opener(ctx, self.channels.opener, lock)
            self.loops.append(Loop("x-chat-opener", self.opener.step, ctx.wake_sealed, self.stop_event, way))
        for loop in self.loops:
            loop.start()
        for name, polled in self.channels.polled.items():
            lock = ProcessLock(ctx.db, f"poll:{name}")  # one poller per account across processes
            self.locks.append(lock)
            poller = Poller(ctx, polled, lock)
            self.pollers[name] = poller
            self.scheduler.add_job(
                poller.poll_once,
                "interval",
                seconds=ctx.settings.x_interval,
                id=f"poll:{name}",
                max_instances=1,
                coalesce=True,
                next_run_time=_now_dt(),
            )
        polled_ids = {id(c) for c in self.channels.polled.values()}
        for key, sender in ctx.connectors.items():
            if id(sender) in polled_ids:
                continue
            starter = Starter(ctx, sender)
            self.starters[key] = starter
            self.scheduler.add_job(
                starter.run,
                "interval",
                seconds=30,
                id=f"start:{key}",
                max_instances=1,
                coalesce=True,
                next_run_time=_now_dt(),
            )
        self.scheduler.add_job(lambda: recover(ctx), "interval", seconds=RECOVER_SECONDS, id="recover", max_instances=1)
        if self.meter is not None:
            self.scheduler.add_job(self.meter.flush, "interval", seconds=USAGE_SECONDS, id="x-usage", max_instances=1)
        self.scheduler.add_job(
            lambda: wake_snoozed(ctx),
            "interval",
            seconds=ctx.settings.dmbridge_sweep_seconds,
            id="snoozes",
            max_instances=1,
            coalesce=True,
        )
        retention = RetentionJob(ctx.db, ctx.toml.retention, ctx.clock)
        self.scheduler.add_job(
            retention.run,
            "interval",
            seconds=ctx.toml.retention.seconds("every"),
            id="retention",
            max_instances=1,
            coalesce=True,
            next_run_time=_now_dt(),
        )
        stats.schedule_digest(self.scheduler, ctx)  # [digest]
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

            self.scheduler.add_job(
                self._sla_sweep,
                "date",
                id="sla-precise",
                replace_existing=True,
                run_date=datetime.now(UTC) + timedelta(seconds=delay + 0.05),
            )

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
        for wake in (
            self.ctx.wake_slack,
            self.ctx.wake_platform,
            self.ctx.wake_events,
            self.ctx.wake_sla,
            self.ctx.wake_sealed,
        ):
            wake.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        for loop in self.loops:
            loop.join(timeout=10)
        if self.meter is not None:
            try:
                self.meter.flush()
            except Exception:  # the last counts are an estimate; stopping must not fail for them
                log.warning("X usage of this process not written at stop", exc_info=True)
        for lock in reversed(self.locks):
            lock.release(forget=lock.name.startswith("instance:"))
        if not any(loop.is_alive() for loop in self.loops):  # a loop still in a Slack call keeps its connection
            self.ctx.slack.close()
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
        if self.meter is not None:
            try:
                with self.ctx.db.read() as s:
                    counts = x_costs.today(s, self.ctx.clock())
                state["x_spend"] = x_costs.summary(counts, self.ctx.settings.x_daily_budget_usd)
            except Exception as exc:  # the endpoint reports, it does not raise
                state["x_spend"] = f"error: {type(exc).__name__}"
        return state


def _now_dt() -> Any:
    from datetime import datetime

    return datetime.now(UTC)


def crm_client(db: Database, file: FileConfig, environ: Mapping[str, str], slack: SlackApi) -> CrmClient | None:
    """``[crm]``'s client, its secret read from the environment variable it names (refused at start if unset)."""
    if file.crm is None:
        return None
    secret = secret_from(environ, file.crm.secret_env, "[crm]")
    return CrmClient(db, file.crm.url, secret, slack.thread_link)


def build(
    settings: Settings,
    file: FileConfig | None = None,
    *,
    clock: Callable[[], float] = time.time,
    environ: Mapping[str, str] | None = None,
) -> Bridge:
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
    desk = Desk(
        file=file,
        roster=roster,
        limits=lambda: all_limits(senders),
        link=slack.thread_link,
        desk_channels=(settings.dmbridge_channel, *(r.channel for r in file.routes)),
    )
    ctx = Context(
        settings=settings,
        toml=file,
        db=db,
        slack=slack,
        connectors=senders,
        profiles=channels.profiles,
        desk=desk,
        clock=clock,
    )
    bolt = App(
        client=client,
        signing_secret=settings.slack_signing_secret or "socket-mode",
        process_before_response=True,
        token_verification_enabled=False,
    )
    logs.quiet()  # bolt has just copied the root level onto its loggers
    bolt.middleware(own_echoes(ctx))
    kept_channels = desk_channels(settings, file)  # Bridge.start adds the channels of existing conversations
    event_listeners.register(bolt, db, clock, ctx.wake_events.set, kept_channels)
    deps = ListenerDeps(db=db, desk=desk, slack=slack, clock=clock, wake=lambda: _wake_desk(ctx))
    command_listeners.register(bolt, deps)
    interaction_listeners.register(bolt, deps)
    # registered last, so only events no listener above takes reach it: acknowledged (a 404 would make
    # Slack retry) and not stored
    bolt.event(re.compile(".*"))(acknowledge_unhandled)
    registry = CollectorRegistry()
    ctx.health.update(channels.problems)  # configured but not started (X Chat without its keys)
    ctx.failed_event = engine_metrics.register(registry, db, clock, channels.receivers)
    scheduler = BackgroundScheduler(timezone="UTC")

    def store(route: str, batch: Batch) -> int:
        new = store_batch(
            db,
            route,
            batch,
            lambda account: channel_for(settings, file, route, account),
            clock(),
            auto_assign=file.assignment.mode == "round_robin",
            toml=file,
        )
        ctx.wake_platform.set()
        ctx.wake_slack.set()
        ctx.wake_sla.set()
        if batch.sealed:
            ctx.wake_sealed.set()
            if bridge.meter is not None:
                bridge.meter.deliveries += len(batch.sealed)  # X bills each delivered event, repeats too
        return new

    bridge = Bridge(
        ctx=ctx,
        bolt=bolt,
        http=build_http(None, lambda: {}, registry, {}, store),
        scheduler=scheduler,
        sla=SlaRunner(db, desk, file.policies(), clock),
        channels=channels,
        desk_channels=kept_channels,
    )
    bridge.platform = PlatformHandler(ctx, crm=crm_client(db, file, os.environ if environ is None else environ, slack))
    if settings.x_enabled:  # what X bills: the legacy DM connector's calls and X Chat's, and chat deliveries
        counted = [calls for c in channels.polled.values() if isinstance(calls := getattr(c, "calls", None), dict)]
        bridge.meter = Meter(db, lambda: x_costs.total(counted), clock)
    skip = own_echo_check(ctx, settings.slack_signing_secret) if settings.slack_signing_secret else None
    # Socket Mode: events arrive over the WebSocket and /slack/events is not served at all
    bridge.http = build_http(
        None if settings.slack_app_token else bolt,
        bridge.health,
        registry,
        channels.receivers,
        store,
        skip,
        body_seconds=settings.dmbridge_body_seconds,
        media=bridge.platform.media,
        edge=ctx.edge,
    )
    return bridge
