"""Slack Web API calls the workers make, with slack_sdk errors translated at this edge."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bridge.errors import AuthFailed, Rejected, RetryLater
from bridge.slack.blocks import SlackMessage

AUTH_ERRORS = {"invalid_auth", "not_authed", "token_revoked", "account_inactive", "token_expired"}
HARMLESS = {"already_reacted", "no_reaction"}
METADATA_EVENT = "dmbridge_delivery"


def make_client(token: str, base_url: str, timeout: float = 15) -> WebClient:
    """A WebClient with no automatic 429 retry: rate limits are handled by the outbox."""
    return WebClient(token=token, base_url=base_url, timeout=max(1, round(timeout)))


class SlackThreads:
    def __init__(self, client: WebClient, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.clock = clock
        self.team_url = "https://slack.com/"

    def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        try:
            resp = self.client.api_call(method, json=kwargs)
            return dict(resp.data) if isinstance(resp.data, dict) else {}
        except SlackApiError as exc:
            status = exc.response.status_code
            error = str(exc.response.get("error", "")) if isinstance(exc.response.data, dict) else ""
            if error in HARMLESS:
                return {"ok": True, "error": error}
            if status == 429 or error == "ratelimited":
                after = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
                wait = float(after) if after else 1.0
                raise RetryLater(f"Slack rate limit on {method}", retry_at=self.clock() + wait,
                                 rate_limited=True) from exc
            if status >= 500:
                raise RetryLater(f"Slack {method} answered {status}", uncertain=True) from exc
            if error in AUTH_ERRORS:
                raise AuthFailed(f"Slack refused the bot token ({error})") from exc
            raise Rejected(f"Slack {method} failed: {error or status}") from exc
        except SlackClientError as exc:
            raise RetryLater(f"Slack {method}: {exc}", uncertain=True) from exc
        except OSError as exc:  # timeouts and resets may come after Slack acted; a refused connection cannot
            raise RetryLater(f"Slack unreachable: {type(exc).__name__}", uncertain=not _refused(exc)) from exc
        except http.client.HTTPException as exc:  # the connection broke mid-answer: Slack may have acted
            raise RetryLater(f"Slack answer cut off: {type(exc).__name__}", uncertain=True) from exc

    def post(self, channel: str, message: SlackMessage, *, thread_ts: str | None = None,
             username: str | None = None, icon_url: str | None = None, key: str | None = None) -> str:
        args: dict[str, Any] = dict(channel=channel, text=message.text, blocks=message.blocks, link_names=False,
                                    unfurl_links=False, unfurl_media=False)
        if thread_ts:
            args["thread_ts"] = thread_ts
        if username:
            args["username"] = username[:80]
        if icon_url:
            args["icon_url"] = icon_url
        if key:
            args["metadata"] = {"event_type": METADATA_EVENT, "event_payload": {"key": key}}
        return str(self._call("chat.postMessage", **args)["ts"])

    def update(self, channel: str, ts: str, message: SlackMessage) -> None:
        self._call("chat.update", channel=channel, ts=ts, text=message.text, blocks=message.blocks)

    def delete(self, channel: str, ts: str) -> str:
        """Delete one of the bot's own messages; one already gone counts as deleted."""
        try:
            self._call("chat.delete", channel=channel, ts=ts)
        except Rejected as exc:
            if exc.reason.endswith(": message_not_found"):
                return "already deleted"
            raise
        return "deleted"

    def react(self, channel: str, ts: str, name: str) -> None:
        self._call("reactions.add", channel=channel, timestamp=ts, name=name)

    def unreact(self, channel: str, ts: str, name: str) -> None:
        self._call("reactions.remove", channel=channel, timestamp=ts, name=name)

    def find_delivered(self, channel: str, key: str, *, thread_ts: str | None, since: float,
                       max_pages: int = 5) -> str | None:
        """The ts of a post of ours carrying ``key`` in its metadata, if Slack has it.

        In a thread: ``conversations.replies``; a thread root (header card):
        ``conversations.history`` since ``since``. Both with
        ``include_all_metadata`` so the ``dmbridge_delivery`` payload comes back.
        """
        method = "conversations.replies" if thread_ts else "conversations.history"
        args: dict[str, Any] = dict(channel=channel, include_all_metadata=True, limit=200)
        if thread_ts:
            args["ts"] = thread_ts
        else:
            args["oldest"] = f"{since - 60:.6f}"
        cursor = ""
        for _ in range(max_pages):
            data = self._call(method, **args, **({"cursor": cursor} if cursor else {}))
            for msg in data.get("messages") or []:
                meta = msg.get("metadata") or {}
                if meta.get("event_type") == METADATA_EVENT and (meta.get("event_payload") or {}).get("key") == key:
                    return str(msg["ts"])
            cursor = str((data.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                break
        return None

    def bot_identity(self) -> tuple[str, str]:
        data = self._call("auth.test")
        self.team_url = str(data.get("url") or self.team_url)
        return str(data.get("user_id", "")), str(data.get("bot_id", ""))

    def post_ephemeral(self, channel: str, user: str, text: str, *, thread_ts: str | None = None,
                       blocks: list[dict[str, Any]] | None = None) -> None:
        args: dict[str, Any] = dict(channel=channel, user=user, text=text)
        if thread_ts:
            args["thread_ts"] = thread_ts
        if blocks:
            args["blocks"] = blocks
        self._call("chat.postEphemeral", **args)

    def publish_home(self, user: str, view: dict[str, Any]) -> None:
        self._call("views.publish", user_id=user, view=view)

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        self._call("views.open", trigger_id=trigger_id, view=view)

    def update_view(self, view_id: str, view: dict[str, Any], view_hash: str | None = None) -> None:
        args: dict[str, Any] = dict(view_id=view_id, view=view)
        if view_hash:
            args["hash"] = view_hash
        self._call("views.update", **args)

    def usergroup_members(self, group: str) -> list[str]:
        return [str(u) for u in self._call("usergroups.users.list", usergroup=group).get("users") or []]

    def channel_members(self, channel: str) -> list[str]:
        members: list[str] = []
        cursor = ""
        while True:
            data = self._call("conversations.members", channel=channel, limit=1000, cursor=cursor)
            members += [str(u) for u in data.get("members") or []]
            cursor = str((data.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return members

    def user_info(self, user: str) -> dict[str, Any]:
        info: dict[str, Any] = self._call("users.info", user=user).get("user") or {}
        return info

    def presence(self, user: str) -> str:
        return str(self._call("users.getPresence", user=user).get("presence") or "away")

    def thread_link(self, channel: str, ts: str) -> str:
        """A link to a message, built from the workspace URL that auth.test reported."""
        base = self.team_url if self.team_url.endswith("/") else self.team_url + "/"
        return f"{base}archives/{channel}/p{ts.replace('.', '')}"

def _refused(exc: BaseException) -> bool:
    """A connection that was never made: the request cannot have reached Slack."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = getattr(seen, "reason", None) if isinstance(getattr(seen, "reason", None), BaseException) \
            else seen.__cause__ or seen.__context__
    return False
