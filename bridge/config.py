"""Settings: environment (and ``.env``) for secrets and endpoints, ``dmbridge.toml`` for policy."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bridge.errors import ConfigError

log = logging.getLogger(__name__)

X_READ_REQUESTS_PER_15_MIN = 15


class Route(BaseModel):
    """Which Slack channel receives one connector account's DMs."""

    connector: str
    account: str | None = None
    channel: str


class FileConfig(BaseModel):
    """The parts of ``dmbridge.toml`` the core reads (no secrets live there)."""

    brand: str = "our team"
    agents: str | None = None
    routes: list[Route] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None) -> FileConfig:
        candidate = path or Path("dmbridge.toml")
        if not candidate.exists():
            if path is not None:
                raise ConfigError(f"config file {path} does not exist")
            return cls()
        try:
            data = tomllib.loads(candidate.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{candidate}: {exc}") from exc
        known = {k: data.pop(k) for k in ("brand", "agents", "routes") if k in data}
        return cls(**known, extra=data)


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
    x_user_bearer_token: str = ""
    x_api_url: str = "https://api.twitter.com"
    x_poll_seconds: float = 65.0

    dmbridge_note_prefixes: str = "//,note:"
    # Slack allows about one post per second per channel; we pace below that with a small burst.
    dmbridge_slack_posts_per_second: float = 1.0
    dmbridge_slack_burst: int = 3
    # seconds before a Slack or X call is given up as timed out (it is then verified before any resend)
    dmbridge_http_timeout: float = 15.0

    @property
    def note_prefixes(self) -> tuple[str, ...]:
        return tuple(p.strip().lower() for p in self.dmbridge_note_prefixes.split(",") if p.strip())

    @property
    def slack_base_url(self) -> str:
        return self.slack_api_url if self.slack_api_url.endswith("/") else self.slack_api_url + "/"

    @property
    def x_enabled(self) -> bool:
        oauth1 = all((self.x_consumer_key, self.x_consumer_secret, self.x_access_token,
                      self.x_access_token_secret))
        return oauth1 or bool(self.x_user_bearer_token)

    def check_for_serve(self) -> None:
        """Refuse to start without what serving needs; warn about risky values."""
        missing = [name for name, value in (
            ("SLACK_BOT_TOKEN", self.slack_bot_token),
            ("SLACK_SIGNING_SECRET", self.slack_signing_secret or self.slack_app_token),
            ("DMBRIDGE_CHANNEL", self.dmbridge_channel),
        ) if not value]
        if missing:
            raise ConfigError("missing settings: " + ", ".join(missing))
        if self.x_poll_seconds <= 0:
            raise ConfigError("X_POLL_SECONDS must be positive")
        if self.x_enabled and self.x_poll_seconds < 15 * 60 / X_READ_REQUESTS_PER_15_MIN:
            log.warning("X_POLL_SECONDS=%s polls faster than X allows (15 reads per 15 minutes); "
                        "expect 429s against the real API", self.x_poll_seconds)


def channel_for(settings: Settings, file: FileConfig, connector: str, account: str) -> str:
    """The Slack channel for an account: the first matching route, else DMBRIDGE_CHANNEL."""
    for route in file.routes:
        if route.connector == connector and route.account in (None, account):
            return route.channel
    if not settings.dmbridge_channel:
        raise ConfigError(f"no route for {connector}:{account} and DMBRIDGE_CHANNEL is unset")
    return settings.dmbridge_channel
