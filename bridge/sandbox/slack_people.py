"""The Slack emulator's delivery side: signed Events API envelopes, slash commands and interactivity payloads
sent to the app (over HTTP, or down the Socket Mode connection when the app holds one), and people acting in
Slack (posting, editing, clicking, submitting). Signatures are ``v0=HMAC-SHA256(v0:{ts}:{body})``; repeated
deliveries carry ``X-Slack-Retry-Num``/``X-Slack-Retry-Reason``."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx

from bridge.sandbox.slack_state import APP_ID, BOT_USER, SlackWorld


class SlackPeople(SlackWorld):
    client: httpx.Client

    # ------------------------------------------------------------------ signing and delivery to the app

    def sign(self, body: bytes, *, secret: str | None = None, timestamp: int | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        base = b"v0:" + ts.encode() + b":" + body
        digest = hmac.new((secret or self.signing_secret).encode(), base, hashlib.sha256).hexdigest()
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}

    def send_raw(
        self, body: bytes, headers: dict[str, str], content_type: str = "application/json", target: str | None = None
    ) -> httpx.Response:
        url = target or self.event_target
        if not url:
            raise RuntimeError("no event_target: the app's request URL is not set")
        return self.client.post(url, content=body, headers={"Content-Type": content_type, **headers})

    def send_envelope(
        self, envelope: dict[str, Any], *, secret: str | None = None, timestamp: int | None = None, retry_num: int = 0
    ) -> httpx.Response:
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
            msg: dict[str, Any] = {
                "type": "message",
                "user": user,
                "text": text,
                "ts": ts,
                "team": self.team,
                "client_msg_id": str(uuid.uuid4()),
            }
            if thread_ts:
                msg["thread_ts"] = thread_ts
                msg["parent_user_id"] = self._author_of(channel, thread_ts)
            self.channels[channel].messages.append(msg)
        return dict(msg, channel=channel, channel_type="channel", event_ts=ts)

    def envelope(self, event: dict[str, Any]) -> dict[str, Any]:
        """An Events API envelope around ``event`` with a fresh ``event_id``."""
        return self._envelope(event)

    def post_as_user(
        self, user: str, channel: str, text: str, *, thread_ts: str | None = None, deliveries: int = 1
    ) -> tuple[str, list[int]]:
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
        event = {
            "type": "message",
            "subtype": "message_changed",
            "hidden": True,
            "channel": channel,
            "ts": current["edited"]["ts"],
            "event_ts": current["edited"]["ts"],
            "message": current,
            "previous_message": previous,
            "channel_type": "channel",
        }
        return self.deliver(event)

    def delete_as_user(self, user: str, channel: str, ts: str) -> list[int]:
        with self._lock:
            msg = self._find(channel, ts)
            self.channels[channel].messages.remove(msg)
            now_ts = self._next_ts()
        event = {
            "type": "message",
            "subtype": "message_deleted",
            "hidden": True,
            "channel": channel,
            "ts": now_ts,
            "deleted_ts": ts,
            "event_ts": now_ts,
            "previous_message": msg,
            "channel_type": "channel",
        }
        return self.deliver(event)

    def join_channel(self, user: str, channel: str) -> list[int]:
        with self._lock:
            self.channels[channel].members.append(user)
            ts = self._next_ts()
            msg = {
                "type": "message",
                "subtype": "channel_join",
                "user": user,
                "ts": ts,
                "text": f"<@{user}> has joined the channel",
            }
            self.channels[channel].messages.append(msg)
        return self.deliver(dict(msg, channel=channel, event_ts=ts, channel_type="channel"))

    def open_home(self, user: str) -> list[int]:
        return self.deliver(
            {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home", "event_ts": self._next_ts()}
        )

    def slash_command(self, user: str, channel: str, text: str, command: str = "/dm") -> httpx.Response:
        """``/dm …`` typed in ``channel`` (Slack never sends a thread_ts with a command)."""
        fields = {
            "token": "verification-token",
            "team_id": self.team,
            "team_domain": "sandbox",
            "channel_id": channel,
            "channel_name": self.channels[channel].name if channel in self.channels else "unknown",
            "user_id": user,
            "user_name": self.users.get(user, {}).get("name", user),
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": self._new_response_url(user, channel),
            "trigger_id": self._new_trigger(),
        }
        return self.send_form(fields)

    def interact(self, payload: dict[str, Any]) -> httpx.Response:
        """Deliver an interactivity payload (block_actions, message_action, view_submission …)."""
        user = str((payload.get("user") or {}).get("id", ""))
        channel = str((payload.get("channel") or {}).get("id", ""))
        base = {
            "token": "verification-token",
            "api_app_id": APP_ID,
            "team": {"id": self.team, "domain": "sandbox"},
            "trigger_id": self._new_trigger(),
            "response_url": self._new_response_url(user, channel),
        }
        return self.send_form({"payload": json.dumps(base | payload)})

    def click(
        self,
        user: str,
        channel: str,
        message_ts: str,
        action_id: str,
        *,
        option: str | None = None,
        selected_user: str | None = None,
    ) -> httpx.Response:
        """A person uses an element of a message: a button, an overflow menu ``option``, or a user picker.

        The element must be on the message, as in Slack: a test cannot click what is not shown.
        """
        msg = self.messages_by_ts(channel, message_ts)
        element, block_id = _element(msg.get("blocks") or [], action_id)
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": block_id,
            "type": element["type"],
            "action_ts": f"{time.time():.6f}",
        }
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
        return self.interact(
            {
                "type": "block_actions",
                "user": self._user_ref(user),
                "container": container,
                "channel": {"id": channel, "name": self.channels[channel].name},
                "message": msg,
                "state": {"values": {}},
                "actions": [action],
            }
        )

    def shortcut(self, user: str, channel: str, message_ts: str, callback_id: str) -> httpx.Response:
        """A person runs a message shortcut on a message (root or reply)."""
        msg = self.messages_by_ts(channel, message_ts)
        return self.interact(
            {
                "type": "message_action",
                "callback_id": callback_id,
                "user": self._user_ref(user),
                "channel": {"id": channel, "name": self.channels[channel].name},
                "message_ts": message_ts,
                "action_ts": f"{time.time():.6f}",
                "message": msg,
            }
        )

    def submit_view(self, user: str, view_id: str, values: dict[str, dict[str, Any]]) -> httpx.Response:
        """Submit an open modal with ``values`` as ``state.values``."""
        with self._lock:
            view = dict(self.views[view_id])
        view["state"] = {"values": values}
        return self.interact(
            {"type": "view_submission", "user": self._user_ref(user), "view": view, "response_urls": []}
        )

    def messages_by_ts(self, channel: str, ts: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._find(channel, ts))

    def select_in_view(self, user: str, view_id: str, action_id: str, value: str) -> httpx.Response:
        """A person picks ``value`` in a static select inside an open modal (block_actions from a view)."""
        with self._lock:
            view = dict(self.views[view_id])
        action = {
            "type": "static_select",
            "action_id": action_id,
            "block_id": action_id,
            "selected_option": {"text": {"type": "plain_text", "text": value}, "value": value},
            "action_ts": f"{time.time():.6f}",
        }
        return self.interact(
            {
                "type": "block_actions",
                "user": self._user_ref(user),
                "container": {"type": "view", "view_id": view_id},
                "view": view,
                "actions": [action],
            }
        )


def _element(blocks: list[dict[str, Any]], action_id: str) -> tuple[dict[str, Any], str]:
    for block in blocks:
        elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
        if block.get("accessory"):
            elements.append(block["accessory"])
        for element in elements:
            if element.get("action_id") == action_id:
                return element, str(block.get("block_id", ""))
    raise ValueError(f"no element {action_id!r} on that message")
