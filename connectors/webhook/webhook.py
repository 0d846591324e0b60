"""``POST /webhooks/generic/{name}``: a source's signed message (``X-Dmbridge-Signature``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from bridge.domain import Batch
from bridge.errors import BadPayload
from connectors import signing
from connectors.base import WebhookReply, WebhookRequest
from connectors.webhook import convert
from connectors.webhook.connector import SIGNATURE_HEADER, TIMESTAMP_HEADER, TIMESTAMP_WINDOW, Source


class GenericWebhook:
    route = "generic"

    def __init__(self, sources: dict[str, Source], clock: Callable[[], float] = time.time) -> None:
        self.sources, self.clock = sources, clock

    def handle_webhook(self, request: WebhookRequest) -> WebhookReply | Batch:
        source = self.sources.get(request.source or "")
        if source is None or request.method != "POST":
            raise BadPayload("no such webhook source", status=404)
        signed = request.body
        if source.signed_timestamp:
            stamp = request.headers.get(TIMESTAMP_HEADER.lower(), "")
            if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
                raise BadPayload(f"{TIMESTAMP_HEADER} (Unix seconds) is required for this source", status=403)
            if abs(self.clock() - int(stamp)) > TIMESTAMP_WINDOW:
                raise BadPayload(f"{TIMESTAMP_HEADER} is more than 5 minutes off", status=403)
            signed = f"{stamp}.".encode() + request.body
        if not signing.same(signing.hex_sha256(source.secret, signed), request.headers.get(SIGNATURE_HEADER.lower())):
            raise BadPayload(f"{SIGNATURE_HEADER} does not match", status=403)
        try:
            payload = json.loads(request.body)
        except (ValueError, RecursionError) as exc:
            raise BadPayload("body is not JSON") from exc
        return Batch(messages=(convert.parse_message(source.name, payload, self.clock()),), cursor=None)
