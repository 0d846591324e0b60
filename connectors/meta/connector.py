"""Messenger and Instagram senders (one per platform) sharing one Meta app: tokens per account, app id."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bridge.domain import Customer, OutboundMessage, Platform, SendResult
from bridge.errors import AuthFailed, Rejected, RetryLater
from connectors.meta import convert
from connectors.meta.graph import Graph


@dataclass(frozen=True)
class MetaPage:
    """A Facebook Page or Instagram professional account's credential and policy."""

    token: str
    human_agent_days: float = 7.0


@dataclass
class MetaApp:
    """What the Messenger and Instagram connectors and the webhook receiver share."""

    graph: Graph
    pages: dict[str, MetaPage]
    """By account id (the Page id or Instagram account id of ``entry.id``)."""
    default: MetaPage
    """For accounts not listed: ``META_PAGE_ACCESS_TOKEN``."""
    app_id: str | None = None
    """Our app's id, learned at start; echoes carrying it are our own sends."""
    clock: Callable[[], float] = field(default=time.time)

    def page(self, account: str) -> MetaPage:
        page = self.pages.get(account, self.default)
        if not page.token:
            raise AuthFailed(f"no page access token is configured for Meta account {account}")
        return page

    def any_token(self) -> str:
        for page in (self.default, *self.pages.values()):
            if page.token:
                return page.token
        raise AuthFailed("no Meta page access token is configured")


class MetaConnector:
    name = "meta"

    def __init__(self, app: MetaApp, platform: Platform) -> None:
        if platform not in convert.LIMITS:
            raise ValueError(f"{platform} is not a Meta platform")
        self.app, self.platform = app, platform
        self.limits = convert.LIMITS[platform]

    def start(self) -> None:
        """Learn our app id (``GET /app`` with a page token), which also proves the token works."""
        if self.app.app_id is None:
            data = self.app.graph.get(self.platform, "app", self.app.any_token())
            if "id" not in data:
                raise RetryLater("Meta did not say which app the token belongs to")
            self.app.app_id = str(data["id"])

    def send(self, message: OutboundMessage) -> SendResult:
        page = self.app.page(message.account)
        window = convert.send_window(self.platform, message.last_inbound_at, self.app.clock(), page.human_agent_days)
        if isinstance(window, convert.Closed):
            raise Rejected(window.reason)
        if message.file is not None:
            data = self._send_file(message, page.token, window)
        else:
            body = convert.send_body(message.recipient_id, message.text, window, message.quick_replies)
            data = self.app.graph.post(self.platform, "me/messages", page.token, body)
        if "message_id" not in data:
            raise RetryLater(f"{self.platform.label} accepted the message without an id")
        return SendResult(remote_id=str(data["message_id"]), conversation=message.conversation)

    def _send_file(
        self, message: OutboundMessage, token: str, window: convert.Response | convert.HumanAgent
    ) -> dict[str, Any]:
        """One attachment, uploaded and sent in one Send API call (the text, if any, went as its own message)."""
        file = message.file
        assert file is not None
        if message.text or not file.path:
            raise Rejected("a Meta message carries text or one file, and the file must be on disk")
        form = convert.attachment_form(message.recipient_id, file.kind, window)
        with open(file.path, "rb") as data:
            return self.app.graph.post_file(
                self.platform, "me/messages", token, form, (file.name, data, file.content_type)
            )

    def profile(self, account: str, customer_id: str) -> Customer:
        if not convert.is_graph_id(customer_id):  # it is the Graph URL path: never anything but an id
            raise Rejected(f"{customer_id[:40]!r} is not a {self.platform.label} user id")
        data = self.app.graph.get(
            self.platform, customer_id, self.app.page(account).token, {"fields": convert.PROFILE_FIELDS[self.platform]}
        )
        return convert.customer_from_profile(self.platform, customer_id, data)
