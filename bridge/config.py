"""Settings: environment (and ``.env``) for secrets and endpoints; where a conversation's channel is (routes of
``dmbridge.toml`` over ``DMBRIDGE_CHANNEL``). The policy file itself is ``bridge.toml_config``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from bridge.errors import ConfigError
from bridge.toml_config import USERGROUP_ID, FileConfig

log = logging.getLogger(__name__)

X_READ_REQUESTS_PER_15_MIN = 15


class Settings(BaseSettings):
    """Environment variables (names are the upper-case field names)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    slack_bot_token: str = ""
    slack_signing_secret: str = ""
    slack_app_token: str = ""
    slack_api_url: str = "https://slack.com/api/"
    dmbridge_channel: str = ""
    database_url: str = "sqlite:///./dmbridge.db"

    x_consumer_key: str = ""
    x_consumer_secret: str = ""
    x_access_token: str = ""
    x_access_token_secret: str = ""
    x_user_bearer_token: str = ""  # a static OAuth 2.0 user token (not refreshed; prefer X_CLIENT_ID)
    x_client_id: str = ""  # OAuth 2.0 with refresh: tokens from `dmbridge x-auth`, kept in the database
    x_client_secret: str = ""  # confidential clients only (HTTP Basic on the token endpoint)
    x_oauth_authorize_url: str = "https://x.com/i/oauth2/authorize"
    x_oauth_token_url: str = ""  # default: https://api.x.com/2/oauth2/token (X_API_URL's when that is not X's)
    x_redirect_uri: str = "http://127.0.0.1:3000/x/callback"  # must be registered in the X app's settings
    x_api_url: str = "https://api.twitter.com"
    x_poll_seconds: float = 65.0
    x_webhooks: bool = False
    x_reconcile_seconds: float = 600.0
    x_chat: bool = False  # X Chat (encrypted DMs) too: needs `dmbridge x-chat setup` and DMBRIDGE_SECRET_KEY
    dmbridge_secret_key: str = ""  # seals the X Chat keys in the database (`dmbridge x-chat keygen` makes one)
    x_daily_budget_usd: float = 0.0  # shown beside today's estimated X spend in /healthz and doctor; 0: none

    meta_app_secret: str = ""
    meta_verify_token: str = ""
    meta_page_access_token: str = ""
    meta_graph_url: str = "https://graph.facebook.com/v26.0"  # v21.0 stops working on 2027-01-21
    meta_human_agent_days: float = 7.0

    dmbridge_note_prefixes: str = "//,note:"
    dmbridge_agents: str = ""  # a user group id; overrides `agents` in dmbridge.toml
    # Slack allows about one post per second per channel; we pace below that with a small burst.
    dmbridge_slack_posts_per_second: float = 1.0
    dmbridge_slack_burst: int = 3
    dmbridge_sweep_seconds: float = 30.0  # how often due snoozes (and SLA timers) are checked
    # seconds before a Slack or X call is given up as timed out (it is then verified before any resend)
    dmbridge_http_timeout: float = 15.0
    # a delivery that keeps failing for unforeseen reasons is given up (⚠️ in its thread) after this many tries
    dmbridge_max_attempts: int = 12
    # a claim this process has held longer than this is taken back by recovery (its outcome was never written)
    dmbridge_claim_timeout: float = 600.0
    dmbridge_log_format: Literal["text", "json"] = "text"  # json: one object per line, for log shippers
    dmbridge_body_seconds: float = 5.0  # a request body must arrive within this (else 408)
    dmbridge_metrics_addr: str = ""  # host:port for /metrics alone; empty: on the main --host/--port
    dmbridge_max_attachment_mb: float = 100.0  # a customer's file larger than this is named in the thread, not copied
    dmbridge_fetch_private: bool = False  # fetch customers' files from private addresses too (sources on your network)
    dmbridge_public_url: str = ""  # dmbridge's https address: the base of links to agents' files (generic sources)
    dmbridge_media_link_hours: float = 24.0  # how long such a link works

    @property
    def note_prefixes(self) -> tuple[str, ...]:
        return tuple(p.strip().lower() for p in self.dmbridge_note_prefixes.split(",") if p.strip())

    @property
    def slack_base_url(self) -> str:
        return self.slack_api_url if self.slack_api_url.endswith("/") else self.slack_api_url + "/"

    @property
    def x_enabled(self) -> bool:
        oauth1 = all((self.x_consumer_key, self.x_consumer_secret, self.x_access_token, self.x_access_token_secret))
        return oauth1 or bool(self.x_user_bearer_token) or bool(self.x_client_id)

    @property
    def x_token_url(self) -> str:
        """``X_OAUTH_TOKEN_URL``; else X's documented endpoint, or the same path on a non-default X_API_URL."""
        if self.x_oauth_token_url:
            return self.x_oauth_token_url
        if self.x_api_url.rstrip("/") in ("https://api.twitter.com", "https://api.x.com"):
            return "https://api.x.com/2/oauth2/token"
        return self.x_api_url.rstrip("/") + "/2/oauth2/token"

    @property
    def x_oauth2_refreshing(self) -> bool:
        """OAuth 2.0 tokens from the database, refreshed; OAuth 1.0a keys, when all four are set, win."""
        oauth1 = all((self.x_consumer_key, self.x_consumer_secret, self.x_access_token, self.x_access_token_secret))
        return bool(self.x_client_id) and not oauth1

    @property
    def meta_enabled(self) -> bool:
        return bool(self.meta_app_secret)

    @property
    def x_interval(self) -> float:
        """Seconds between X polls: a slow reconciliation pass when webhooks deliver."""
        return self.x_reconcile_seconds if self.x_webhooks else self.x_poll_seconds

    def check_for_serve(self) -> None:
        """Refuse to start without what serving needs; warn about risky values."""
        missing = [
            name
            for name, value in (
                ("SLACK_BOT_TOKEN", self.slack_bot_token),
                ("SLACK_SIGNING_SECRET", self.slack_signing_secret or self.slack_app_token),
                ("DMBRIDGE_CHANNEL", self.dmbridge_channel),
            )
            if not value
        ]
        if missing:
            raise ConfigError("missing settings: " + ", ".join(missing))
        if self.dmbridge_agents and not USERGROUP_ID.match(self.dmbridge_agents):
            raise ConfigError(f"DMBRIDGE_AGENTS={self.dmbridge_agents!r} is not a Slack user group id (S…)")
        if self.x_poll_seconds <= 0 or self.x_reconcile_seconds <= 0:
            raise ConfigError("X_POLL_SECONDS and X_RECONCILE_SECONDS must be positive")
        if self.x_enabled and self.x_interval < 15 * 60 / X_READ_REQUESTS_PER_15_MIN:
            log.warning(
                "X polls every %ss, faster than X allows (15 reads per 15 minutes); expect 429s against the real API",
                self.x_interval,
            )


def channel_for(settings: Settings, file: FileConfig, connector: str, account: str) -> str:
    """The Slack channel for an account: the first matching route, else DMBRIDGE_CHANNEL."""
    for route in file.routes:
        if route.connector == connector and route.account in (None, account):
            return route.channel
    if not settings.dmbridge_channel:
        raise ConfigError(f"no route for {connector}:{account} and DMBRIDGE_CHANNEL is unset")
    return settings.dmbridge_channel


def desk_channels(settings: Settings, file: FileConfig) -> set[str]:
    """The channels new conversations go to (``DMBRIDGE_CHANNEL`` and the routes')."""
    return {c for c in (settings.dmbridge_channel, *(r.channel for r in file.routes)) if c}


def secret_from(environ: Mapping[str, str], name: str, what: str) -> str:
    """The value of the environment variable ``name`` that ``dmbridge.toml`` points to for ``what``."""
    value = environ.get(name, "")
    if not value:
        raise ConfigError(f"{what}: environment variable {name} is not set")
    return value
