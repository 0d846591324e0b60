"""Start emulated Slack and X, and the real bridge configured against them (demo, tests, benchmarks).

The bridge is built by ``bridge.app.build`` from ordinary ``Settings`` —
``SLACK_API_URL``, ``X_API_URL``, tokens — exactly as ``dmbridge serve`` does.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.app import Bridge, build
from bridge.config import FileConfig, Settings
from bridge.sandbox.server import HttpServer, wait_for
from bridge.sandbox.slack import SlackEmulator
from bridge.sandbox.x import XEmulator

__all__ = ["BOT_TOKEN", "CHANNEL", "SIGNING_SECRET", "HttpServer", "Sandbox", "start_sandbox", "wait_for"]

CHANNEL = "C0INBOX"
SIGNING_SECRET = "sandbox-signing-secret"
BOT_TOKEN = "xoxb-sandbox"
TEAM_CHANNEL = "C0BILLING"
AGENTS_GROUP = "S0AGENTS"
BILLING_GROUP = "S0BILLING"


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
        self.bridge, self.http = _start_bridge(self.settings, self.file, self.clock)
        self.slack.event_target = self.events_url

    def close(self) -> None:
        self.stop_bridge()
        self.slack.stop()
        self.x.stop()
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


def sandbox_settings(slack: SlackEmulator, x: XEmulator, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET, slack_api_url=slack.api_url,
        dmbridge_channel=CHANNEL, database_url=database_url,
        x_consumer_key=x.consumer_key, x_consumer_secret=x.consumer_secret, x_access_token=x.access_token,
        x_access_token_secret=x.access_token_secret, x_api_url=x.api_url, x_poll_seconds=0.2,
        dmbridge_slack_posts_per_second=0.0,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _start_bridge(settings: Settings, file: FileConfig, clock: Callable[[], float]) -> tuple[Bridge, HttpServer]:
    bridge = build(settings, file, clock=clock)
    bridge.start()
    for name, poller in bridge.pollers.items():  # the first poll only sets the mark: let it happen first
        wait_for(lambda p=poller: p.first_done.is_set(), what=f"first {name} poll")  # type: ignore[misc]
    if settings.slack_app_token:
        bridge.connect_socket_mode()
    http = HttpServer(bridge.http)
    http.start()
    return bridge, http


def start_sandbox(database_url: str | None = None, *, file: FileConfig | None = None,
                  clock: Callable[[], float] = time.time, **overrides: Any) -> Sandbox:
    """Emulators with a brand, a channel, two agents, an outsider and two customers; the bridge running
    against them, built from ordinary Settings (``overrides``) and a ``dmbridge.toml`` model (``file``)."""
    tmp = tempfile.TemporaryDirectory(prefix="dmbridge-")
    workdir = Path(tmp.name)
    slack = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
    slack.start()
    slack.add_user("U0AGENT1", "sam", "Sam Rivera")
    slack.add_user("U0AGENT2", "kim", "Kim Chen")
    slack.add_user("U0OUTSIDER", "pat", "Pat Visitor")
    slack.add_channel(CHANNEL, "social-inbox", members=["U0AGENT1", "U0AGENT2", "U0BOT"])
    slack.add_channel(TEAM_CHANNEL, "billing-escalations", members=["U0AGENT2", "U0BOT"])
    slack.add_usergroup(AGENTS_GROUP, ["U0AGENT1", "U0AGENT2"])
    slack.add_usergroup(BILLING_GROUP, ["U0AGENT2"])
    x = XEmulator()
    x.start()
    x.add_user("1290011223344556677", "maria_l", "Maria López",
               profile_image_url="https://pbs.twimg.example/maria_normal.jpg")
    x.add_user("1290011223344559999", "jdoe_buyer", "J Doe",
               profile_image_url="https://pbs.twimg.example/jdoe_normal.jpg")
    settings = sandbox_settings(slack, x, database_url or f"sqlite:///{workdir / 'dmbridge.db'}", **overrides)
    file = file or FileConfig()
    bridge, http = _start_bridge(settings, file, clock)
    box = Sandbox(slack=slack, x=x, settings=settings, bridge=bridge, http=http, workdir=workdir, file=file,
                  clock=clock, _tmp=tmp)
    slack.event_target = box.events_url
    return box
