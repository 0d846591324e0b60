"""The Slack emulator's world (users, channels, messages, views) and the helpers its surfaces share."""

from __future__ import annotations

import queue
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from bridge.manifest import load as load_manifest
from bridge.sandbox.server import HttpServer
from bridge.sandbox.slack_socket import APP_ID, SocketModeServer

TEAM = "T0SANDBOX"
BOT_USER = "U0BOT"
BOT_ID = "B0BOT"
TRIGGER_SECONDS = 3.0
PAGE_SIZE = 100  # the most items one page holds (Slack may answer fewer than ``limit``); tests set it small

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_USER",
    "TEAM",
    "TRIGGER_SECONDS",
    "ApiError",
    "Call",
    "Channel",
    "Chaos",
    "Fault",
    "SlackWorld",
    "bot_scopes",
]


def bot_scopes() -> list[str]:
    """The bot scopes the manifest requests: what a token installed from it is granted."""
    return [str(s) for s in load_manifest()["oauth_config"]["scopes"]["bot"]]


@dataclass
class Call:
    """One Web API call as the emulator received it: ``encoding`` is ``json``, ``form`` or ``query`` (no body),
    ``params`` what Slack read (a JSON body a method does not take is not read), ``sent`` every name sent."""

    method: str
    params: dict[str, Any]
    status: int
    error: str | None = None
    encoding: str = "query"
    sent: tuple[str, ...] = ()
    peer: str = ""
    """The client's address and port: calls on one kept-alive connection share it."""


@dataclass
class Fault:
    status: int
    retry_after: float | None = None
    error: str | None = None
    delay: float = 0.0
    reset: bool = False  # do the work, then break the connection before the answer is complete
    hang: float = 0.0  # do the work, then wait this long before answering (a process may die meanwhile)


@dataclass
class Chaos:
    rate: float
    kinds: tuple[str, ...]
    methods: frozenset[str]
    rng: random.Random
    slow: float


@dataclass
class Channel:
    id: str
    name: str
    members: list[str]
    messages: list[dict[str, Any]] = field(default_factory=list)
    is_private: bool = False


class ApiError(Exception):
    """A refusal: ``error`` (HTTP ``status``), reasons in ``response_metadata.messages``, and ``extra`` top-level
    fields (``missing_scope`` answers ``needed`` and ``provided``)."""

    def __init__(
        self,
        error: str,
        status: int = 200,
        headers: dict[str, str] | None = None,
        messages: list[str] | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.error, self.status, self.headers, self.messages = error, status, headers or {}, messages or []
        self.extra = extra or {}


class SlackWorld:
    """State shared by the Web API side and the delivery side; helpers are called with ``_lock`` held."""

    signing_secret: str
    bot_token: str
    team: str
    socket: SocketModeServer
    http: HttpServer
    event_target: str
    echo_bot_messages: bool
    posts_per_second: float
    post_burst: int
    token_valid: bool
    scopes: list[str]
    page_size: int
    users: dict[str, dict[str, Any]]
    usergroups: dict[str, list[str]]
    presence: dict[str, str]
    channels: dict[str, Channel]
    reactions_by_msg: dict[tuple[str, str], list[str]]
    views: dict[str, dict[str, Any]]
    home_views: dict[str, dict[str, Any]]
    ephemerals: list[dict[str, Any]]
    responses: list[dict[str, Any]]
    _response_targets: dict[str, tuple[str, str]]
    echo_statuses: list[int]
    chaos_log: list[tuple[str, str]]
    _calls: list[Call]
    _faults: dict[str, list[Fault]]
    _chaos: Chaos | None
    _triggers: dict[str, float]
    _buckets: dict[str, tuple[float, float]]
    _last_ts: float
    _event_seq: int
    _lock: threading.RLock
    _outbox: queue.Queue[bytes | None]

    def _next_ts(self) -> str:
        now = max(time.time(), self._last_ts + 0.000001)
        self._last_ts = now
        return f"{now:.6f}"

    def _channel(self, p: dict[str, Any]) -> Channel:
        channel = self.channels.get(str(p.get("channel")))
        if channel is None:
            raise ApiError("channel_not_found")
        return channel

    def _find(self, channel: str, ts: str) -> dict[str, Any]:
        for msg in self.channels[channel].messages:
            if msg["ts"] == ts:
                return msg
        raise ApiError("message_not_found")

    def _author_of(self, channel: str, ts: str) -> str:
        try:
            return str(self._find(channel, ts).get("user", ""))
        except ApiError:
            return ""

    def _user_ref(self, user: str) -> dict[str, str]:
        name = str(self.users.get(user, {}).get("name", user))
        return {"id": user, "username": name, "name": name, "team_id": self.team}

    def _new_trigger(self) -> str:
        trigger = f"trg.{uuid.uuid4().hex}"
        with self._lock:
            self._triggers[trigger] = time.time()
        return trigger

    def _new_response_url(self, user: str = "", channel: str = "") -> str:
        """A response URL for one interaction; what is posted to it reaches ``user`` (as Slack does, also when
        they are not a member of ``channel``)."""
        token = uuid.uuid4().hex
        with self._lock:
            self._response_targets[token] = (user, channel)
        return f"{self.http.url}/response/{token}"

    def _envelope(self, event: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._event_seq += 1
            event_id = f"Ev{self._event_seq:08d}{uuid.uuid4().hex[:6].upper()}"
        return {
            "token": "verification-token",
            "team_id": self.team,
            "api_app_id": APP_ID,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": event,
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team,
                    "user_id": BOT_USER,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
