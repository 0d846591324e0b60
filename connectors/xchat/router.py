"""The ``x`` sender when X Chat is on: each reply goes the way its customer last wrote."""

from __future__ import annotations

from bridge.domain import Limits, OutboundMessage, Platform, SendResult
from connectors.base import Connector, VerifiesSends
from connectors.xchat.connector import XChatConnector


class XRouter:
    """Replies to a customer whose last message came by X Chat go by X Chat, the others by legacy DM."""

    name = "x"
    platform = Platform.X

    def __init__(self, legacy: Connector | None, chat: XChatConnector) -> None:
        self.legacy, self.chat = legacy, chat
        self.limits: Limits = chat.limits if legacy is None else legacy.limits

    def start(self) -> None:
        """Nothing of its own: each connector is started by its poller."""

    def _for(self, message: OutboundMessage) -> Connector:
        return self.chat if message.via == "xchat" or self.legacy is None else self.legacy

    def send(self, message: OutboundMessage) -> SendResult:
        return self._for(message).send(message)

    def find_sent(self, message: OutboundMessage, *, since: float, known: set[str]) -> SendResult | None:
        connector = self._for(message)
        return connector.find_sent(message, since=since, known=known) if isinstance(connector, VerifiesSends) else None
