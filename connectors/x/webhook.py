"""``GET|POST /webhooks/x``: the CRC challenge and signed deliveries (Account Activity or X Activity API).

The CRC answer is ``sha256=base64(HMAC-SHA256(consumer secret, crc_token))`` — the very function that
signs deliveries. Answered for any string it would sign any body an attacker chose (a JSON delivery
included), so only tokens of the shape X sends are answered: X's are base64 (of a UUID, 48
characters), and nothing in that alphabet can be a JSON object. The endpoint is also paced per peer.
Deliveries for another account (``for_user_id``, or the X Activity ``filter.user_id``) are
acknowledged with 200 — X retries a non-2xx delivery and may disable the webhook — but not stored,
and counted in ``refused``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from bridge.domain import Batch, Pacer, SealedEvent
from bridge.errors import BadPayload, NotStarted
from connectors import signing
from connectors.base import WebhookReply, WebhookRequest
from connectors.x import convert
from connectors.x.connector import XConnector
from connectors.xchat import convert as chat_convert

log = logging.getLogger(__name__)

# base64 / base64url characters, optional padding; X's tokens are 48 characters
CRC_TOKEN = re.compile(r"[A-Za-z0-9_\-+/]{8,128}={0,2}")
# X checks at registration, on PUT and about hourly. The pace only bounds probing: behind a proxy every
# request has the proxy's address, and a tighter limit would let a flood starve X's own checks.
CRC_PER_SECOND = 1.0
CRC_BURST = 10
MAX_PEERS = 10_000  # pacing state kept for at most this many addresses


def crc_token_ok(token: str) -> bool:
    return CRC_TOKEN.fullmatch(token) is not None


def crc_response(crc_token: str, consumer_secret: str) -> dict[str, str]:
    return {"response_token": signing.base64_sha256(consumer_secret, crc_token.encode())}


def check_signature(body: bytes, header: str | None, consumer_secret: str) -> None:
    if not signing.same(signing.base64_sha256(consumer_secret, body), header):
        raise BadPayload("x-twitter-webhooks-signature does not match", status=403)


def delivery_for(payload: Any) -> str | None:
    """The account a delivery is for: ``for_user_id`` (Account Activity) or ``data.filter.user_id``
    (X Activity API); None when it names none."""
    if not isinstance(payload, dict):
        return None
    data = payload.get("data")
    if isinstance(data, dict) and "event_type" in data:
        target = (data.get("filter") or {}).get("user_id") if isinstance(data.get("filter"), dict) else None
    else:
        target = payload.get("for_user_id")
    return str(target) if isinstance(target, str | int) and not isinstance(target, bool) else None


class XWebhook:
    route = "x"

    def __init__(
        self,
        connector: XConnector,
        consumer_secret: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        chat: bool = False,
    ) -> None:
        """``chat``: X Chat is on, so ``chat.received``/``chat.sent`` deliveries are stored sealed (else they
        are acknowledged and dropped, like every event type we do not read)."""
        self.connector, self.consumer_secret, self.clock, self.chat = connector, consumer_secret, clock, chat
        self.crc_pacer = Pacer(rate=CRC_PER_SECOND, burst=CRC_BURST)
        self.refused: Counter[str] = Counter()

    def _crc(self, request: WebhookRequest) -> WebhookReply:
        token = request.query.get("crc_token")
        if not token:
            raise BadPayload("crc_token is missing")
        if not crc_token_ok(token):
            self.refused["crc_token"] += 1
            raise BadPayload("crc_token is not of the shape X sends")
        now, peer = self.clock(), request.client or "-"
        if self.crc_pacer.tracked() > MAX_PEERS:
            self.crc_pacer = Pacer(rate=CRC_PER_SECOND, burst=CRC_BURST)
        wait = self.crc_pacer.wait(peer, now)
        if wait > 0:
            self.refused["crc_rate"] += 1
            return WebhookReply.json({"error": "too many CRC requests"}, status=429)
        self.crc_pacer.take(peer, now)
        return WebhookReply.json(crc_response(token, self.consumer_secret))

    def handle_webhook(self, request: WebhookRequest) -> WebhookReply | Batch:
        if request.method == "GET":
            return self._crc(request)
        check_signature(request.body, request.headers.get("x-twitter-webhooks-signature"), self.consumer_secret)
        try:
            me, account = self.connector.user_id, self.connector.account
        except NotStarted:
            # not started yet: X retries the delivery, and the reconciliation poll catches up in any case
            return WebhookReply.json({"error": "starting"}, status=503)
        try:
            payload = json.loads(request.body)
        except (ValueError, RecursionError) as exc:
            raise BadPayload("body is not JSON") from exc
        data = payload.get("data") if isinstance(payload, dict) else None
        sealed: list[SealedEvent] = []
        if isinstance(data, dict) and data.get("event_type") in chat_convert.CHAT_EVENTS:
            messages = []
            # another account's events are of its conversations, never ours: acknowledged below, not read
            if self.chat and delivery_for(payload) == me:
                sealed = chat_convert.sealed_from_activity(data, me=me, account=account)  # malformed: 400
        else:
            messages = convert.webhook_messages(  # a body of neither shape: 400
                payload, me=me, account=account, base_url=getattr(self.connector, "base_url", "")
            )
        if delivery_for(payload) != me:
            self.refused["other_account"] += 1
            log.warning(
                "X delivery not addressed to our account acknowledged and not stored (%d so far)",
                self.refused["other_account"],
            )
            return WebhookReply.json({"received": 0, "new": 0})
        return Batch(messages=tuple(messages), cursor=None, sealed=tuple(sealed))
