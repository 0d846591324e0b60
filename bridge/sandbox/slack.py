"""An emulator of the Slack Web API and of Slack's signed deliveries to an app.

Web API side (what the bridge calls): ``POST /api/{method}`` with a bearer
token, JSON or form bodies, answers shaped like Slack's (``{"ok": false,
"error": …}`` with HTTP 200 for API errors, HTTP 429 + ``Retry-After`` for rate
limits). Faults are injected per method with :meth:`SlackEmulator.fail_next`,
and an optional per-channel limit on ``chat.postMessage`` answers 429 like
Slack's ~1 message per second.

Delivery side (what Slack sends the app): Events API envelopes, slash commands
and interactivity payloads, signed with ``v0=HMAC-SHA256(v0:{ts}:{body})``;
repeated deliveries carry ``X-Slack-Retry-Num``/``X-Slack-Retry-Reason``. A
message the bot posts comes back to the app as a ``message`` event with its
``bot_id`` (asynchronously, as Slack does), so self-event filtering is real.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import queue
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.sandbox.server import HttpServer

TEAM = "T0SANDBOX"
BOT_USER = "U0BOT"
BOT_ID = "B0BOT"
APP_ID = "A0BRIDGE"
TRIGGER_SECONDS = 3.0
SECTION_TEXT_LIMIT = 3000
BLOCKS_LIMIT = 50
TEXT_LIMIT = 40_000


@dataclass
class Call:
    """One Web API call as the emulator received it."""

    method: str
    params: dict[str, Any]
    status: int
    error: str | None = None


@dataclass
class _Fault:
    status: int
    retry_after: float | None = None
    error: str | None = None
    delay: float = 0.0
    reset: bool = False  # do the work, then break the connection before the answer is complete


class _CutOff(Response):
    """Announces a body it never sends: the client sees the connection close mid-answer."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
        await send({"type": "http.response.body", "body": b'{"ok": tr', "more_body": False})


@dataclass
class _Chaos:
    rate: float
    kinds: tuple[str, ...]
    methods: frozenset[str]
    rng: random.Random
    slow: float


@dataclass
class _Channel:
    id: str
    name: str
    members: list[str]
    messages: list[dict[str, Any]] = field(default_factory=list)


class _ApiError(Exception):
    def __init__(self, error: str, status: int = 200, headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.error, self.status, self.headers = error, status, headers or {}


class SocketModeServer:
    """Slack's Socket Mode end: ``apps.connections.open`` hands out a ``ws://`` URL; envelopes go down the
    socket and count as delivered once the app acknowledges their ``envelope_id`` (within 3 s, as Slack)."""

    def __init__(self, app_token: str) -> None:
        self.app_token = app_token
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._conns: list[Any] = []
        self._acks: dict[str, tuple[threading.Event, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.port = 0

    def start(self) -> None:
        from websockets.sync.server import serve

        self._server = serve(self._handle, "127.0.0.1", 0)
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="slack-socket-mode", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link/?ticket={uuid.uuid4().hex}&app_id={APP_ID}"

    def connected(self) -> bool:
        with self._lock:
            return bool(self._conns)

    def _handle(self, conn: Any) -> None:
        conn.send(json.dumps({"type": "hello", "num_connections": 1, "debug_info": {"host": "sandbox"},
                              "connection_info": {"app_id": APP_ID}}))
        with self._lock:
            self._conns.append(conn)
        try:
            for message in conn:
                data = json.loads(message)
                with self._lock:
                    waiting = self._acks.get(str(data.get("envelope_id")))
                if waiting is not None:
                    waiting[1].update(data.get("payload") or {})
                    waiting[0].set()
        except Exception:  # a dropped connection ends this handler, as on Slack's side
            pass
        finally:
            with self._lock:
                self._conns.remove(conn)

    def send(self, kind: str, payload: dict[str, Any], retry_num: int = 0, timeout: float = 3.0) -> httpx.Response:
        """Push one envelope; a 200 with the ack's payload when acknowledged in time, else a 408."""
        envelope_id = str(uuid.uuid4())
        done, answer = threading.Event(), dict[str, Any]()
        with self._lock:
            self._acks[envelope_id] = (done, answer)
            conn = self._conns[-1]
        conn.send(json.dumps({"envelope_id": envelope_id, "type": kind, "payload": payload,
                              "accepts_response_payload": kind != "events_api", "retry_attempt": retry_num,
                              "retry_reason": "timeout" if retry_num else ""}))
        acked = done.wait(timeout)
        with self._lock:
            self._acks.pop(envelope_id, None)
        return httpx.Response(200 if acked else 408, json=answer)


class SlackEmulator:
    def __init__(self, *, signing_secret: str, bot_token: str, team: str = TEAM, app_token: str = "xapp-sandbox",
                 posts_per_second: float = 0.0, post_burst: int = 1, echo_bot_messages: bool = True) -> None:
        self.signing_secret = signing_secret
        self.bot_token = bot_token
        self.socket = SocketModeServer(app_token)
        self.team = team
        self.token_valid = True
        self.event_target = ""
        self.posts_per_second = posts_per_second
        self.post_burst = post_burst
        self.echo_bot_messages = echo_bot_messages
        self.users: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.presence: dict[str, str] = {}
        self.channels: dict[str, _Channel] = {}
        self.reactions_by_msg: dict[tuple[str, str], list[str]] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self.home_views: dict[str, dict[str, Any]] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self._calls: list[Call] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._chaos: _Chaos | None = None
        self.chaos_log: list[tuple[str, str]] = []
        self._triggers: dict[str, float] = {}
        self._buckets: dict[str, tuple[float, float]] = {}
        self._last_ts = 0.0
        self._event_seq = 0
        self._lock = threading.RLock()
        self._outbox: queue.Queue[bytes | None] = queue.Queue()
        self._sender: threading.Thread | None = None
        self.echo_statuses: list[int] = []
        self.add_user(BOT_USER, "dmbridge", "dmbridge", is_bot=True)
        self.http = HttpServer(Starlette(routes=[
            Route("/api/{method}", self._api, methods=["GET", "POST"]),
            Route("/response/{token}", self._response_url, methods=["POST"]),
        ]))
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

    # ------------------------------------------------------------------ world set-up

    def add_user(self, user_id: str, name: str, real_name: str, *, is_bot: bool = False,
                 tz: str = "Europe/Berlin", image: str | None = None) -> None:
        with self._lock:
            self.users[user_id] = {
                "id": user_id, "team_id": self.team, "name": name, "real_name": real_name, "is_bot": is_bot,
                "deleted": False, "tz": tz,
                "profile": {"real_name": real_name, "display_name": name,
                            "image_72": image or f"https://avatars.slack.example/{user_id}_72.png"},
            }
            self.presence.setdefault(user_id, "active")

    def add_channel(self, channel_id: str, name: str, members: list[str] | None = None) -> None:
        with self._lock:
            self.channels[channel_id] = _Channel(channel_id, name, list(members or [BOT_USER]))

    def add_usergroup(self, group_id: str, users: list[str]) -> None:
        with self._lock:
            self.usergroups[group_id] = list(users)

    def set_presence(self, user_id: str, presence: str) -> None:
        with self._lock:
            self.presence[user_id] = presence

    def revoke_token(self, revoked: bool = True) -> None:
        """Every Web API call answers ``invalid_auth`` until called with False."""
        self.token_valid = not revoked

    def fail_next(self, method: str, *, status: int = 429, retry_after: float | None = 1, error: str | None = None,
                  times: int = 1, delay: float = 0.0) -> None:
        """The next ``times`` calls of ``method`` fail: 429 (with Retry-After), a 5xx, an API ``error``,
        or (with ``delay``) answer only after that many seconds."""
        with self._lock:
            self._faults.setdefault(method, []).extend(
                _Fault(status, retry_after if status == 429 else None, error, delay) for _ in range(times))

    def chaos(self, rate: float, *, kinds: tuple[str, ...] = ("429", "500", "slow", "reset"),
              methods: tuple[str, ...] = ("chat.postMessage", "reactions.add", "reactions.remove", "chat.update"),
              slow: float = 2.0, seed: int = 7) -> None:
        """From now on a share ``rate`` of calls to ``methods`` fail at random with one of ``kinds``: 429 with
        Retry-After, 500, an answer ``slow`` seconds late (after the call took effect), or a connection cut
        off after the call took effect (``reset``). ``rate=0`` stops it."""
        with self._lock:
            self._chaos = _Chaos(rate, kinds, frozenset(methods), random.Random(seed), slow) if rate else None

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

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """The root message and its replies, oldest first."""
        found = [m for m in self.messages(channel) if m["ts"] == ts or m.get("thread_ts") == ts]
        return sorted(found, key=lambda m: float(m["ts"]))

    def reactions(self, channel: str, ts: str) -> list[str]:
        with self._lock:
            return list(self.reactions_by_msg.get((channel, ts), []))

    # ------------------------------------------------------------------ signing and delivery to the app

    def sign(self, body: bytes, *, secret: str | None = None, timestamp: int | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        base = b"v0:" + ts.encode() + b":" + body
        digest = hmac.new((secret or self.signing_secret).encode(), base, hashlib.sha256).hexdigest()
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}

    def send_raw(self, body: bytes, headers: dict[str, str], content_type: str = "application/json",
                 target: str | None = None) -> httpx.Response:
        url = target or self.event_target
        if not url:
            raise RuntimeError("no event_target: the app's request URL is not set")
        return self.client.post(url, content=body, headers={"Content-Type": content_type, **headers})

    def send_envelope(self, envelope: dict[str, Any], *, secret: str | None = None, timestamp: int | None = None,
                      retry_num: int = 0) -> httpx.Response:
        """Deliver an Events API body, signed (with ``secret``/``timestamp`` to forge or age it)."""
        if self.socket.connected() and secret is None and timestamp is None:
            return self.socket.send("events_api", envelope, retry_num)
        body = json.dumps(envelope).encode()
        headers = self.sign(body, secret=secret, timestamp=timestamp)
        if retry_num:
            headers |= {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        return self.send_raw(body, headers)

    def send_envelope_to(self, envelope: dict[str, Any], target: str, *, retry_num: int = 0) -> httpx.Response:
        """Deliver a signed Events API body to ``target`` (one of several app instances)."""
        body = json.dumps(envelope).encode()
        headers = self.sign(body)
        if retry_num:
            headers |= {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_error"}
        return self.send_raw(body, headers, target=target)

    def send_form(self, fields: dict[str, str], *, secret: str | None = None) -> httpx.Response:
        """Deliver a form-encoded request (slash command, or ``payload=`` interactivity), signed."""
        if self.socket.connected() and secret is None:
            if "payload" in fields:
                return self.socket.send("interactive", json.loads(fields["payload"]))
            return self.socket.send("slash_commands", dict(fields))
        body = urlencode(fields).encode()
        return self.send_raw(body, self.sign(body, secret=secret), "application/x-www-form-urlencoded")

    def deliver(self, event: dict[str, Any], deliveries: int = 1) -> list[int]:
        """Wrap ``event`` in an envelope and deliver it ``deliveries`` times (retries marked as Slack does)."""
        envelope = self._envelope(event)
        return [self.send_envelope(envelope, retry_num=i).status_code for i in range(deliveries)]

    def _envelope(self, event: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._event_seq += 1
            event_id = f"Ev{self._event_seq:08d}{uuid.uuid4().hex[:6].upper()}"
        return {"token": "verification-token", "team_id": self.team, "api_app_id": APP_ID, "type": "event_callback",
                "event_id": event_id, "event_time": int(time.time()), "event": event,
                "authorizations": [{"enterprise_id": None, "team_id": self.team, "user_id": BOT_USER,
                                    "is_bot": True, "is_enterprise_install": False}],
                "is_ext_shared_channel": False}

    def _send_echoes(self) -> None:
        while True:
            body = self._outbox.get()
            if body is None:
                return
            try:
                if self.socket.connected():
                    status = self.socket.send("events_api", json.loads(body)).status_code
                else:
                    status = self.send_raw(body, self.sign(body)).status_code
            except (httpx.HTTPError, RuntimeError):
                status = 0
            with self._lock:
                self.echo_statuses.append(status)

    # ------------------------------------------------------------------ people acting in Slack

    def add_message(self, user: str, channel: str, text: str, *, thread_ts: str | None = None) -> dict[str, Any]:
        """A person posts, and nothing is delivered yet: the ``message`` event to deliver is returned."""
        with self._lock:
            ts = self._next_ts()
            msg: dict[str, Any] = {"type": "message", "user": user, "text": text, "ts": ts, "team": self.team,
                                   "client_msg_id": str(uuid.uuid4())}
            if thread_ts:
                msg["thread_ts"] = thread_ts
                msg["parent_user_id"] = self._author_of(channel, thread_ts)
            self.channels[channel].messages.append(msg)
        return dict(msg, channel=channel, channel_type="channel", event_ts=ts)

    def envelope(self, event: dict[str, Any]) -> dict[str, Any]:
        """An Events API envelope around ``event`` with a fresh ``event_id``."""
        return self._envelope(event)

    def post_as_user(self, user: str, channel: str, text: str, *, thread_ts: str | None = None,
                     deliveries: int = 1) -> tuple[str, list[int]]:
        """A person posts; the app receives ``message`` (and ``app_mention`` when the bot is mentioned)."""
        event = self.add_message(user, channel, text, thread_ts=thread_ts)
        ts = str(event["ts"])
        statuses = self.deliver(event, deliveries)
        if f"<@{BOT_USER}>" in text:
            statuses += self.deliver(dict(event, type="app_mention"), deliveries)
        return ts, statuses

    def edit_as_user(self, user: str, channel: str, ts: str, text: str) -> list[int]:
        with self._lock:
            msg = self._find(channel, ts)
            previous = dict(msg)
            msg["text"] = text
            msg["edited"] = {"user": user, "ts": self._next_ts()}
            current = dict(msg)
        event = {"type": "message", "subtype": "message_changed", "hidden": True, "channel": channel,
                 "ts": current["edited"]["ts"], "event_ts": current["edited"]["ts"], "message": current,
                 "previous_message": previous, "channel_type": "channel"}
        return self.deliver(event)

    def delete_as_user(self, user: str, channel: str, ts: str) -> list[int]:
        with self._lock:
            msg = self._find(channel, ts)
            self.channels[channel].messages.remove(msg)
            now_ts = self._next_ts()
        event = {"type": "message", "subtype": "message_deleted", "hidden": True, "channel": channel,
                 "ts": now_ts, "deleted_ts": ts, "event_ts": now_ts, "previous_message": msg,
                 "channel_type": "channel"}
        return self.deliver(event)

    def join_channel(self, user: str, channel: str) -> list[int]:
        with self._lock:
            self.channels[channel].members.append(user)
            ts = self._next_ts()
            msg = {"type": "message", "subtype": "channel_join", "user": user, "ts": ts,
                   "text": f"<@{user}> has joined the channel"}
            self.channels[channel].messages.append(msg)
        return self.deliver(dict(msg, channel=channel, event_ts=ts, channel_type="channel"))

    def open_home(self, user: str) -> list[int]:
        return self.deliver({"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home",
                             "event_ts": self._next_ts()})

    def slash_command(self, user: str, channel: str, text: str, command: str = "/dm") -> httpx.Response:
        """``/dm …`` typed in ``channel`` (Slack never sends a thread_ts with a command)."""
        fields = {"token": "verification-token", "team_id": self.team, "team_domain": "sandbox",
                  "channel_id": channel, "channel_name": self.channels[channel].name if channel in self.channels
                  else "unknown", "user_id": user, "user_name": self.users.get(user, {}).get("name", user),
                  "command": command, "text": text, "api_app_id": APP_ID, "is_enterprise_install": "false",
                  "response_url": self._new_response_url(), "trigger_id": self._new_trigger()}
        return self.send_form(fields)

    def interact(self, payload: dict[str, Any]) -> httpx.Response:
        """Deliver an interactivity payload (block_actions, message_action, view_submission …)."""
        base = {"token": "verification-token", "api_app_id": APP_ID, "team": {"id": self.team, "domain": "sandbox"},
                "trigger_id": self._new_trigger(), "response_url": self._new_response_url()}
        return self.send_form({"payload": json.dumps(base | payload)})

    def click(self, user: str, channel: str, message_ts: str, action_id: str, *, option: str | None = None,
              selected_user: str | None = None) -> httpx.Response:
        """A person uses an element of a message: a button, an overflow menu ``option``, or a user picker.

        The element must be on the message, as in Slack: a test cannot click what is not shown.
        """
        msg = self.messages_by_ts(channel, message_ts)
        element, block_id = _element(msg.get("blocks") or [], action_id)
        action: dict[str, Any] = {"action_id": action_id, "block_id": block_id, "type": element["type"],
                                  "action_ts": f"{time.time():.6f}"}
        match element["type"]:
            case "button":
                action |= {"value": element.get("value", ""), "text": element.get("text")}
            case "overflow" | "static_select":
                chosen = [o for o in element.get("options", []) if o.get("value") == option]
                if not chosen:
                    raise ValueError(f"{action_id} has no option {option!r}")
                action["selected_option"] = chosen[0]
            case "users_select":
                action["selected_user"] = selected_user
            case other:
                raise ValueError(f"cannot use a {other} element")
        container = {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False}
        if msg.get("thread_ts"):
            container["thread_ts"] = msg["thread_ts"]
        return self.interact({"type": "block_actions", "user": self._user_ref(user), "container": container,
                              "channel": {"id": channel, "name": self.channels[channel].name}, "message": msg,
                              "state": {"values": {}}, "actions": [action]})

    def shortcut(self, user: str, channel: str, message_ts: str, callback_id: str) -> httpx.Response:
        """A person runs a message shortcut on a message (root or reply)."""
        msg = self.messages_by_ts(channel, message_ts)
        return self.interact({"type": "message_action", "callback_id": callback_id, "user": self._user_ref(user),
                              "channel": {"id": channel, "name": self.channels[channel].name},
                              "message_ts": message_ts, "action_ts": f"{time.time():.6f}", "message": msg})

    def submit_view(self, user: str, view_id: str, values: dict[str, dict[str, Any]]) -> httpx.Response:
        """Submit an open modal with ``values`` as ``state.values``."""
        with self._lock:
            view = dict(self.views[view_id])
        view["state"] = {"values": values}
        return self.interact({"type": "view_submission", "user": self._user_ref(user), "view": view,
                              "response_urls": []})

    def messages_by_ts(self, channel: str, ts: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._find(channel, ts))

    # ------------------------------------------------------------------ Web API

    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        raw = await request.body()
        params = _parse_params(raw, request.headers.get("content-type", ""), dict(request.query_params))
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else str(params.get("token", ""))
        with self._lock:
            fault = self._faults.get(method, [])
            injected = fault.pop(0) if fault else None
            chaos = self._chaos
            if injected is None and chaos is not None and method in chaos.methods and chaos.rng.random() < chaos.rate:
                kind = chaos.rng.choice(chaos.kinds)
                self.chaos_log.append((method, kind))
                injected = {"429": _Fault(429, retry_after=1), "500": _Fault(500),
                            "slow": _Fault(200, delay=chaos.slow), "reset": _Fault(200, reset=True)}[kind]
        if injected is not None and injected.delay:
            await asyncio.sleep(injected.delay)  # a slow Slack: the call still happens, late
        with self._lock:
            try:
                if injected is not None and not injected.delay and not injected.reset:
                    raise _fault_error(injected)
                if method == "apps.connections.open":
                    if token != self.socket.app_token:
                        raise _ApiError("invalid_auth")
                    self._calls.append(Call(method, params, 200))
                    return JSONResponse({"ok": True, "url": self.socket.url()})
                if token != self.bot_token or not self.token_valid:
                    raise _ApiError("invalid_auth" if self.token_valid or token != self.bot_token
                                    else "token_revoked")
                handler = getattr(self, "_m_" + method.replace(".", "_"), None)
                if handler is None:
                    raise _ApiError("unknown_method", 404)
                data = handler(params)
                self._calls.append(Call(method, params, 200))
                if injected is not None and injected.reset:
                    return _CutOff()
                return JSONResponse({"ok": True, **data})
            except _ApiError as exc:
                self._calls.append(Call(method, params, exc.status, exc.error))
                return JSONResponse({"ok": False, "error": exc.error}, status_code=exc.status, headers=exc.headers)

    async def _response_url(self, request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        with self._lock:
            self.responses.append({"token": request.path_params["token"], **body})
        return Response("ok")

    def _m_auth_test(self, _p: dict[str, Any]) -> dict[str, Any]:
        return {"url": "https://sandbox.slack.example/", "team": "Sandbox", "user": "dmbridge",
                "team_id": self.team, "user_id": BOT_USER, "bot_id": BOT_ID, "is_enterprise_install": False}

    def _m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(p)
        if BOT_USER not in channel.members:
            raise _ApiError("not_in_channel")
        self._check_content(p)
        if self.posts_per_second > 0:
            self._take_post_token(channel.id)
        ts = self._next_ts()
        msg: dict[str, Any] = {"type": "message", "subtype": "bot_message" if p.get("username") else None,
                               "user": BOT_USER, "bot_id": BOT_ID, "app_id": APP_ID, "ts": ts,
                               "text": str(p.get("text") or ""), "team": self.team}
        msg = {k: v for k, v in msg.items() if v is not None}
        if p.get("blocks"):
            msg["blocks"] = _json_field(p["blocks"])
        for key in ("username", "icon_url", "icon_emoji"):
            if p.get(key):
                msg[key] = p[key]
        if p.get("metadata"):
            msg["metadata"] = _json_field(p["metadata"])
        thread_ts = p.get("thread_ts")
        if thread_ts:
            self._find(channel.id, str(thread_ts))  # Slack answers thread_not_found? it posts; we insist it exists
            msg["thread_ts"] = str(thread_ts)
            msg["parent_user_id"] = self._author_of(channel.id, str(thread_ts))
        channel.messages.append(msg)
        if self.echo_bot_messages and (self.event_target or self.socket.connected()):
            event = dict(msg, channel=channel.id, event_ts=ts, channel_type="channel")
            self._outbox.put(json.dumps(self._envelope(event)).encode())
        return {"channel": channel.id, "ts": ts, "message": msg}

    def _m_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(p)
        msg = self._find(channel.id, str(p.get("ts")))
        if msg.get("bot_id") != BOT_ID:
            raise _ApiError("cant_update_message")
        self._check_content(p)
        if "text" in p:
            msg["text"] = str(p["text"])
        if p.get("blocks") is not None:
            msg["blocks"] = _json_field(p["blocks"])
        msg["edited"] = {"user": BOT_USER, "ts": self._next_ts()}
        return {"channel": channel.id, "ts": msg["ts"], "text": msg["text"]}

    def _m_chat_delete(self, p: dict[str, Any]) -> dict[str, Any]:
        """A bot token deletes only the bot's own messages (others: ``cant_delete_message``); Slack then
        sends ``message_deleted`` to channels the app subscribes to."""
        channel = self._channel(p)
        msg = self._find(channel.id, str(p.get("ts")))
        if msg.get("bot_id") != BOT_ID:
            raise _ApiError("cant_delete_message")
        channel.messages.remove(msg)
        if self.echo_bot_messages and (self.event_target or self.socket.connected()):
            now_ts = self._next_ts()
            event = {"type": "message", "subtype": "message_deleted", "hidden": True, "channel": channel.id,
                     "ts": now_ts, "deleted_ts": msg["ts"], "event_ts": now_ts, "previous_message": msg,
                     "channel_type": "channel"}
            self._outbox.put(json.dumps(self._envelope(event)).encode())
        return {"channel": channel.id, "ts": msg["ts"]}

    def _m_chat_postEphemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(p)
        ts = self._next_ts()
        self.ephemerals.append({"channel": channel.id, "user": p.get("user"), "text": p.get("text"),
                                "blocks": _json_field(p["blocks"]) if p.get("blocks") else None,
                                "thread_ts": p.get("thread_ts"), "ts": ts})
        return {"message_ts": ts}

    def _m_chat_getPermalink(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(p)
        ts = str(p.get("message_ts"))
        self._find(channel.id, ts)
        return {"channel": channel.id,
                "permalink": f"https://sandbox.slack.example/archives/{channel.id}/p{ts.replace('.', '')}"}

    def _m_reactions_add(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(p)
        ts, name = str(p.get("timestamp")), str(p.get("name"))
        self._find(channel.id, ts)
        names = self.reactions_by_msg.setdefault((channel.id, ts), [])
        if name in names:
            raise _ApiError("already_reacted")
        names.append(name)
        return {}

    def _m_reactions_remove(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(p)
        ts, name = str(p.get("timestamp")), str(p.get("name"))
        names = self.reactions_by_msg.get((channel.id, ts), [])
        if name not in names:
            raise _ApiError("no_reaction")
        names.remove(name)
        return {}

    def _m_users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(p.get("user")))
        if user is None:
            raise _ApiError("user_not_found")
        return {"user": user}

    def _m_users_getPresence(self, p: dict[str, Any]) -> dict[str, Any]:
        user = str(p.get("user"))
        if user not in self.users:
            raise _ApiError("user_not_found")
        return {"presence": self.presence.get(user, "away")}

    def _m_conversations_info(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(p)
        return {"channel": {"id": channel.id, "name": channel.name, "is_channel": True, "is_member":
                            BOT_USER in channel.members}}

    def _m_conversations_members(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(p)
        return {"members": list(channel.members), "response_metadata": {"next_cursor": ""}}

    def _m_conversations_replies(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(p)
        ts = str(p.get("ts"))
        self._find(channel.id, ts)
        found = [dict(m) for m in channel.messages if m["ts"] == ts or m.get("thread_ts") == ts]
        if str(p.get("include_all_metadata", "")).lower() not in ("true", "1"):
            for m in found:
                m.pop("metadata", None)
        return {"messages": sorted(found, key=lambda m: float(m["ts"])), "has_more": False}

    def _m_conversations_history(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(p)
        oldest = float(p.get("oldest") or 0)
        found = [dict(m) for m in channel.messages
                 if m.get("thread_ts", m["ts"]) == m["ts"] and float(m["ts"]) > oldest]
        if str(p.get("include_all_metadata", "")).lower() not in ("true", "1"):
            for m in found:
                m.pop("metadata", None)
        return {"messages": sorted(found, key=lambda m: -float(m["ts"])), "has_more": False}

    def _m_usergroups_users_list(self, p: dict[str, Any]) -> dict[str, Any]:
        group = self.usergroups.get(str(p.get("usergroup")))
        if group is None:
            raise _ApiError("no_such_subteam")
        return {"users": list(group)}

    def _m_views_open(self, p: dict[str, Any]) -> dict[str, Any]:
        trigger = str(p.get("trigger_id"))
        issued = self._triggers.pop(trigger, None)
        if issued is None:
            raise _ApiError("exchanged_trigger_id" if trigger.startswith("trg.") else "invalid_trigger_id")
        if time.time() - issued > TRIGGER_SECONDS:
            raise _ApiError("expired_trigger_id")
        view = _json_field(p.get("view"))
        if not isinstance(view, dict) or view.get("type") != "modal":
            raise _ApiError("invalid_arguments")
        view_id = "V" + uuid.uuid4().hex[:10].upper()
        stored = dict(view, id=view_id, team_id=self.team, app_id=APP_ID, bot_id=BOT_ID,
                      hash=f"{time.time():.6f}.{uuid.uuid4().hex[:8]}", root_view_id=view_id)
        self.views[view_id] = stored
        return {"view": stored}

    def _m_views_update(self, p: dict[str, Any]) -> dict[str, Any]:
        view_id = str(p.get("view_id"))
        old = self.views.get(view_id)
        if old is None:
            raise _ApiError("not_found")
        if p.get("hash") and p["hash"] != old["hash"]:
            raise _ApiError("hash_conflict")
        view = _json_field(p.get("view"))
        if not isinstance(view, dict) or view.get("type") != "modal":
            raise _ApiError("invalid_arguments")
        stored = dict(view, id=view_id, team_id=self.team, app_id=APP_ID, bot_id=BOT_ID,
                      hash=f"{time.time():.6f}.{uuid.uuid4().hex[:8]}", root_view_id=view_id)
        self.views[view_id] = stored
        return {"view": stored}

    def select_in_view(self, user: str, view_id: str, action_id: str, value: str) -> httpx.Response:
        """A person picks ``value`` in a static select inside an open modal (block_actions from a view)."""
        with self._lock:
            view = dict(self.views[view_id])
        action = {"type": "static_select", "action_id": action_id, "block_id": action_id,
                  "selected_option": {"text": {"type": "plain_text", "text": value}, "value": value},
                  "action_ts": f"{time.time():.6f}"}
        return self.interact({"type": "block_actions", "user": self._user_ref(user),
                              "container": {"type": "view", "view_id": view_id}, "view": view,
                              "actions": [action]})

    def _m_views_publish(self, p: dict[str, Any]) -> dict[str, Any]:
        user = str(p.get("user_id"))
        if user not in self.users:
            raise _ApiError("user_not_found")
        view = _json_field(p.get("view"))
        if not isinstance(view, dict) or view.get("type") != "home" or len(view.get("blocks", [])) > 100:
            raise _ApiError("invalid_arguments")
        self.home_views[user] = view
        return {"view": dict(view, id="VHOME" + user)}

    # ------------------------------------------------------------------ helpers (called with the lock held)

    def _next_ts(self) -> str:
        now = max(time.time(), self._last_ts + 0.000001)
        self._last_ts = now
        return f"{now:.6f}"

    def _channel(self, p: dict[str, Any]) -> _Channel:
        channel = self.channels.get(str(p.get("channel")))
        if channel is None:
            raise _ApiError("channel_not_found")
        return channel

    def _find(self, channel: str, ts: str) -> dict[str, Any]:
        for msg in self.channels[channel].messages:
            if msg["ts"] == ts:
                return msg
        raise _ApiError("message_not_found")

    def _author_of(self, channel: str, ts: str) -> str:
        try:
            return str(self._find(channel, ts).get("user", ""))
        except _ApiError:
            return ""

    def _user_ref(self, user: str) -> dict[str, str]:
        name = str(self.users.get(user, {}).get("name", user))
        return {"id": user, "username": name, "name": name, "team_id": self.team}

    def _new_trigger(self) -> str:
        trigger = f"trg.{uuid.uuid4().hex}"
        with self._lock:
            self._triggers[trigger] = time.time()
        return trigger

    def _new_response_url(self) -> str:
        return f"{self.http.url}/response/{uuid.uuid4().hex}"

    def _check_content(self, p: dict[str, Any]) -> None:
        blocks = _json_field(p["blocks"]) if p.get("blocks") else []
        if not p.get("text") and not blocks:
            raise _ApiError("no_text")
        if len(str(p.get("text") or "")) > TEXT_LIMIT:
            raise _ApiError("msg_too_long")
        if not isinstance(blocks, list) or len(blocks) > BLOCKS_LIMIT:
            raise _ApiError("invalid_blocks")
        for block in blocks:
            text = (block.get("text") or {}).get("text", "") if isinstance(block, dict) else ""
            if len(text) > SECTION_TEXT_LIMIT:
                raise _ApiError("invalid_blocks")

    def _take_post_token(self, channel: str) -> None:
        now = time.monotonic()
        tokens, stamp = self._buckets.get(channel, (float(self.post_burst), now))
        tokens = min(float(self.post_burst), tokens + (now - stamp) * self.posts_per_second)
        if tokens < 1:
            self._buckets[channel] = (tokens, now)
            wait = max(1, int((1 - tokens) / self.posts_per_second + 0.999))
            raise _ApiError("ratelimited", 429, {"Retry-After": str(wait)})
        self._buckets[channel] = (tokens - 1, now)


def _element(blocks: list[dict[str, Any]], action_id: str) -> tuple[dict[str, Any], str]:
    for block in blocks:
        elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
        if block.get("accessory"):
            elements.append(block["accessory"])
        for element in elements:
            if element.get("action_id") == action_id:
                return element, str(block.get("block_id", ""))
    raise ValueError(f"no element {action_id!r} on that message")


def _fault_error(fault: _Fault) -> _ApiError:
    if fault.status == 429:
        return _ApiError("ratelimited", 429, {"Retry-After": str(int(fault.retry_after or 1))})
    return _ApiError(fault.error or ("internal_error" if fault.status >= 500 else "fatal_error"), fault.status)


def _parse_params(raw: bytes, content_type: str, query: dict[str, str]) -> dict[str, Any]:
    params: dict[str, Any] = dict(query)
    if raw.strip().startswith(b"{") or "json" in content_type:
        with contextlib.suppress(ValueError):
            params.update(json.loads(raw or b"{}"))
    elif raw:
        params.update(parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True))
    return params


def _json_field(value: Any) -> Any:
    """Form bodies carry blocks/views/metadata as JSON strings; JSON bodies as objects."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
