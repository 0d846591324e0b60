"""The connector protocol the core relies on.

A connector never touches the database, Slack or the scheduler: the core
hands it a cursor and stores what it returns; it hands it an outbound
message and records the result. Errors leave a connector only as
``bridge.errors`` types.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from bridge.domain import Batch, Limits, OutboundMessage, Platform, SendResult


class Connector(Protocol):
    name: str
    """Configuration name (``x``, ``meta``, ``generic``)."""

    platform: Platform

    limits: Limits

    @property
    def account(self) -> str:
        """The brand account's handle, known after ``start``."""
        ...

    def start(self) -> None:
        """Check the credential and learn who we are; raises AuthFailed or RetryLater."""
        ...

    def poll(self, cursor: str | None) -> Batch:
        """Messages newer than ``cursor``, oldest first, and the cursor to store after them."""
        ...

    def send(self, message: OutboundMessage) -> SendResult:
        """Deliver one piece of text; raises RetryLater, Rejected or AuthFailed."""
        ...


@runtime_checkable
class VerifiesSends(Protocol):
    """A connector that can tell whether a send whose outcome was lost actually happened."""

    def find_sent(self, message: OutboundMessage, *, since: float, known: set[str]) -> SendResult | None:
        """A message of ours in ``message.conversation`` with this text, sent at or after ``since``
        (epoch seconds) and not among ``known`` remote ids; None when there is none."""
        ...
