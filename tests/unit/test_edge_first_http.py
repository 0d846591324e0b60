"""A request counts as in flight for EdgeFirst (the loops give way to it) once its body is in: a client that
trickles a body holds up no delivery (bridge/http.py). The app is driven as ASGI directly, one body part per
``receive``."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CollectorRegistry

from bridge.domain import Batch
from bridge.http import build_http
from bridge.loops import EdgeFirst
from connectors.base import WebhookReply, WebhookRequest


class Receiver:
    def __init__(self, edge: EdgeFirst) -> None:
        self.edge, self.seen_busy = edge, [False]

    def handle_webhook(self, request: WebhookRequest) -> WebhookReply | Batch:
        self.seen_busy.append(self.edge.busy)
        return WebhookReply(200, b"ok", "text/plain")


def post(app: Any, path: str, parts: list[bytes], edge: EdgeFirst) -> tuple[int, list[bool]]:
    """POST ``parts`` as the body; the status and whether the edge counted the request busy at each part."""
    busy: list[bool] = []
    queue = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        busy.append(edge.busy)
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
        "scheme": "http",
        "http_version": "1.1",
        "root_path": "",
    }
    asyncio.run(app(scope, receive, send))
    return status[0], busy


def test_only_a_request_whose_body_is_in_counts_as_in_flight() -> None:
    edge = EdgeFirst()
    receiver = Receiver(edge)
    app = build_http(None, dict, CollectorRegistry(), {"generic": receiver}, lambda r, b: 0, edge=edge)  # type: ignore[dict-item]
    status, busy = post(app, "/webhooks/generic/shop", [b'{"a":', b" 1", b"}"], edge)
    assert status == 200
    assert busy == [False, False, False]  # the body was still coming: nothing held up
    assert receiver.seen_busy[-1] is True  # handled: the loops give way
    assert not edge.busy  # answered


def test_an_unknown_route_never_counts() -> None:
    edge = EdgeFirst()
    app = build_http(None, dict, CollectorRegistry(), {}, lambda r, b: 0, edge=edge)
    status, _ = post(app, "/webhooks/nothing", [b"{}"], edge)
    assert status == 404 and not edge.busy
