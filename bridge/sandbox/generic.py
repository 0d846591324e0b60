"""A generic webhook source: it posts signed messages to ``/webhooks/generic/{name}`` and receives replies
at its own callback URL, checking the bridge's signature and deduplicating retries by reply id."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.sandbox.cdn import Cdn
from bridge.sandbox.server import HttpServer
from connectors import signing

Attachment = tuple[bytes, str, str] | dict[str, Any]
"""A customer's file: ``(bytes, content type, name)`` served from the CDN, or an attachment object as it is."""
SIGNATURE_HEADER = "X-Dmbridge-Signature"
TIMESTAMP_HEADER = "X-Dmbridge-Timestamp"


class GenericSourceEmulator:
    def __init__(
        self,
        *,
        name: str = "shop",
        secret: str = "sandbox-generic-secret",
        signed_timestamp: bool = False,
        cdn: Cdn | None = None,
    ) -> None:
        self.cdn = cdn
        """Where customers' files are served from (``attachments`` given as bytes)."""
        self.name, self.secret, self.signed_timestamp = name, secret, signed_timestamp
        self.webhook_url = ""
        self.deliveries: list[dict[str, Any]] = []
        """Every signed callback received, retries included."""
        self.refused: list[int] = []
        self.files: dict[str, tuple[int, bytes]] = {}
        """What each reply's attachment link gave when fetched on arrival: URL → (status, bytes)."""
        self.keep_files = True
        """False: ``files`` stays empty and only ``fetched`` is kept (a large file is never held whole)."""
        self.fetched: dict[str, tuple[int, int, str]] = {}
        """The same fetches, streamed: URL → (status, bytes received, their SHA-256 hex)."""
        self._replies: dict[str, dict[str, Any]] = {}
        self._faults: list[int] = []
        self._lock = threading.RLock()
        self.client = httpx.Client(timeout=30)
        self.http = HttpServer(Starlette(routes=[Route("/callback", self._callback, methods=["POST"])]))

    @property
    def callback_url(self) -> str:
        return self.http.url + "/callback"

    def start(self) -> None:
        self.http.start()

    def stop(self) -> None:
        self.http.stop()
        self.client.close()

    def fail_next(self, status: int = 503, times: int = 1) -> None:
        """The next ``times`` callbacks are answered with ``status`` (after being checked and counted); a 3xx
        carries a ``Location`` elsewhere, as a moved endpoint would answer."""
        with self._lock:
            self._faults.extend([status] * times)

    # ------------------------------------------------------------------ messages to the bridge

    def message(
        self,
        conversation_id: str,
        sender_id: str,
        name: str,
        text: str,
        *,
        message_id: str | None = None,
        handle: str | None = None,
        avatar_url: str | None = None,
        attachments: list[Attachment] | None = None,
        ttl: float | None = None,
    ) -> dict[str, Any]:
        """A message as the source posts it. ``attachments``: ``(bytes, content type, name)`` put on the CDN
        (links expiring after ``ttl`` seconds if given) and sent as ``{"url", "name", "content_type"}``, or
        attachment objects as they are."""
        body: dict[str, Any] = {
            "conversation_id": conversation_id,
            "message_id": message_id or f"msg-{uuid.uuid4().hex[:12]}",
            "sender": {"id": sender_id, "name": name},
            "text": text,
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        if handle:
            body["sender"]["handle"] = handle
        if avatar_url:
            body["sender"]["avatar_url"] = avatar_url
        if attachments:
            body["attachments"] = [self._attachment(a, ttl) for a in attachments]
        return body

    def _attachment(self, item: Attachment, ttl: float | None) -> dict[str, Any]:
        if isinstance(item, dict):
            return item
        data, content_type, name = item
        if self.cdn is None:
            raise RuntimeError("this source has no CDN to serve files from (GenericSourceEmulator(cdn=...))")
        return {"url": self.cdn.put(data, name, content_type, ttl), "name": name, "content_type": content_type}

    def customer_sends(
        self, conversation_id: str, sender_id: str, name: str, text: str, **kwargs: Any
    ) -> httpx.Response:
        return self.post(self.message(conversation_id, sender_id, name, text, **kwargs))

    def post(self, payload: Any, *, secret: str | None = None) -> httpx.Response:
        return self.post_raw(json.dumps(payload).encode(), secret=secret)

    def post_raw(
        self, body: bytes, *, secret: str | None = None, signature: str | None = None, timestamp: int | None = None
    ) -> httpx.Response:
        """Signed as the source is configured: the body, or with ``signed_timestamp`` ``"{timestamp}.{body}"``
        plus the X-Dmbridge-Timestamp header (``timestamp``: now unless given)."""
        headers = {"Content-Type": "application/json"}
        signed = body
        if self.signed_timestamp:
            stamp = int(time.time()) if timestamp is None else timestamp
            headers[TIMESTAMP_HEADER] = str(stamp)
            signed = f"{stamp}.".encode() + body
        headers[SIGNATURE_HEADER] = (
            signature if signature is not None else signing.hex_sha256(secret or self.secret, signed)
        )
        return self.client.post(self.webhook_url, content=body, headers=headers)

    # ------------------------------------------------------------------ replies from the bridge

    def replies(self, conversation_id: str | None = None) -> list[str]:
        """Reply texts accepted, once each, in order of arrival."""
        with self._lock:
            return [
                r["text"]
                for r in self._replies.values()
                if conversation_id is None or r["conversation_id"] == conversation_id
            ]

    async def _callback(self, request: Request) -> Response:
        body = await request.body()
        signed = body
        if self.signed_timestamp:
            stamp = request.headers.get(TIMESTAMP_HEADER, "")
            if not stamp.isdigit() or abs(time.time() - int(stamp)) > 300:
                with self._lock:
                    self.refused.append(401)
                return JSONResponse({"error": "missing or stale timestamp"}, status_code=401)
            signed = f"{stamp}.".encode() + body
        with self._lock:
            if not signing.same(signing.hex_sha256(self.secret, signed), request.headers.get(SIGNATURE_HEADER)):
                self.refused.append(401)
                return JSONResponse({"error": "bad signature"}, status_code=401)
            reply = json.loads(body)
            self.deliveries.append(reply)
        for item in reply.get("attachments") or []:  # a source fetches the link it was given, as a shop would
            await self._fetch(item["url"])
        with self._lock:
            if self._faults:
                status = self._faults.pop(0)
                moved = {"location": self.http.url + "/moved"} if 300 <= status < 400 else None
                return JSONResponse({"error": "injected failure"}, status_code=status, headers=moved)
            self._replies.setdefault(reply["id"], reply)
            return JSONResponse({"message_id": "src-" + reply["id"]})

    async def _fetch(self, url: str) -> None:
        digest, size, kept = hashlib.sha256(), 0, bytearray()
        async with httpx.AsyncClient(timeout=30) as client, client.stream("GET", url) as got:
            async for chunk in got.aiter_bytes():
                digest.update(chunk)
                size += len(chunk)
                if self.keep_files:
                    kept.extend(chunk)
        with self._lock:
            self.fetched[url] = (got.status_code, size, digest.hexdigest())
            if self.keep_files:
                self.files[url] = (got.status_code, bytes(kept))
