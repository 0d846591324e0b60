"""What the background work shares: settings, database, Slack and platform clients, wake events, health."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlmodel import Session

from bridge.config import Settings, channel_for
from bridge.deliveries import ChannelNotice
from bridge.desk import Desk
from bridge.domain import Limits
from bridge.loops import AuthState, EdgeFirst
from bridge.slack.api import SlackApi
from bridge.store import outbox
from bridge.store.db import Database
from bridge.toml_config import FileConfig
from connectors.base import Connector, ProfileLookup, all_limits


@dataclass
class Context:
    """What the background runners share; built by ``bridge.app``."""

    settings: Settings
    toml: FileConfig
    """``dmbridge.toml``: desk, teams, SLA policies, routes."""
    db: Database
    slack: SlackApi
    connectors: dict[str, Connector]
    """Senders by platform (``x``, ``messenger``, ``instagram``, ``generic``)."""
    desk: Desk
    clock: Callable[[], float] = time.time
    profiles: dict[str, ProfileLookup] = field(default_factory=dict)
    bot_user_id: str = ""
    bot_id: str = ""
    wake_slack: threading.Event = field(default_factory=threading.Event)
    wake_platform: threading.Event = field(default_factory=threading.Event)
    wake_events: threading.Event = field(default_factory=threading.Event)
    wake_sla: threading.Event = field(default_factory=threading.Event)  # a timeline changed: book its SLA now
    wake_sealed: threading.Event = field(default_factory=threading.Event)  # X Chat events stored: open them
    health: dict[str, str] = field(default_factory=dict)
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    auth: dict[str, AuthState] = field(default_factory=dict)
    failed_event: Callable[[], None] = lambda: None  # counts a Slack event whose processing raised (/metrics)
    edge: EdgeFirst = field(default_factory=EdgeFirst)  # the loops give way while a request is being answered

    def auth_state(self, name: str) -> AuthState:
        return self.auth.setdefault(name, AuthState())

    def limits(self) -> dict[str, Limits]:
        return all_limits(self.connectors)


def enqueue_channel_notice(
    s: Session, ctx: Context, about: str, since: float, text: str, working: bool = False
) -> None:
    """A top-level message in the inbox channel (credential problems), once per incident."""
    try:
        channel = channel_for(ctx.settings, ctx.toml, about, "")
    except Exception:
        channel = ctx.settings.dmbridge_channel
    if not channel:
        return
    outbox.enqueue(s, ChannelNotice.credential(about, since, working, channel, text), ctx.clock())


def wake_snoozed(ctx: Context) -> int:
    """Snoozes that are over: reopen and remind (each once, whichever process gets there first)."""
    with ctx.db.session() as s:
        woken = ctx.desk.wake_snoozed(s, ctx.clock())
    if woken:
        ctx.wake_slack.set()
    return woken
