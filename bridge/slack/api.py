"""Slack Web API calls the workers make, with slack_sdk errors translated at this edge."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import SlackResponse

from bridge import tls
from bridge.errors import AuthFailed, Rejected, RetryLater, server_error, unreachable
from bridge.slack.blocks import SlackMessage
from bridge.slack.transport import PooledWebClient

AUTH_ERRORS = {"invalid_auth", "not_authed", "token_revoked", "account_inactive", "token_expired"}
HARMLESS = {"already_reacted", "no_reaction"}
METADATA_EVENT = "dmbridge_delivery"
CHANNEL_MEMBERS_PAGE = 200  # Slack recommends no more than 200 results per page

# Every Slack Web API method the bridge calls, each through its typed WebClient method (slack_sdk picks the
# HTTP verb and encoding). tests/contract checks each against Slack's published spec.
SLACK_METHODS = frozenset(
    {
        "auth.test",
        "chat.postMessage",
        "chat.update",
        "chat.delete",
        "chat.postEphemeral",
        "reactions.add",
        "reactions.remove",
        "conversations.history",
        "conversations.replies",
        "conversations.members",
        "conversations.info",
        "users.info",
        "users.getPresence",
        "usergroups.users.list",
        "views.open",
        "views.update",
        "views.publish",
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
        "files.info",
    }
)
# the ones that change nothing: a failed read cannot have acted, so it is never ``uncertain``
READ_METHODS = frozenset(
    {
        "auth.test",
        "conversations.history",
        "conversations.replies",
        "conversations.members",
        "conversations.info",
        "users.info",
        "users.getPresence",
        "usergroups.users.list",
        "files.getUploadURLExternal",  # nothing shows until the upload is completed
        "files.info",
    }
)


def make_client(token: str, base_url: str, timeout: float = 15) -> PooledWebClient:
    """A WebClient on kept-alive connections (``bridge.slack.transport``) with no automatic retries: rate limits
    and lost answers are the outbox's to handle. (slack_sdk's default handler resends a request once after a
    connection reset, which can post a message twice; the outbox instead looks for the post by its metadata key
    before sending again.)"""
    return PooledWebClient(
        token=token, base_url=base_url, timeout=max(1, round(timeout)), retry_handlers=[], ssl=tls.system()
    )


class SlackApi:
    def __init__(self, client: WebClient, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.clock = clock
        self.team_url = "https://slack.com/"

    def close(self) -> None:
        """Close the kept-alive connections (a client made elsewhere is its maker's to close)."""
        if isinstance(self.client, PooledWebClient):
            self.client.close()

    def _call(self, send: Callable[..., SlackResponse], **kwargs: Any) -> dict[str, Any]:
        """Call one typed WebClient method (``self.client.chat_postMessage`` …), which sends the HTTP verb and
        encoding that Slack method takes; Slack's answers become the bridge's errors here."""
        method = send.__name__.replace("_", ".")
        changes = method not in READ_METHODS
        try:
            resp = send(**kwargs)
            return dict(resp.data) if isinstance(resp.data, dict) else {}
        except SlackApiError as exc:
            status = exc.response.status_code
            error = str(exc.response.get("error", "")) if isinstance(exc.response.data, dict) else ""
            if error in HARMLESS:
                return {"ok": True, "error": error}
            if status == 429 or error == "ratelimited":
                after = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
                wait = float(after) if after else 1.0
                raise RetryLater(
                    f"Slack rate limit on {method}", retry_at=self.clock() + wait, rate_limited=True
                ) from exc
            if status >= 500:
                raise server_error(f"Slack {method} answered {status}", status, changes=changes) from exc
            if error in AUTH_ERRORS:
                raise AuthFailed(f"Slack refused the bot token ({error})") from exc
            raise Rejected(f"Slack {method} failed: {error or status}") from exc
        except httpx.HTTPError as exc:  # no answer on the kept-alive connection: sorted into sent or not sent
            raise unreachable("Slack", exc, changes=changes, reason=f"Slack {method}: {type(exc).__name__}") from exc
        except SlackClientError as exc:
            raise unreachable("Slack", exc, changes=changes, reason=f"Slack {method}: {exc}") from exc
        except OSError as exc:  # timeouts and resets may come after Slack acted; a refused connection cannot
            raise unreachable("Slack", exc, changes=changes) from exc
        except http.client.HTTPException as exc:  # the connection broke mid-answer: Slack may have acted
            raise unreachable(
                "Slack", exc, changes=changes, reason=f"Slack answer cut off: {type(exc).__name__}"
            ) from exc

    def _pages(
        self, send: Callable[..., SlackResponse], key: str, max_pages: int | None = None, **kwargs: Any
    ) -> Iterator[list[Any]]:
        """Each page's ``key`` list of a cursor-paginated method, following ``next_cursor`` to the end."""
        cursor = ""
        pages = 0
        while max_pages is None or pages < max_pages:
            data = self._call(send, **kwargs, **({"cursor": cursor} if cursor else {}))
            pages += 1
            yield list(data.get(key) or [])
            cursor = str((data.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return

    def post(
        self,
        channel: str,
        message: SlackMessage,
        *,
        thread_ts: str | None = None,
        username: str | None = None,
        icon_url: str | None = None,
        key: str | None = None,
    ) -> str:
        args: dict[str, Any] = dict(
            channel=channel,
            text=message.text,
            blocks=message.blocks,
            link_names=False,
            unfurl_links=False,
            unfurl_media=False,
        )
        if thread_ts:
            args["thread_ts"] = thread_ts
        if username:
            args["username"] = username[:80]
        if icon_url:
            args["icon_url"] = icon_url
        if key:
            args["metadata"] = {"event_type": METADATA_EVENT, "event_payload": {"key": key}}
        return str(self._call(self.client.chat_postMessage, **args)["ts"])

    def update(self, channel: str, ts: str, message: SlackMessage) -> None:
        self._call(self.client.chat_update, channel=channel, ts=ts, text=message.text, blocks=message.blocks)

    def delete(self, channel: str, ts: str) -> str:
        """Delete one of the bot's own messages; one already gone counts as deleted."""
        try:
            self._call(self.client.chat_delete, channel=channel, ts=ts)
        except Rejected as exc:
            if exc.reason.endswith(": message_not_found"):
                return "already deleted"
            raise
        return "deleted"

    def react(self, channel: str, ts: str, name: str) -> None:
        self._call(self.client.reactions_add, channel=channel, timestamp=ts, name=name)

    def unreact(self, channel: str, ts: str, name: str) -> None:
        self._call(self.client.reactions_remove, channel=channel, timestamp=ts, name=name)

    def find_delivered(
        self, channel: str, key: str, *, thread_ts: str | None, since: float, max_pages: int = 50
    ) -> str | None:
        """The ts of a post of ours carrying ``key`` in its metadata, if Slack has it.

        In a thread: ``conversations.replies``; a thread root (header card):
        ``conversations.history`` since ``since``. Both with
        ``include_all_metadata`` so the ``dmbridge_delivery`` payload comes back.
        Both are read methods: slack_sdk sends them as a GET with query parameters. Both look only at
        messages since ``since`` (less a minute for clock skew), following the cursor through that window:
        a long thread's older pages cannot hide the post.
        """
        oldest = f"{since - 60:.6f}"
        if thread_ts:
            pages = self._pages(
                self.client.conversations_replies,
                "messages",
                max_pages,
                channel=channel,
                ts=thread_ts,
                oldest=oldest,
                include_all_metadata=True,
                limit=200,
            )
        else:
            pages = self._pages(
                self.client.conversations_history,
                "messages",
                max_pages,
                channel=channel,
                oldest=oldest,
                include_all_metadata=True,
                limit=200,
            )
        for page in pages:
            for msg in page:
                meta = msg.get("metadata") or {}
                if meta.get("event_type") == METADATA_EVENT and (meta.get("event_payload") or {}).get("key") == key:
                    return str(msg["ts"])
        return None

    def upload_url(self, filename: str, length: int, alt_text: str | None = None) -> tuple[str, str]:
        """Where to POST a file's bytes, and its file id (``files.getUploadURLExternal``)."""
        args: dict[str, Any] = dict(filename=filename, length=length)
        if alt_text:
            args["alt_txt"] = alt_text
        data = self._call(self.client.files_getUploadURLExternal, **args)
        return str(data["upload_url"]), str(data["file_id"])

    def complete_upload(self, file_id: str, title: str, channel: str, thread_ts: str, comment: str) -> None:
        """Share an uploaded file in a thread, with a comment (``files.completeUploadExternal``)."""
        self._call(
            self.client.files_completeUploadExternal,
            files=[{"id": file_id, "title": title}],
            channel_id=channel,
            thread_ts=thread_ts,
            initial_comment=comment,
        )

    def file_info(self, file_id: str) -> dict[str, Any]:
        """What Slack says of a file now (``files.info``): name, type, size, download URL."""
        file = self._call(self.client.files_info, file=file_id).get("file")
        if not isinstance(file, dict):
            raise Rejected("Slack answered files.info without the file")
        return file

    def find_file(
        self, channel: str, thread_ts: str, title: str, *, since: float, known: set[str], bot_user: str = ""
    ) -> str | None:
        """A file of ours (posted by the bot: ``bot_id``, or ``user`` the bot user) titled ``title`` shared in the
        thread since ``since`` and not in ``known``: an upload whose answer was lost (files carry no metadata; the
        title and the time window stand in for it)."""
        pages = self._pages(
            self.client.conversations_replies,
            "messages",
            50,
            channel=channel,
            ts=thread_ts,
            oldest=f"{since - 60:.6f}",
            limit=200,
        )
        for page in pages:
            for msg in page:
                ours = bool(msg.get("bot_id")) or (bool(bot_user) and msg.get("user") == bot_user)
                for file in msg.get("files") or [] if ours else []:
                    if file.get("title") == title and str(file.get("id")) not in known:
                        return str(file["id"])
        return None

    def bot_identity(self) -> tuple[str, str]:
        data = self._call(self.client.auth_test)
        self.team_url = str(data.get("url") or self.team_url)
        return str(data.get("user_id", "")), str(data.get("bot_id", ""))

    def post_ephemeral(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
    ) -> None:
        args: dict[str, Any] = dict(channel=channel, user=user, text=text)
        if thread_ts:
            args["thread_ts"] = thread_ts
        if blocks:
            args["blocks"] = blocks
        self._call(self.client.chat_postEphemeral, **args)

    def publish_home(self, user: str, view: dict[str, Any]) -> None:
        self._call(self.client.views_publish, user_id=user, view=view)

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        self._call(self.client.views_open, trigger_id=trigger_id, view=view)

    def update_view(self, view_id: str, view: dict[str, Any], view_hash: str | None = None) -> None:
        args: dict[str, Any] = dict(view_id=view_id, view=view)
        if view_hash:
            args["hash"] = view_hash
        self._call(self.client.views_update, **args)

    def usergroup_members(self, group: str) -> list[str]:
        """Slack documents no pagination for usergroups.users.list: one call answers every member."""
        data = self._call(self.client.usergroups_users_list, usergroup=group)
        return [str(u) for u in data.get("users") or []]

    def channel_members(self, channel: str) -> list[str]:
        return [
            str(u)
            for page in self._pages(
                self.client.conversations_members, "members", channel=channel, limit=CHANNEL_MEMBERS_PAGE
            )
            for u in page
        ]

    def user_info(self, user: str) -> dict[str, Any]:
        info: dict[str, Any] = self._call(self.client.users_info, user=user).get("user") or {}
        return info

    def presence(self, user: str) -> str:
        return str(self._call(self.client.users_getPresence, user=user).get("presence") or "away")

    def thread_link(self, channel: str, ts: str) -> str:
        """A link to a message, built from the workspace URL that auth.test reported."""
        base = self.team_url if self.team_url.endswith("/") else self.team_url + "/"
        return f"{base}archives/{channel}/p{ts.replace('.', '')}"
