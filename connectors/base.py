"""The connector protocols the core relies on.

A connector never touches the database, Slack or the scheduler: the core
hands it a cursor and stores what it returns; it hands it an outbound
message and records the result; the HTTP layer hands it a raw webhook
request and stores the batch it returns before answering. Errors leave a
connector only as ``bridge.errors`` types.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any, Protocol, runtime_checkable

from bridge.domain import Batch, Customer, Limits, OutboundMessage, Platform, SendResult


@dataclass(frozen=True)
class WebhookRequest:
    """One HTTP request to ``/webhooks/…``, unparsed: signatures are checked on ``body`` as received."""

    method: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    """Header names in lower case."""
    body: bytes
    source: str | None = None
    """The ``{name}`` of ``/webhooks/generic/{name}``; None for the other routes."""
    client: str = ""
    """The peer's address as the server saw it (a proxy's, behind one); "" when unknown."""


@dataclass(frozen=True)
class WebhookReply:
    """A reply the receiver composes itself (verification challenge, CRC answer, not ready yet)."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain"

    @classmethod
    def json(cls, data: Any, status: int = 200) -> WebhookReply:
        return cls(status=status, body=json.dumps(data).encode(), content_type="application/json")


class Connector(Protocol):
    name: str
    """Configuration name (``x``, ``meta``, ``generic``): the ``connector`` of ``dmbridge.toml`` routes."""

    platform: Platform

    limits: Limits

    def start(self) -> None:
        """Check the credential and learn who we are; raises AuthFailed or RetryLater."""
        ...

    def send(self, message: OutboundMessage) -> SendResult:
        """Deliver one piece of text; raises RetryLater, Rejected or AuthFailed."""
        ...


class PollingConnector(Connector, Protocol):
    @property
    def account(self) -> str:
        """The brand account's handle, known after ``start``."""
        ...

    def poll(self, cursor: str | None) -> Batch:
        """Messages newer than ``cursor``, oldest first, and the cursor to store after them."""
        ...


class WebhookReceiver(Protocol):
    route: str
    """``x``, ``meta`` or ``generic``: served at ``/webhooks/{route}`` (``/webhooks/generic/{name}``)."""

    def handle_webhook(self, request: WebhookRequest) -> WebhookReply | Batch:
        """Verify and parse; no network call, no database. Raises BadPayload (4xx, nothing stored)."""
        ...


class ProfileLookup(Protocol):
    def profile(self, account: str, customer_id: str) -> Customer:
        """The customer's current name and avatar; raises DeliveryError types."""
        ...


@runtime_checkable
class VerifiesSends(Protocol):
    """A connector that can tell whether a send whose outcome was lost actually happened."""

    def find_sent(self, message: OutboundMessage, *, since: float, known: set[str]) -> SendResult | None:
        """A message of ours in ``message.conversation`` with this text, sent at or after ``since``
        (epoch seconds) and not among ``known`` remote ids; None when there is none."""
        ...


@runtime_checkable
class HasWays(Protocol):
    """A connector with two ways to the same customers (X: legacy DMs and X Chat) whose limits differ."""

    ways: Mapping[str, Limits]
    """Limits by ``OutboundMessage.via``; ``limits`` holds for the others."""


def all_limits(connectors: object) -> dict[str, Limits]:
    """Each platform's limits (``"x"``), and a way's own where it has them (``"x:xchat"``): see ``limits_of``."""
    out: dict[str, Limits] = {}
    for c in connectors.values() if isinstance(connectors, Mapping) else ():
        out[c.platform.value] = c.limits
        for via, limits in c.ways.items() if isinstance(c, HasWays) else ():
            out[f"{c.platform.value}:{via}"] = limits
    return out


@runtime_checkable
class FetchesFiles(Protocol):
    """A connector whose customers' files are read with its own credential or keys (``InboundFile.private``)."""

    def fetch_file(self, account: str, conversation: str, ref: str, sink: IO[bytes], cap: int) -> int:
        """Write the bytes of the file ``ref`` (``InboundFile.url``) to ``sink`` as they arrive, decrypted where
        the platform encrypts; return their count. More than ``cap`` bytes raises ``Rejected`` (saying the file is
        over the limit); a file that is gone for good raises ``Rejected``; a passing failure ``RetryLater``."""
        ...
