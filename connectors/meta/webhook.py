"""``GET|POST /webhooks/meta``: subscription verification and signed deliveries, checked on the raw body."""

from __future__ import annotations

import json
from collections.abc import Mapping

from bridge.domain import Batch
from bridge.errors import BadPayload
from connectors import signing
from connectors.base import WebhookReply, WebhookRequest
from connectors.meta import convert
from connectors.meta.connector import MetaApp


def challenge(query: Mapping[str, str], verify_token: str) -> str:
    """``hub.challenge`` when ``hub.mode=subscribe`` and ``hub.verify_token`` match; BadPayload(403) otherwise."""
    mode, token, answer = query.get("hub.mode"), query.get("hub.verify_token"), query.get("hub.challenge")
    if mode != "subscribe" or not answer or not signing.same(verify_token, token):
        raise BadPayload("verification failed", status=403)
    return str(answer)


def check_signature(body: bytes, header: str | None, app_secret: str) -> None:
    if not signing.same(signing.hex_sha256(app_secret, body), header):
        raise BadPayload("X-Hub-Signature-256 does not match", status=403)


class MetaWebhook:
    route = "meta"

    def __init__(self, app: MetaApp, *, app_secret: str, verify_token: str) -> None:
        self.app, self.app_secret, self.verify_token = app, app_secret, verify_token

    def handle_webhook(self, request: WebhookRequest) -> WebhookReply | Batch:
        if request.method == "GET":
            return WebhookReply(200, challenge(request.query, self.verify_token).encode())
        check_signature(request.body, request.headers.get("x-hub-signature-256"), self.app_secret)
        try:
            payload = json.loads(request.body)
        except ValueError as exc:
            raise BadPayload("body is not JSON") from exc
        return Batch(messages=tuple(convert.parse(payload, self.app.app_id)), cursor=None)
