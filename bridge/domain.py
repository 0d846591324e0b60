"""Frozen types that cross module boundaries. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Platform(StrEnum):
    X = "x"
    MESSENGER = "messenger"
    INSTAGRAM = "instagram"
    GENERIC = "generic"

    @property
    def label(self) -> str:
        return {"x": "X", "messenger": "Messenger", "instagram": "Instagram", "generic": "Webhook"}[self.value]


class Status(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Customer:
    """The person on the other side of a conversation."""

    id: str
    name: str
    handle: str | None = None
    avatar_url: str | None = None
    profile_url: str | None = None


@dataclass(frozen=True)
class InboundMessage:
    """One message of a platform conversation, as a connector hands it to the core.

    ``from_brand`` is True for messages the brand account itself sent (our own
    sends come back this way; the core drops the ones it recognises).
    """

    platform: Platform
    account: str
    remote_id: str
    conversation: str
    customer: Customer
    text: str
    sent_at: datetime
    from_brand: bool = False
    attachments: tuple[str, ...] = ()
    needs_profile: bool = False
    """Only the customer's id is known: the core asks the platform's ProfileLookup (at most daily)."""


@dataclass(frozen=True)
class Batch:
    """What one poll or webhook delivery found: messages oldest first, and the cursor to store with them
    (None for webhooks)."""

    messages: tuple[InboundMessage, ...]
    cursor: str | None


@dataclass(frozen=True)
class OutboundMessage:
    """One piece of text for a customer."""

    platform: Platform
    account: str
    conversation: str
    recipient_id: str
    text: str
    last_inbound_at: float | None = None
    """Epoch seconds of the customer's newest message (Meta's messaging window), None if they never wrote."""
    key: str = ""
    """Stable across retries of the same delivery (the outbox key): for receivers that deduplicate."""


@dataclass(frozen=True)
class SendResult:
    remote_id: str
    conversation: str | None = None


@dataclass(frozen=True)
class Limits:
    """What a platform accepts in one message."""

    max_chars: int
    count_bytes: bool = False
    extra: dict[str, int] = field(default_factory=dict)
