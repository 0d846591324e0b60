"""The Slack emulator's Web API side: ``POST``/``GET /api/{method}`` with a bearer token, read the way Slack reads it.

Encodings follow the spec's ``consumes``: every method reads query and form arguments; only the methods in
:data:`bridge.sandbox.slack_wire.JSON_METHODS` read a JSON body (``Content-Type: application/json``, token in
the ``Authorization`` header). A JSON body sent to any other method is ignored, so it answers as Slack answers
a missing argument.
Answers are Slack-shaped: ``{"ok": false, "error": …}`` with HTTP 200 for API errors (reasons in
``response_metadata.messages``), HTTP 429 + ``Retry-After`` for rate limits. The ``conversations.*`` reads,
paged with ``limit``/``cursor``, are in :mod:`bridge.sandbox.slack_conversations`. Faults come from
``fail_next`` and ``chaos``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bridge.sandbox.slack_checks import Refused, check_message, check_view
from bridge.sandbox.slack_state import (
    APP_ID,
    BOT_ID,
    BOT_USER,
    TRIGGER_SECONDS,
    ApiError,
    Call,
    Channel,
    Fault,
    SlackWorld,
)
from bridge.sandbox.slack_wire import json_field, parse_params


class _CutOff(Response):
    """Announces a body it never sends: the client sees the connection close mid-answer."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"ok": tr', "more_body": False})


class WebApiMethods(SlackWorld):
    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        raw = await request.body()
        content_type = request.headers.get("content-type", "")
        params, encoding, sent = parse_params(method, raw, content_type, dict(request.query_params))
        peer = f"{request.client.host}:{request.client.port}" if request.client else ""
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else str(params.get("token", ""))
        if encoding == "json" and not auth:
            token = ""  # Slack takes a JSON body's token only from the Authorization header
        with self._lock:
            fault = self._faults.get(method, [])
            injected = fault.pop(0) if fault else None
            chaos = self._chaos
            if injected is None and chaos is not None and method in chaos.methods and chaos.rng.random() < chaos.rate:
                kind = chaos.rng.choice(chaos.kinds)
                self.chaos_log.append((method, kind))
                injected = {
                    "429": Fault(429, retry_after=1),
                    "500": Fault(500),
                    "slow": Fault(200, delay=chaos.slow),
                    "reset": Fault(200, reset=True),
                }[kind]
        if injected is not None and injected.delay:
            await asyncio.sleep(injected.delay)  # a slow Slack: the call still happens, late
        with self._lock:
            try:
                if injected is not None and not (injected.delay or injected.reset or injected.hang):
                    raise _fault_error(injected)
                if method == "apps.connections.open":
                    if token != self.socket.app_token:
                        raise ApiError("invalid_auth")
                    self._calls.append(Call(method, params, 200, encoding=encoding, sent=sent, peer=peer))
                    return JSONResponse({"ok": True, "url": self.socket.url()})
                if not token:
                    raise ApiError("not_authed")
                if token != self.bot_token or not self.token_valid:
                    raise ApiError("invalid_auth" if self.token_valid or token != self.bot_token else "token_revoked")
                handler = getattr(self, "_m_" + method.replace(".", "_"), None)
                if handler is None:
                    raise ApiError("unknown_method", 404)
                try:
                    data = handler(params)
                except Refused as exc:
                    raise ApiError(exc.error, messages=exc.messages) from exc
                self._calls.append(Call(method, params, 200, encoding=encoding, sent=sent, peer=peer))
                if injected is not None and injected.reset:
                    return _CutOff()
                headers = {"x-oauth-scopes": ",".join(self.scopes)} if method == "auth.test" else None
                answer = JSONResponse({"ok": True, **data}, headers=headers)
            except ApiError as exc:
                self._calls.append(Call(method, params, exc.status, exc.error, encoding=encoding, sent=sent, peer=peer))
                body: dict[str, Any] = {"ok": False, "error": exc.error, **exc.extra}
                if exc.messages:
                    body["response_metadata"] = {"messages": exc.messages}
                return JSONResponse(body, status_code=exc.status, headers=exc.headers)
        if injected is not None and injected.hang:
            await asyncio.sleep(injected.hang)  # the call took effect; its answer is late
        return answer

    async def _response_url(self, request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        token = request.path_params["token"]
        with self._lock:
            self.responses.append({"token": token, **body})
            user, channel = self._response_targets.get(token, ("", ""))
            private = (
                body.get("response_type", "ephemeral") == "ephemeral"
                and not body.get("replace_original")
                and not body.get("delete_original")
            )
            if user and private:  # shown to the person who interacted, member of the channel or not
                self.ephemerals.append(
                    {
                        "channel": channel,
                        "user": user,
                        "text": body.get("text"),
                        "blocks": body.get("blocks"),
                        "via": "response_url",
                    }
                )
        return Response("ok")

    # ------------------------------------------------------------------ methods (called with the lock held)

    def _m_auth_test(self, _p: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://sandbox.slack.example/",
            "team": "Sandbox",
            "user": "dmbridge",
            "team_id": self.team,
            "user_id": BOT_USER,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._postable(p)
        check_message(p.get("text"), json_field(p.get("blocks")))
        if self.posts_per_second > 0:
            self._take_post_token(channel.id)
        ts = self._next_ts()
        msg: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message" if p.get("username") else None,
            "user": BOT_USER,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "ts": ts,
            "text": str(p.get("text") or ""),
            "team": self.team,
        }
        msg = {k: v for k, v in msg.items() if v is not None}
        if p.get("blocks"):
            msg["blocks"] = json_field(p["blocks"])
        for key in ("username", "icon_url", "icon_emoji"):
            if p.get(key):
                msg[key] = p[key]
        if p.get("metadata"):
            msg["metadata"] = json_field(p["metadata"])
        thread_ts = p.get("thread_ts")
        if thread_ts:
            self._find(channel.id, str(thread_ts))  # we insist the thread's root exists
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
            raise ApiError("cant_update_message")
        blocks = json_field(p.get("blocks"))
        check_message(p["text"] if "text" in p else msg.get("text"), blocks)
        if "text" in p:
            msg["text"] = str(p["text"])
        if blocks is not None:
            msg["blocks"] = blocks
        msg["edited"] = {"user": BOT_USER, "ts": self._next_ts()}
        return {"channel": channel.id, "ts": msg["ts"], "text": msg["text"]}

    def _m_chat_delete(self, p: dict[str, Any]) -> dict[str, Any]:
        """A bot token deletes only the bot's own messages (others: ``cant_delete_message``); Slack then
        sends ``message_deleted`` to channels the app subscribes to."""
        channel = self._channel(p)
        msg = self._find(channel.id, str(p.get("ts")))
        if msg.get("bot_id") != BOT_ID:
            raise ApiError("cant_delete_message")
        channel.messages.remove(msg)
        if self.echo_bot_messages and (self.event_target or self.socket.connected()):
            now_ts = self._next_ts()
            event = {
                "type": "message",
                "subtype": "message_deleted",
                "hidden": True,
                "channel": channel.id,
                "ts": now_ts,
                "deleted_ts": msg["ts"],
                "event_ts": now_ts,
                "previous_message": msg,
                "channel_type": "channel",
            }
            self._outbox.put(json.dumps(self._envelope(event)).encode())
        return {"channel": channel.id, "ts": msg["ts"]}

    def _m_chat_postEphemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._postable(p)
        user = str(p.get("user") or "")
        if user not in self.users:
            raise ApiError("user_not_found")
        if user not in channel.members:
            raise ApiError("user_not_in_channel")
        blocks = json_field(p.get("blocks"))
        check_message(p.get("text"), blocks)
        ts = self._next_ts()
        self.ephemerals.append(
            {
                "channel": channel.id,
                "user": user,
                "text": p.get("text"),
                "blocks": blocks or None,
                "thread_ts": p.get("thread_ts"),
                "ts": ts,
            }
        )
        return {"message_ts": ts}

    def _m_chat_getPermalink(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(p)
        ts = str(p.get("message_ts"))
        self._find(channel.id, ts)
        return {
            "channel": channel.id,
            "permalink": f"https://sandbox.slack.example/archives/{channel.id}/p{ts.replace('.', '')}",
        }

    def _m_reactions_add(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(p)
        ts, name = str(p.get("timestamp")), str(p.get("name"))
        self._find(channel.id, ts)
        names = self.reactions_by_msg.setdefault((channel.id, ts), [])
        if name in names:
            raise ApiError("already_reacted")
        names.append(name)
        return {}

    def _m_reactions_remove(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(p)
        ts, name = str(p.get("timestamp")), str(p.get("name"))
        names = self.reactions_by_msg.get((channel.id, ts), [])
        if name not in names:
            raise ApiError("no_reaction")
        names.remove(name)
        return {}

    def _m_users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(p.get("user")))
        if user is None:
            raise ApiError("user_not_found")
        return {"user": user}

    def _m_users_getPresence(self, p: dict[str, Any]) -> dict[str, Any]:
        user = str(p.get("user") or BOT_USER)  # without ``user``, Slack answers for the caller
        if user not in self.users:
            raise ApiError("user_not_found")
        return {"presence": self.presence.get(user, "away")}

    def _m_usergroups_users_list(self, p: dict[str, Any]) -> dict[str, Any]:
        group = self.usergroups.get(str(p.get("usergroup")))
        if group is None:
            raise ApiError("no_such_subteam")
        return {"users": list(group)}  # Slack documents no pagination here

    def _m_views_open(self, p: dict[str, Any]) -> dict[str, Any]:
        trigger = str(p.get("trigger_id"))
        issued = self._triggers.pop(trigger, None)
        if issued is None:
            raise ApiError("exchanged_trigger_id" if trigger.startswith("trg.") else "invalid_trigger_id")
        if time.time() - issued > TRIGGER_SECONDS:
            raise ApiError("expired_trigger_id")
        view = json_field(p.get("view"))
        check_view(view, ("modal",))
        view_id = "V" + uuid.uuid4().hex[:10].upper()
        self.views[view_id] = self._stored(view, view_id)
        return {"view": self.views[view_id]}

    def _m_views_update(self, p: dict[str, Any]) -> dict[str, Any]:
        view_id = str(p.get("view_id"))
        old = self.views.get(view_id)
        if old is None:
            raise ApiError("not_found")
        if p.get("hash") and p["hash"] != old["hash"]:
            raise ApiError("hash_conflict")
        view = json_field(p.get("view"))
        check_view(view, ("modal",))
        self.views[view_id] = self._stored(view, view_id)
        return {"view": self.views[view_id]}

    def _m_views_publish(self, p: dict[str, Any]) -> dict[str, Any]:
        user = str(p.get("user_id"))
        if user not in self.users:
            raise ApiError("user_not_found")
        view = json_field(p.get("view"))
        check_view(view, ("home",))
        self.home_views[user] = view
        return {"view": dict(view, id="VHOME" + user)}

    # ------------------------------------------------------------------ helpers (called with the lock held)

    def _postable(self, p: dict[str, Any]) -> Channel:
        """A channel the bot may post in: a member, or a public channel with ``chat:write.public``."""
        channel = self._channel(p)
        if BOT_USER in channel.members:
            return channel
        if channel.is_private:
            raise ApiError("channel_not_found")
        if "chat:write.public" not in self.scopes:
            raise ApiError("not_in_channel")
        return channel

    def _stored(self, view: dict[str, Any], view_id: str) -> dict[str, Any]:
        return dict(
            view,
            id=view_id,
            team_id=self.team,
            app_id=APP_ID,
            bot_id=BOT_ID,
            hash=f"{time.time():.6f}.{uuid.uuid4().hex[:8]}",
            root_view_id=view_id,
        )

    def _take_post_token(self, channel: str) -> None:
        now = time.monotonic()
        tokens, stamp = self._buckets.get(channel, (float(self.post_burst), now))
        tokens = min(float(self.post_burst), tokens + (now - stamp) * self.posts_per_second)
        if tokens < 1:
            self._buckets[channel] = (tokens, now)
            wait = max(1, int((1 - tokens) / self.posts_per_second + 0.999))
            raise ApiError("ratelimited", 429, {"Retry-After": str(wait)})
        self._buckets[channel] = (tokens - 1, now)


def _fault_error(fault: Fault) -> ApiError:
    if fault.status == 429:
        return ApiError("ratelimited", 429, {"Retry-After": str(int(fault.retry_after or 1))})
    return ApiError(fault.error or ("internal_error" if fault.status >= 500 else "fatal_error"), fault.status)
