"""Start the emulators, and the real bridge configured against them (demo, tests, benchmarks).

The bridge is built by ``bridge.app.build`` from ordinary ``Settings`` —
``SLACK_API_URL``, ``X_API_URL``, ``META_GRAPH_URL``, tokens — and an
ordinary ``FileConfig`` and environment for the secrets it names, exactly as
``dmbridge serve`` does. Webhook senders are pointed at the bridge's public
routes once it listens.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge import x_chat_keys
from bridge.app import Bridge, build
from bridge.config import Settings
from bridge.sandbox.cdn import Cdn
from bridge.sandbox.generic import GenericSourceEmulator
from bridge.sandbox.meta import INSTAGRAM, MESSENGER, MetaEmulator
from bridge.sandbox.server import HttpServer, wait_for
from bridge.sandbox.slack import SlackEmulator
from bridge.sandbox.x import BRAND_ID, XEmulator
from bridge.toml_config import FileConfig, GenericSource

__all__ = [
    "BOT_TOKEN",
    "CHANNEL",
    "IG_ACCOUNT",
    "IG_CUSTOMER",
    "MESSENGER_CUSTOMER",
    "PAGE_ID",
    "PAGE_TOKEN",
    "SIGNING_SECRET",
    "HttpServer",
    "Sandbox",
    "start_sandbox",
    "wait_for",
]

CHANNEL = "C0INBOX"
SIGNING_SECRET = "sandbox-signing-secret"
BOT_TOKEN = "xoxb-sandbox"
TEAM_CHANNEL = "C0BILLING"
AGENTS_GROUP = "S0AGENTS"
BILLING_GROUP = "S0BILLING"
PAGE_ID = "104729384756102"
IG_ACCOUNT = "17841405309211844"
PAGE_TOKEN = "sandbox-page-token"
MESSENGER_CUSTOMER = "7361522908877213"
IG_CUSTOMER = "17852263944513377"
GENERIC_SECRET_ENV = "DMBRIDGE_SANDBOX_SHOP_SECRET"
X_CLIENT_ID = "c2FuZGJveC1jbGllbnQ6MTpjaQ"
X_REDIRECT_URI = "https://dm.example.com/x/callback"


@dataclass
class Sandbox:
    slack: SlackEmulator
    x: XEmulator
    settings: Settings
    bridge: Bridge
    http: HttpServer
    workdir: Path
    file: FileConfig = field(default_factory=FileConfig)
    clock: Callable[[], float] = time.time
    environ: dict[str, str] = field(default_factory=dict)
    meta: MetaEmulator | None = None
    generic: GenericSourceEmulator | None = None
    cdn: Cdn | None = None
    """The platforms' https file server (customers' attachments), trusted by the bridge through SSL_CERT_FILE."""
    ssl_cert_file_before: str | None = None
    """``SSL_CERT_FILE`` before this sandbox set it (restored by :meth:`close`)."""
    _tmp: tempfile.TemporaryDirectory[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def events_url(self) -> str:
        return self.http.url + "/slack/events"

    def thread_with(self, text: str, channel: str = CHANNEL) -> str:
        """The ts of the thread in which ``text`` is shown (waiting for it to appear)."""

        def find() -> str | None:
            for root in self.slack.roots(channel):
                if any(text in shown(m) for m in self.slack.thread(channel, root["ts"])):
                    return str(root["ts"])
            return None

        return wait_for(find, what=f"a thread showing {text!r}")

    def stop_bridge(self) -> None:
        self.http.stop()
        self.bridge.stop()

    def restart(self) -> None:
        """Stop the bridge and start a new one on the same database and emulators."""
        self.stop_bridge()
        self.bridge, self.http = _start_bridge(self.settings, self.file, self.environ, self.clock)
        self._point_senders()

    def _point_senders(self) -> None:
        self.slack.event_target = self.events_url
        if self.settings.x_webhooks:
            self.x.webhook_url = self.http.url + "/webhooks/x"
        if self.meta is not None:
            self.meta.webhook_url = self.http.url + "/webhooks/meta"
        if self.generic is not None:
            self.generic.webhook_url = f"{self.http.url}/webhooks/generic/{self.generic.name}"

    def close(self) -> None:
        self.stop_bridge()
        self.slack.stop()
        self.x.stop()
        for emulator in (self.meta, self.generic, self.cdn):
            if emulator is not None:
                emulator.stop()
        if self.cdn is not None:
            _set_env("SSL_CERT_FILE", self.ssl_cert_file_before)
        if self._tmp is not None:
            self._tmp.cleanup()


def shown(msg: dict[str, Any]) -> str:
    """What a person sees of a Slack message: its blocks' text, else its text."""
    parts = []
    for block in msg.get("blocks") or []:
        if block.get("type") == "section":
            parts.append(block["text"]["text"])
        elif block.get("type") == "context":
            parts.append(" · ".join(e.get("text", "") for e in block.get("elements", [])))
    return "\n".join(parts) if parts else str(msg.get("text", ""))


def sandbox_settings(
    slack: SlackEmulator, x: XEmulator, database_url: str, meta: MetaEmulator | None = None, **overrides: Any
) -> Settings:
    values: dict[str, Any] = dict(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
        dmbridge_channel=CHANNEL,
        database_url=database_url,
        x_consumer_key=x.consumer_key,
        x_consumer_secret=x.consumer_secret,
        x_access_token=x.access_token,
        x_access_token_secret=x.access_token_secret,
        x_api_url=x.api_url,
        x_poll_seconds=0.2,
        dmbridge_slack_posts_per_second=0.0,
        dmbridge_fetch_private=True,  # the emulators' CDN is on 127.0.0.1
    )
    if meta is not None:
        values |= dict(
            meta_app_secret=meta.app_secret,
            meta_verify_token=meta.verify_token,
            meta_page_access_token=PAGE_TOKEN,
            meta_graph_url=meta.graph_url,
        )
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _start_bridge(
    settings: Settings, file: FileConfig, environ: dict[str, str], clock: Callable[[], float]
) -> tuple[Bridge, HttpServer]:
    front = _Front()  # the address first: it is the bridge's public URL (links to agents' files)
    http = HttpServer(front)
    if not settings.dmbridge_public_url:
        settings = settings.model_copy(update={"dmbridge_public_url": http.url})
    bridge = build(settings, file, clock=clock, environ=environ)
    front.app = bridge.http
    bridge.start()
    for name, poller in bridge.pollers.items():  # the first poll only sets the mark: let it happen first
        wait_for(lambda p=poller: p.first_done.is_set(), what=f"first {name} poll")  # type: ignore[misc]
    for name, starter in bridge.starters.items():
        wait_for(starter.started.is_set, what=f"{name} start")
    if settings.slack_app_token:
        bridge.connect_socket_mode()
    http.start()
    return bridge, http


class _Front:
    """An ASGI app that hands every request to ``app``, set once the bridge is built."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def _set_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def start_meta(cdn: Cdn | None = None) -> MetaEmulator:
    """A page with a linked Instagram account (one token for both), and one customer on each; their files are
    served from ``cdn``."""
    meta = MetaEmulator(cdn=cdn)
    meta.start()
    meta.add_account(PAGE_ID, MESSENGER, PAGE_TOKEN, "Acme Support")
    meta.add_account(IG_ACCOUNT, INSTAGRAM, PAGE_TOKEN, "acme.support")
    meta.add_customer(
        PAGE_ID,
        MESSENGER_CUSTOMER,
        name="Lena Fischer",
        profile_pic="https://platform-lookaside.fbsbx.example/lena.jpg",
    )
    meta.add_customer(
        IG_ACCOUNT,
        IG_CUSTOMER,
        name="Tomás Ruiz",
        username="tomas.rz",
        profile_pic="https://scontent.cdninstagram.example/tomas.jpg",
    )
    return meta


def x_oauth2_settings(x: XEmulator) -> dict[str, Any]:
    """Settings for OAuth 2.0 with refresh against the emulator (a public client; no OAuth 1.0a token)."""
    x.oauth.add_client(X_CLIENT_ID, X_REDIRECT_URI)
    return dict(
        x_client_id=X_CLIENT_ID,
        x_redirect_uri=X_REDIRECT_URI,
        x_access_token="",
        x_access_token_secret="",
        x_oauth_authorize_url=x.api_url + "/i/oauth2/authorize",
    )


def x_authorize(settings: Settings, x: XEmulator, clock: Callable[[], float] = time.time) -> str:
    """What ``dmbridge x-auth`` does, with the emulator's user approving at once; the @username."""
    from bridge import x_auth

    url, pending = x_auth.begin(settings, clock())
    redirect = x.client.get(url, follow_redirects=False)
    if redirect.status_code != 302:
        raise RuntimeError(f"the X emulator refused the authorization: {redirect.text}")
    return x_auth.complete(settings, {k: str(v) for k, v in pending.items()}, redirect.headers["location"], clock)


def set_up_x_chat(settings: Settings) -> None:
    """What ``dmbridge x-chat setup`` does: the brand's identity registered with X and stored sealed."""
    from bridge.x_chat_cli import set_up

    result = set_up(settings)
    if not result.ok:
        raise RuntimeError(result.detail)


def start_sandbox(
    database_url: str | None = None,
    *,
    meta: bool = False,
    generic: bool = False,
    generic_signed_timestamp: bool = False,
    file: FileConfig | None = None,
    environ: dict[str, str] | None = None,
    clock: Callable[[], float] = time.time,
    x_oauth2: bool = False,
    x_chat: bool = False,
    **overrides: Any,
) -> Sandbox:
    """Emulators with a brand, a channel, two agents, an outsider and two X customers (plus, on request, a Meta
    page with its Instagram account and a generic source), and a CDN serving customers' files over https
    (``SSL_CERT_FILE`` names its CA until :meth:`Sandbox.close`; ``DMBRIDGE_FETCH_PRIVATE`` on); the bridge
    running against them, built from ordinary Settings (``overrides``: ``x_webhooks=True``,
    ``meta_human_agent_days=0``, …) and a dmbridge.toml model.
    ``x_oauth2``: X through OAuth 2.0 tokens from the authorization-code flow, refreshed (``X_CLIENT_ID``).
    ``x_chat``: X Chat on (``X_CHAT``, ``DMBRIDGE_SECRET_KEY``), the brand's identity made as ``dmbridge x-chat
    setup`` makes it (unless ``x_chat_setup=False`` is among the overrides), both X customers with X Chat apps."""
    tmp = tempfile.TemporaryDirectory(prefix="dmbridge-")
    workdir = Path(tmp.name)
    slack = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN, page_size=2)  # small pages: paging runs
    slack.start()
    slack.add_user("U0AGENT1", "sam", "Sam Rivera")
    slack.add_user("U0AGENT2", "kim", "Kim Chen")
    slack.add_user("U0OUTSIDER", "pat", "Pat Visitor")
    slack.add_channel(CHANNEL, "social-inbox", members=["U0AGENT1", "U0AGENT2", "U0BOT"])
    slack.add_channel(TEAM_CHANNEL, "billing-escalations", members=["U0AGENT2", "U0BOT"])
    slack.add_usergroup(AGENTS_GROUP, ["U0AGENT1", "U0AGENT2"])
    slack.add_usergroup(BILLING_GROUP, ["U0AGENT2"])
    x = XEmulator(clock=clock)  # the clock only times OAuth 2.0 tokens there
    x.start()
    x.add_user(
        "1290011223344556677", "maria_l", "Maria López", profile_image_url="https://pbs.twimg.example/maria_normal.jpg"
    )
    x.add_user(
        "1290011223344559999", "jdoe_buyer", "J Doe", profile_image_url="https://pbs.twimg.example/jdoe_normal.jpg"
    )
    cdn = Cdn()  # customers' files: https on loopback, trusted through the standard SSL_CERT_FILE
    cdn.start()
    ssl_cert_file_before = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = cdn.ca_file
    meta_emulator = start_meta(cdn) if meta else None
    file = file or FileConfig()
    env = dict(environ or {})
    source = None
    if generic:
        source = GenericSourceEmulator(signed_timestamp=generic_signed_timestamp, cdn=cdn)
        source.start()
        env[GENERIC_SECRET_ENV] = source.secret
        file = file.model_copy(
            update={
                "generic": file.generic.model_copy(
                    update={
                        "sources": [
                            *file.generic.sources,
                            GenericSource(
                                name=source.name,
                                secret_env=GENERIC_SECRET_ENV,
                                callback_url=source.callback_url,
                                signed_timestamp=generic_signed_timestamp,
                            ),
                        ]
                    }
                )
            }
        )
    if x_oauth2:
        overrides = x_oauth2_settings(x) | overrides
    setup = bool(overrides.pop("x_chat_setup", True))
    if x_chat:
        for user_id, user in list(x.users.items()):
            if user_id != BRAND_ID:
                x.add_chat_customer(
                    user_id, user["username"], user["name"], profile_image_url=user.get("profile_image_url")
                )
        overrides = (
            dict(x_chat=True, dmbridge_secret_key=x_chat_keys.new_secret_key(), x_user_bearer_token=x.user_bearer_token)
            | overrides
        )
    settings = sandbox_settings(
        slack, x, database_url or f"sqlite:///{workdir / 'dmbridge.db'}", meta_emulator, **overrides
    )
    if x_oauth2 and not x.oauth.access:
        x_authorize(settings, x, clock)
    if x_chat and setup:
        set_up_x_chat(settings)
    bridge, http = _start_bridge(settings, file, env, clock)
    box = Sandbox(
        slack=slack,
        x=x,
        settings=settings,
        bridge=bridge,
        http=http,
        workdir=workdir,
        file=file,
        environ=env,
        meta=meta_emulator,
        generic=source,
        cdn=cdn,
        ssl_cert_file_before=ssl_cert_file_before,
        clock=clock,
        _tmp=tmp,
    )
    box._point_senders()
    return box
