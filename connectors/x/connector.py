"""The X connector: polls ``GET /2/dm_events`` with a high-water mark, sends with ``POST …/messages``; customers'
media is read and agents' files uploaded through :mod:`connectors.x.transfer`."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, TypeVar

import requests

from bridge.domain import Batch, Limits, OutboundMessage, Platform, SendResult
from bridge.errors import NotStarted, Rejected
from connectors.x import api, convert, media, transfer
from connectors.x.oauth import with_fresh_token

if TYPE_CHECKING:
    from connectors.x.oauth import AccessTokens

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_DM_CHARS = 10_000
PAGE_SIZE = 100
# X allows 15 reads per 15 minutes: a backlog deeper than this many pages in one
# poll interval (1,500 DMs) is read newest-first up to here and the rest is
# logged as skipped; accounts with that volume should use webhooks.
MAX_PAGES_PER_POLL = 15
USERS_PER_LOOKUP = 100  # GET /2/users takes 1 to 100 ids
# a DM with media may come back with the media's t.co link after the text
MEDIA_LINK = re.compile(r"\s*https://t\.co/\w+\Z")


class XConnector:
    name = "x"
    platform = Platform.X
    limits = Limits(max_chars=MAX_DM_CHARS, files=media.FILE_LIMITS)

    def __init__(
        self,
        *,
        base_url: str,
        consumer_key: str = "",
        consumer_secret: str = "",
        access_token: str = "",
        access_token_secret: str = "",
        user_bearer_token: str = "",
        timeout: float = 15.0,
        tokens: AccessTokens | None = None,
    ) -> None:
        """``tokens``: OAuth 2.0 user tokens refreshed from the database (``dmbridge x-auth``); else OAuth
        1.0a with the four keys, else ``user_bearer_token`` as a static OAuth 2.0 token (never refreshed)."""
        self._tokens = tokens
        self.base_url = base_url.rstrip("/")
        self.client, self._user_auth = api.make_client(
            base_url=base_url,
            consumer_key=consumer_key,
            consumer_secret=consumer_secret,
            access_token=access_token,
            access_token_secret=access_token_secret,
            user_bearer_token=user_bearer_token or ("oauth2" if tokens else ""),
            timeout=timeout,
        )
        if tokens is not None:
            self._user_auth = False
        self.wire = transfer.Wire(self.client, self._user_auth)
        """Media transfers; tests set its ``sleep``, ``clock`` and ``chunk``."""
        self._me: str | None = None
        self._username: str | None = None
        self.calls: dict[str, int] = {}
        """What X bills, by kind (``events_read`` per event returned, ``read`` per user, ``send``): x_costs."""

    def _count(self, kind: str, n: int = 1) -> None:
        self.calls[kind] = self.calls.get(kind, 0) + n

    @property
    def account(self) -> str:
        if self._username is None:
            raise NotStarted("X connector not started")
        return self._username

    @property
    def user_id(self) -> str:
        if self._me is None:
            raise NotStarted("X connector not started")
        return self._me

    def _call(self, fn: Callable[[], T]) -> T:
        """One X call; with stored OAuth 2.0 tokens, a fresh token first and, after a 401, one refresh and
        one retry (a 401 means X did nothing, so the retry cannot duplicate a send)."""
        if self._tokens is None:
            return api.call(fn)
        return with_fresh_token(
            self._tokens, lambda token: setattr(self.client, "bearer_token", token), lambda: api.call(fn)
        )

    def start(self) -> None:
        resp: requests.Response = self._call(lambda: self.client.get_me(user_auth=self._user_auth))
        data = resp.json()["data"]
        self._me, self._username = str(data["id"]), str(data["username"])

    def _page(self, token: str | None) -> dict[str, Any]:
        resp: requests.Response = self._call(
            lambda: self.client.get_direct_message_events(
                dm_event_fields=convert.DM_EVENT_FIELDS,
                event_types="MessageCreate",
                expansions=convert.EXPANSIONS,
                user_fields=convert.USER_FIELDS,
                media_fields=media.MEDIA_FIELDS,
                max_results=PAGE_SIZE,
                pagination_token=token,
                user_auth=self._user_auth,
            )
        )
        body: dict[str, Any] = resp.json()
        self._count("events_read", len(body.get("data") or []))
        return body

    def poll(self, cursor: str | None) -> Batch:
        """New events since ``cursor`` (the highest event id stored).

        On the very first poll (no cursor) history is not mirrored: the
        newest event id becomes the mark, so a new install starts clean.
        Older pages are read only while a whole page is new.
        """
        me = self.user_id
        high_water = int(cursor) if cursor else None
        pages = [convert.read_page(self._page(None), high_water or 0)]
        if high_water is None:
            return Batch(messages=(), cursor=str(convert.new_high_water(0, pages)))
        while pages[-1].all_new and pages[-1].next_token and len(pages) < MAX_PAGES_PER_POLL:
            pages.append(convert.read_page(self._page(pages[-1].next_token), high_water))
        if pages[-1].all_new and pages[-1].next_token:
            log.warning("X backlog deeper than %d pages: older DMs in it were not mirrored", MAX_PAGES_PER_POLL)
        users: dict[str, dict[str, Any]] = {}
        found: dict[str, dict[str, Any]] = {}
        for page in pages:
            users.update(page.users)
            found.update(page.media or {})
        events = sorted((e for p in pages for e in p.events), key=lambda e: int(e["id"]))
        missing = (
            {
                convert.other_participant(str(e.get("dm_conversation_id", "")), me)
                for e in events
                if str(e.get("sender_id")) == me
            }
            - set(users)
            - {None}
        )
        if missing:
            users.update(self._lookup_users(sorted(m for m in missing if m)))
        messages = [
            m
            for e in events
            if (
                m := convert.to_message(
                    e, me=me, account=self.account, users=users, media=found, base_url=self.base_url
                )
            )
            is not None
        ]
        return Batch(messages=tuple(messages), cursor=str(convert.new_high_water(high_water, pages)))

    def _lookup_users(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """``GET /2/users`` in requests of at most ``USERS_PER_LOOKUP`` ids (X refuses more)."""
        found: dict[str, dict[str, Any]] = {}
        for chunk in convert.chunks(ids, USERS_PER_LOOKUP):
            resp: requests.Response = self._call(
                lambda c=chunk: self.client.get_users(  # type: ignore[misc]
                    ids=c, user_fields=convert.USER_FIELDS, user_auth=self._user_auth
                )
            )
            users = resp.json().get("data") or []
            self._count("read", len(users))
            found.update({str(u["id"]): u for u in users})
        return found

    def find_sent(self, message: OutboundMessage, *, since: float, known: set[str]) -> SendResult | None:
        """Look for our DM among the conversation's recent events (one read from the 15-minute budget)."""
        me = self.user_id
        resp: requests.Response = self._call(
            lambda: self.client.get_direct_message_events(
                dm_conversation_id=message.conversation,
                dm_event_fields=convert.DM_EVENT_FIELDS,
                event_types="MessageCreate",
                expansions=convert.EXPANSIONS,
                max_results=PAGE_SIZE,
                user_auth=self._user_auth,
            )
        )
        events = resp.json().get("data") or []
        self._count("events_read", len(events))
        for event in events:
            sent_at = convert.parse_time(event.get("created_at")).timestamp()
            if (
                str(event.get("sender_id")) == me
                and _same_text(event, message)
                and str(event.get("id")) not in known
                and sent_at >= since - 5
            ):
                return SendResult(remote_id=str(event["id"]), conversation=message.conversation)
        return None

    def send(self, message: OutboundMessage) -> SendResult:
        """The text, with the agent's file (``message.file``) uploaded first and attached."""
        media_id = None
        if message.file is not None:
            file = message.file
            refusal = media.FILE_LIMITS.refusal(file.name, file.content_type, file.size)
            if refusal or not file.path:
                raise Rejected(refusal or f"X takes files as bytes, not links ({file.name})")
            media_id = transfer.upload(self.wire, file, self._call)
        resp: requests.Response = self._call(
            lambda: self.client.create_direct_message(
                dm_conversation_id=message.conversation,
                text=message.text or None,  # X refuses an empty text; a file may go alone
                media_id=media_id,
                user_auth=self._user_auth,
            )
        )
        data = resp.json()["data"]
        self._count("send")
        return SendResult(remote_id=str(data["dm_event_id"]), conversation=data.get("dm_conversation_id"))

    def fetch_file(self, account: str, conversation: str, ref: str, sink: IO[bytes], cap: int) -> int:
        """A customer's DM media (``InboundFile.url``), read with the user token and streamed into ``sink``. Only
        DM media URLs on the configured X API host are fetched: the token never goes anywhere else."""
        if not media.ref_allowed(self.base_url, ref):
            raise Rejected("its link is not an X DM media link on the configured X API host")
        if self._user_auth:
            raise Rejected("X serves DM media only with an OAuth 2.0 user token (set it up with `dmbridge x-auth`)")
        return self._call(lambda: transfer.download(self.wire, ref, sink, cap))


def _same_text(event: dict[str, Any], message: OutboundMessage) -> bool:
    """Whether ``event`` is ``message``: the same text and, for a file, media (X may add the media's link)."""
    text = str(event.get("text") or "")
    if message.file is None:
        return text == message.text
    has_media = bool((event.get("attachments") or {}).get("media_keys"))
    return has_media and MEDIA_LINK.sub("", text) == message.text
