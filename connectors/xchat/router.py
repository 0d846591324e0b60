"""The ``x`` sender when X Chat is on: each reply goes the way its customer last wrote."""

from __future__ import annotations

from typing import IO

from bridge.domain import Limits, OutboundMessage, Platform, SendResult
from bridge.errors import Rejected
from connectors.base import Connector, FetchesFiles, VerifiesSends
from connectors.xchat.connector import XChatConnector
from connectors.xchat.media import CHAT_REF

__all__ = ["CHAT_REF", "XRouter"]  # X Chat media references begin with CHAT_REF; the others are legacy DM URLs


class XRouter:
    """Replies to a customer whose last message came by X Chat go by X Chat, the others by legacy DM."""

    name = "x"
    platform = Platform.X

    def __init__(self, legacy: Connector | None, chat: XChatConnector) -> None:
        self.legacy, self.chat = legacy, chat
        self.limits: Limits = chat.limits if legacy is None else legacy.limits
        self.ways: dict[str, Limits] = {"xchat": chat.limits}

    def start(self) -> None:
        """Nothing of its own: each connector is started by its poller."""

    def _for(self, message: OutboundMessage) -> Connector:
        return self.chat if message.via == "xchat" or self.legacy is None else self.legacy

    def send(self, message: OutboundMessage) -> SendResult:
        return self._for(message).send(message)

    def find_sent(self, message: OutboundMessage, *, since: float, known: set[str]) -> SendResult | None:
        connector = self._for(message)
        return connector.find_sent(message, since=since, known=known) if isinstance(connector, VerifiesSends) else None

    def fetch_file(self, account: str, conversation: str, ref: str, sink: IO[bytes], cap: int) -> int:
        connector = self.chat if ref.startswith(CHAT_REF) else self.legacy
        if not isinstance(connector, FetchesFiles):
            raise Rejected("this X connector does not read files")
        return connector.fetch_file(account, conversation, ref, sink, cap)
