"""The configured connectors and webhook receivers (X, Meta, generic sources), built from Settings and dmbridge.toml."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bridge import x_chat_keys
from bridge.config import Settings, secret_from
from bridge.domain import Platform
from bridge.errors import ConfigError
from bridge.store.db import Database
from bridge.toml_config import FileConfig
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
from connectors.xchat.api import ChatApi
from connectors.xchat.connector import XChatConnector
from connectors.xchat.router import XRouter

log = logging.getLogger(__name__)


@dataclass
class Channels:
    """The configured connectors, by role: senders by platform, pollers and webhook receivers by name."""

    senders: dict[str, Connector] = field(default_factory=dict)
    polled: dict[str, PollingConnector] = field(default_factory=dict)
    receivers: dict[str, WebhookReceiver] = field(default_factory=dict)
    profiles: dict[str, ProfileLookup] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    """Connectors configured but not started, and why (shown on ``/healthz``)."""
    opener: XChatConnector | None = None
    """The X Chat connector, whose sealed events the opener decrypts."""


def build_channels(
    settings: Settings,
    file: FileConfig,
    environ: Mapping[str, str],
    *,
    db: Database | None = None,
    clock: Callable[[], float] = time.time,
) -> Channels:
    found = Channels()
    if settings.x_enabled:
        x = XConnector(
            base_url=settings.x_api_url,
            consumer_key=settings.x_consumer_key,
            consumer_secret=settings.x_consumer_secret,
            access_token=settings.x_access_token,
            access_token_secret=settings.x_access_token_secret,
            user_bearer_token=settings.x_user_bearer_token,
            timeout=settings.dmbridge_http_timeout,
            tokens=x_token_store(settings, db or Database(settings.database_url), clock)
            if settings.x_oauth2_refreshing
            else None,
        )
        found.senders["x"] = found.polled["x"] = x
        if settings.x_webhooks:
            if not settings.x_consumer_secret:
                raise ConfigError("X_WEBHOOKS needs X_CONSUMER_SECRET (it signs X's webhook deliveries)")
            found.receivers["x"] = XWebhook(x, settings.x_consumer_secret, chat=settings.x_chat)
    if settings.x_chat:
        _add_x_chat(found, settings, db or Database(settings.database_url), clock)
    if settings.meta_enabled:
        _add_meta(found, settings, file, environ)
    if file.generic.sources:
        sources = {
            s.name: Source(
                name=s.name,
                secret=secret_from(environ, s.secret_env, f"generic source {s.name}"),
                callback_url=s.callback_url,
                signed_timestamp=s.signed_timestamp,
            )
            for s in file.generic.sources
        }
        found.senders["generic"] = GenericConnector(sources)
        found.receivers["generic"] = GenericWebhook(sources)
    return found


def _add_x_chat(found: Channels, settings: Settings, db: Database, clock: Callable[[], float]) -> None:
    """X Chat beside legacy DMs, when its identity can be opened; else only the reason, on /healthz."""
    if not (settings.x_client_id or settings.x_user_bearer_token):
        raise ConfigError("X_CHAT needs OAuth 2.0 user tokens: X_CLIENT_ID (`dmbridge x-auth`) or X_USER_BEARER_TOKEN")
    keys = x_chat_keys.status(db, settings.dmbridge_secret_key)
    if not keys.ok:
        log.error("X Chat is not started: %s", keys.detail)
        found.problems["x_chat"] = keys.detail
        return
    chat = XChatConnector(
        x_chat_api(settings, db, clock),
        lambda: x_chat_keys.load(db, settings.dmbridge_secret_key),
    )
    found.polled["xchat"] = found.opener = chat
    found.profiles["x"] = chat
    found.senders["x"] = XRouter(found.senders.get("x"), chat)


def x_chat_api(settings: Settings, db: Database, clock: Callable[[], float] = time.time) -> ChatApi:
    """The Chat API client of the brand account (``serve``, ``x-chat setup``, ``doctor``)."""
    return ChatApi(
        settings.x_api_url,
        user_bearer_token=settings.x_user_bearer_token,
        tokens=x_token_store(settings, db, clock) if settings.x_client_id else None,
        timeout=settings.dmbridge_http_timeout,
    )


def x_token_store(settings: Settings, db: Database, clock: Callable[[], float] = time.time) -> TokenStore:
    """The stored X OAuth 2.0 tokens of ``X_CLIENT_ID`` (``dmbridge x-auth``; ``doctor`` reads their status)."""
    endpoint = TokenEndpoint(
        settings.x_token_url,
        settings.x_client_id,
        settings.x_client_secret,
        timeout=settings.dmbridge_http_timeout,
        clock=clock,
    )
    return TokenStore(db, endpoint, clock=clock)


def _add_meta(found: Channels, settings: Settings, file: FileConfig, environ: Mapping[str, str]) -> None:
    if not settings.meta_verify_token:
        raise ConfigError("META_APP_SECRET is set but META_VERIFY_TOKEN is not")
    pages = {
        p.id: MetaPage(
            token=secret_from(environ, p.token_env, f"Meta account {p.id}")
            if p.token_env
            else settings.meta_page_access_token,
            human_agent_days=settings.meta_human_agent_days if p.human_agent_days is None else p.human_agent_days,
        )
        for p in file.meta.pages
    }
    if not settings.meta_page_access_token and not pages:
        raise ConfigError("Meta needs META_PAGE_ACCESS_TOKEN or [[meta.pages]] in dmbridge.toml")
    default = MetaPage(token=settings.meta_page_access_token, human_agent_days=settings.meta_human_agent_days)
    app = MetaApp(graph=Graph(settings.meta_graph_url), pages=pages, default=default)
    for connector in (MetaConnector(app, Platform.MESSENGER), MetaConnector(app, Platform.INSTAGRAM)):
        found.senders[connector.platform.value] = connector
        found.profiles[connector.platform.value] = connector
    found.receivers["meta"] = MetaWebhook(
        app, app_secret=settings.meta_app_secret, verify_token=settings.meta_verify_token
    )
