"""An emulator of Slack as the bridge meets it, as strict as Slack (docs.slack.dev and the Web API spec).

Split by surface: the Web API (:mod:`bridge.sandbox.slack_api`, its ``conversations.*`` reads in
:mod:`bridge.sandbox.slack_conversations`, payload checks in :mod:`bridge.sandbox.slack_checks`, files and
their upload/download URLs in :mod:`bridge.sandbox.slack_files`), deliveries
to the app and people acting in Slack (:mod:`bridge.sandbox.slack_people`), Socket Mode
(:mod:`bridge.sandbox.slack_socket`). This module holds the world set-up, faults and what tests inspect. A
message the bot posts comes back to the app as a ``message`` event with its ``bot_id`` (asynchronously, as
Slack does), so self-event filtering is real.
"""

from __future__ import annotations

import queue
import random
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import Route

from bridge.sandbox.cdn import tls_files
from bridge.sandbox.server import HttpServer
from bridge.sandbox.slack_api import WebApiMethods
from bridge.sandbox.slack_conversations import ConversationMethods
from bridge.sandbox.slack_files import FileMethods, Upload
from bridge.sandbox.slack_people import SlackPeople
from bridge.sandbox.slack_socket import SocketModeServer
from bridge.sandbox.slack_state import (
    APP_ID,
    BOT_ID,
    BOT_USER,
    PAGE_SIZE,
    TEAM,
    Call,
    Channel,
    Chaos,
    Fault,
    bot_scopes,
)

__all__ = ["APP_ID", "BOT_ID", "BOT_USER", "TEAM", "Call", "SlackEmulator", "SocketModeServer"]


class SlackEmulator(WebApiMethods, ConversationMethods, FileMethods, SlackPeople):
    def __init__(
        self,
        *,
        signing_secret: str,
        bot_token: str,
        team: str = TEAM,
        app_token: str = "xapp-sandbox",
        posts_per_second: float = 0.0,
        post_burst: int = 1,
        echo_bot_messages: bool = True,
        page_size: int = PAGE_SIZE,
        scopes: list[str] | None = None,
        tls: bool = False,
    ) -> None:
        """``tls``: the Web API over https with the sandbox's certificate (``bridge.sandbox.cdn.certificates``;
        clients trust its CA through ``SSL_CERT_FILE``), as Slack serves it."""
        self.signing_secret = signing_secret
        self.bot_token = bot_token
        self.socket = SocketModeServer(app_token)
        self.team = team
        self.token_valid = True
        self.scopes = list(bot_scopes() if scopes is None else scopes)
        self.page_size = page_size
        self.event_target = ""
        self.posts_per_second = posts_per_second
        self.post_burst = post_burst
        self.echo_bot_messages = echo_bot_messages
        self.users: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.presence: dict[str, str] = {}
        self.channels: dict[str, Channel] = {}
        self.reactions_by_msg: dict[tuple[str, str], list[str]] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self.home_views: dict[str, dict[str, Any]] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self._response_targets: dict[str, tuple[str, str]] = {}
        self._calls = []
        self._faults: dict[str, list[Fault]] = {}
        self._chaos: Chaos | None = None
        self.chaos_log: list[tuple[str, str]] = []
        self._triggers: dict[str, float] = {}
        self._buckets: dict[str, tuple[float, float]] = {}
        self._last_ts = 0.0
        self._event_seq = 0
        self._lock = threading.RLock()
        self._outbox: queue.Queue[bytes | None] = queue.Queue()
        self._sender: threading.Thread | None = None
        self.echo_statuses: list[int] = []
        self.on_file_shared: Callable[[dict[str, Any]], None] | None = None
        """Called (with the lock held: keep it short) with each file object ``files.completeUploadExternal``
        shares, once it is in the channel: the benchmarks time uploads by it."""
        self.add_user(BOT_USER, "dmbridge", "dmbridge", is_bot=True)
        self._init_files()
        self.http = HttpServer(
            Starlette(
                routes=[
                    Route("/api/{method}", self._api, methods=["GET", "POST"]),
                    Route("/response/{token}", self._response_url, methods=["POST"]),
                    *self._file_routes(),
                ]
            ),
            **tls_files() if tls else {},
        )
        self.client = httpx.Client(timeout=30)

    # ------------------------------------------------------------------ lifecycle

    @property
    def api_url(self) -> str:
        return self.http.url + "/api/"

    def start(self) -> None:
        self.http.start()
        self.socket.start()
        self._sender = threading.Thread(target=self._send_echoes, name="slack-emulator-echo", daemon=True)
        self._sender.start()

    def stop(self) -> None:
        self._outbox.put(None)
        if self._sender is not None:
            self._sender.join(timeout=5)
        self.socket.stop()
        self.http.stop()
        self.client.close()
        self._close_files()

    # ------------------------------------------------------------------ world set-up

    def add_user(
        self,
        user_id: str,
        name: str,
        real_name: str,
        *,
        is_bot: bool = False,
        tz: str = "Europe/Berlin",
        image: str | None = None,
    ) -> None:
        with self._lock:
            self.users[user_id] = {
                "id": user_id,
                "team_id": self.team,
                "name": name,
                "real_name": real_name,
                "is_bot": is_bot,
                "deleted": False,
                "tz": tz,
                "profile": {
                    "real_name": real_name,
                    "display_name": name,
                    "image_72": image or f"https://avatars.slack.example/{user_id}_72.png",
                },
            }
            self.presence.setdefault(user_id, "active")

    def add_channel(
        self, channel_id: str, name: str, members: list[str] | None = None, *, is_private: bool = False
    ) -> None:
        with self._lock:
            self.channels[channel_id] = Channel(channel_id, name, list(members or [BOT_USER]), is_private=is_private)

    def add_usergroup(self, group_id: str, users: list[str]) -> None:
        with self._lock:
            self.usergroups[group_id] = list(users)

    def set_presence(self, user_id: str, presence: str) -> None:
        with self._lock:
            self.presence[user_id] = presence

    def revoke_token(self, revoked: bool = True) -> None:
        """Every Web API call answers ``invalid_auth`` until called with False."""
        self.token_valid = not revoked

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: float | None = 1,
        error: str | None = None,
        times: int = 1,
        delay: float = 0.0,
        hang: float = 0.0,
    ) -> None:
        """The next ``times`` calls of ``method`` fail: 429 (with Retry-After), a 5xx, an API ``error``,
        or (with ``delay``) answer only after that many seconds; with ``hang``, they take effect and answer
        ``hang`` seconds later."""
        with self._lock:
            self._faults.setdefault(method, []).extend(
                Fault(status, retry_after if status == 429 else None, error, delay, hang=hang) for _ in range(times)
            )

    def chaos(
        self,
        rate: float,
        *,
        kinds: tuple[str, ...] = ("429", "500", "slow", "reset"),
        methods: tuple[str, ...] = ("chat.postMessage", "reactions.add", "reactions.remove", "chat.update"),
        slow: float = 2.0,
        seed: int = 7,
    ) -> None:
        """From now on a share ``rate`` of calls to ``methods`` fail at random with one of ``kinds``: 429 with
        Retry-After, 500, an answer ``slow`` seconds late (after the call took effect), or a connection cut
        off after the call took effect (``reset``). ``rate=0`` stops it."""
        with self._lock:
            self._chaos = Chaos(rate, kinds, frozenset(methods), random.Random(seed), slow) if rate else None

    def share_file_as_user(
        self,
        user: str,
        channel: str,
        data: bytes | Path,
        name: str,
        *,
        thread_ts: str,
        text: str = "",
        mimetype: str = "",
    ) -> tuple[str, str, list[int]]:
        """A person attaches a file to a thread reply (Slack's client uploads it); the app receives a ``message``
        of subtype ``file_share`` with ``files[]``. ``data``: the bytes, or a file on disk (copied, never read
        whole). Returns the message's ts, the file id and the statuses."""
        event, file_id = self.add_file_share(
            user, channel, data, name, thread_ts=thread_ts, text=text, mimetype=mimetype
        )
        return str(event["ts"]), file_id, self.deliver(event)

    def add_file_share(
        self,
        user: str,
        channel: str,
        data: bytes | Path,
        name: str,
        *,
        thread_ts: str,
        text: str = "",
        mimetype: str = "",
    ) -> tuple[dict[str, Any], str]:
        """``share_file_as_user`` without delivering: the ``file_share`` event to deliver, and the file id."""
        with self._lock:
            file_id = "F" + uuid.uuid4().hex[:10].upper()
            path = Path(self._file_dir.name) / file_id
            if isinstance(data, Path):
                shutil.copyfile(data, path)
            else:
                path.write_bytes(data)
            size = path.stat().st_size
            upload = Upload(file_id, name, size, float("inf"), path, claimed=True, received=size)
            self._uploads[file_id] = upload
            ts = self._next_ts()
            file = self._file_object(upload, name, self.clock())
            file |= {"user": user, "mimetype": mimetype or file["mimetype"]}
            file["channels"].append(channel)
            file["shares"] = {"public": {channel: [{"ts": ts, "thread_ts": thread_ts, "team_id": self.team}]}}
            upload.file = file
            listed = ("channels", "groups", "ims", "shares")  # files.info has these; a message's file objects do not
            msg: dict[str, Any] = {
                "type": "message",
                "subtype": "file_share",
                "text": text,
                "files": [{k: v for k, v in file.items() if k not in listed}],
                "upload": False,
                "user": user,
                "display_as_bot": False,
                "ts": ts,
                "team": self.team,
                "thread_ts": thread_ts,
                "parent_user_id": self._author_of(channel, thread_ts),
            }
            self.channels[channel].messages.append(msg)
        return dict(msg, channel=channel, channel_type="channel", event_ts=ts), file_id

    # ------------------------------------------------------------------ what happened

    def calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def count_429(self) -> int:
        return sum(1 for c in self.calls() if c.status == 429)

    def messages(self, channel: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self.channels[channel].messages]

    def roots(self, channel: str) -> list[dict[str, Any]]:
        return [m for m in self.messages(channel) if m.get("thread_ts", m["ts"]) == m["ts"]]

    def file_path(self, file_id: str) -> Path:
        """Where the bytes of ``file_id`` are on disk (a large file is hashed from there, not read whole)."""
        with self._lock:
            return self._uploads[file_id].path

    def _share(
        self, channel: Channel, uploads: list[Upload], thread_ts: str, comment: str, blocks: list[Any] | None
    ) -> None:
        super()._share(channel, uploads, thread_ts, comment, blocks)
        if self.on_file_shared is not None:
            for upload in uploads:
                self.on_file_shared(dict(upload.file or {}))

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """The root message and its replies, oldest first."""
        found = [m for m in self.messages(channel) if m["ts"] == ts or m.get("thread_ts") == ts]
        return sorted(found, key=lambda m: float(m["ts"]))

    def reactions(self, channel: str, ts: str) -> list[str]:
        with self._lock:
            return list(self.reactions_by_msg.get((channel, ts), []))
