"""``GET|POST /webhooks/x``: the CRC challenge and signed deliveries (Account Activity or X Activity API)."""

from __future__ import annotations

import json

from bridge.domain import Batch
from bridge.errors import AuthFailed, BadPayload
from connectors import signing
from connectors.base import WebhookReply, WebhookRequest
from connectors.x import convert
from connectors.x.connector import XConnector


def crc_response(crc_token: str, consumer_secret: str) -> dict[str, str]:
    return {"response_token": signing.base64_sha256(consumer_secret, crc_token.encode())}


def check_signature(body: bytes, header: str | None, consumer_secret: str) -> None:
    if not signing.same(signing.base64_sha256(consumer_secret, body), header):
        raise BadPayload("x-twitter-webhooks-signature does not match", status=403)


class XWebhook:
    route = "x"

    def __init__(self, connector: XConnector, consumer_secret: str) -> None:
        self.connector, self.consumer_secret = connector, consumer_secret

    def handle_webhook(self, request: WebhookRequest) -> WebhookReply | Batch:
        if request.method == "GET":
            token = request.query.get("crc_token")
            if not token:
                raise BadPayload("crc_token is missing")
            return WebhookReply.json(crc_response(token, self.consumer_secret))
        check_signature(request.body, request.headers.get("x-twitter-webhooks-signature"), self.consumer_secret)
        try:
            me, account = self.connector.user_id, self.connector.account
        except AuthFailed:
            # not started yet: X retries the delivery, and the reconciliation poll catches up in any case
            return WebhookReply.json({"error": "starting"}, status=503)
        try:
            payload = json.loads(request.body)
        except ValueError as exc:
            raise BadPayload("body is not JSON") from exc
        return Batch(messages=tuple(convert.webhook_messages(payload, me=me, account=account)), cursor=None)
