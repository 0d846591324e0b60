"""The X emulator's webhook side: Account Activity / X Activity API deliveries, signed as X signs them, and
the CRC challenge X sends (a base64 token, and a nonce)."""

from __future__ import annotations

import base64
import json
import queue
import threading
import time
import uuid
from datetime import datetime
from typing import Any

import httpx

from bridge.sandbox.x_media import DmMedia
from bridge.sandbox.x_parts import BRAND_ID
from connectors import signing


class WebhookSender:
    """Mixed into ``XEmulator``, which sets these attributes."""

    consumer_secret: str
    users: dict[str, dict[str, Any]]
    webhook_url: str
    webhook_format: str
    webhook_statuses: list[int]
    client: httpx.Client
    _lock: threading.RLock
    _api_sent: set[str]
    _drop_webhooks: int
    _webhooks: queue.Queue[dict[str, Any] | None]
    media: DmMedia

    # ------------------------------------------------------------------ webhooks

    def drop_next_webhooks(self, times: int = 1) -> None:
        """The next ``times`` webhook deliveries are lost (never sent)."""
        with self._lock:
            self._drop_webhooks += times

    def webhook_payload(self, event: dict[str, Any]) -> dict[str, Any]:
        """The body X would POST for one DM event, in ``webhook_format``."""
        with self._lock:
            sender = event["sender_id"]
            low, high = event["dm_conversation_id"].split("-")
            recipient = high if low == sender else low
            created = datetime.fromisoformat(event["created_at"].replace("Z", "+00:00"))
            millis = str(int(created.timestamp() * 1000))
            dm = {
                "type": "message_create",
                "id": event["id"],
                "created_timestamp": millis,
                "message_create": {
                    "target": {"recipient_id": recipient},
                    "sender_id": sender,
                    "message_data": {
                        "text": event["text"],
                        "entities": {"hashtags": [], "symbols": [], "user_mentions": [], "urls": []},
                    },
                },
            }
            keys = (event.get("attachments") or {}).get("media_keys") or []
            if keys and keys[0] in self.media.entities:
                media = dict(self.media.entities[keys[0]])
                dm["message_create"]["message_data"]["attachment"] = {"type": "media", "media": media}
            if event["id"] in self._api_sent:
                dm["message_create"]["source_app_id"] = "28371937"
            users = {u: self.users[u] for u in (sender, recipient) if u in self.users}
        if self.webhook_format == "activity":
            return {
                "data": {
                    "event_uuid": str(uuid.uuid4()),
                    "filter": {"user_id": BRAND_ID},
                    "tag": "",
                    "event_type": "dm.sent" if sender == BRAND_ID else "dm.received",
                    "payload": {
                        "direct_message_events": [dm],
                        "users": {k: {"data": dict(v)} for k, v in users.items()},
                    },
                }
            }
        return {
            "for_user_id": BRAND_ID,
            "direct_message_events": [dm],
            "users": {
                k: {
                    "id": k,
                    "name": v["name"],
                    "screen_name": v["username"],
                    "profile_image_url_https": v.get("profile_image_url"),
                }
                for k, v in users.items()
            },
        }

    def deliver_webhook(self, payload: Any, *, secret: str | None = None) -> httpx.Response:
        return self.deliver_webhook_raw(json.dumps(payload).encode(), secret=secret)

    def deliver_webhook_raw(
        self, body: bytes, *, secret: str | None = None, signature: str | None = None
    ) -> httpx.Response:
        sig = signature if signature is not None else signing.base64_sha256(secret or self.consumer_secret, body)
        resp = self.client.post(
            self.webhook_url,
            content=body,
            headers={"Content-Type": "application/json", "x-twitter-webhooks-signature": sig},
        )
        with self._lock:
            self.webhook_statuses.append(resp.status_code)
        return resp

    def crc_check(self) -> bool:
        """X's challenge: GET ?crc_token=…&nonce=… (the token is base64 of a UUID, as X's are); True when the
        answer is the expected HMAC."""
        token = base64.b64encode(str(uuid.uuid4()).encode()).decode()
        nonce = base64.urlsafe_b64encode(str(int(time.time() * 1000)).encode()).decode().rstrip("=")
        resp = self.client.get(self.webhook_url, params={"crc_token": token, "nonce": nonce})
        expected = signing.base64_sha256(self.consumer_secret, token.encode())
        return resp.status_code == 200 and resp.json().get("response_token") == expected

    def _send_webhooks(self) -> None:
        while True:
            event = self._webhooks.get()
            if event is None:
                return
            with self._lock:
                if self._drop_webhooks:
                    self._drop_webhooks -= 1
                    continue
            try:
                self.deliver_webhook(event["_chat"] if "_chat" in event else self.webhook_payload(event))
            except httpx.HTTPError:
                with self._lock:
                    self.webhook_statuses.append(0)
