"""The Meta emulator's webhook side: deliveries to ``webhook_url`` (``entry[]`` grouped by account, as Meta
batches them) signed ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, body)>``, the echoes of what
the page sends, and the verification GET Meta sends when the callback URL is saved."""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx

from connectors import signing

if TYPE_CHECKING:
    from bridge.sandbox.meta import _Account


class WebhookSender:
    """Mixed into ``MetaEmulator``, which sets these attributes."""

    app_secret: str
    verify_token: str
    webhook_url: str
    webhook_statuses: list[int]
    accounts: dict[str, _Account]
    client: httpx.Client
    _lock: threading.RLock
    _echoes: queue.Queue[tuple[str, dict[str, Any]] | None]

    # ------------------------------------------------------------------ webhook deliveries

    def payload(self, items: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        """``entry[]`` grouped by account, as Meta batches them."""
        from bridge.sandbox.meta import MESSENGER

        with self._lock:
            platforms = {self.accounts[a].platform for a, _ in items}
        if len(platforms) != 1:
            raise ValueError("one delivery carries one object type")
        entries: dict[str, list[dict[str, Any]]] = {}
        for account, event in items:
            entries.setdefault(account, []).append(event)
        return {
            "object": "page" if platforms == {MESSENGER} else "instagram",
            "entry": [{"id": a, "time": int(time.time() * 1000), "messaging": evs} for a, evs in entries.items()],
        }

    def deliver_events(self, items: list[tuple[str, dict[str, Any]]]) -> httpx.Response:
        return self.deliver(self.payload(items))

    def deliver(self, payload: Any, *, secret: str | None = None) -> httpx.Response:
        return self.deliver_raw(json.dumps(payload).encode(), secret=secret)

    def deliver_raw(self, body: bytes, *, secret: str | None = None, signature: str | None = None) -> httpx.Response:
        """POST a body to the webhook, signed with the app secret (or ``secret``), or with ``signature`` as is."""
        if not self.webhook_url:
            raise RuntimeError("no webhook_url: the app's callback URL is not set")
        sig = signature if signature is not None else signing.hex_sha256(secret or self.app_secret, body)
        resp = self.client.post(
            self.webhook_url, content=body, headers={"Content-Type": "application/json", "X-Hub-Signature-256": sig}
        )
        with self._lock:
            self.webhook_statuses.append(resp.status_code)
        return resp

    def verify_subscription(self, *, verify_token: str | None = None, challenge: str = "1158201444") -> httpx.Response:
        """What Meta does when the callback URL is saved: GET with hub.mode, hub.verify_token, hub.challenge."""
        return self.client.get(
            self.webhook_url,
            params={
                "hub.mode": "subscribe",
                "hub.verify_token": verify_token or self.verify_token,
                "hub.challenge": challenge,
            },
        )

    def _send_echoes(self) -> None:
        while True:
            item = self._echoes.get()
            if item is None:
                return
            try:
                self.deliver_events([item])
            except (httpx.HTTPError, RuntimeError):
                with self._lock:
                    self.webhook_statuses.append(0)
