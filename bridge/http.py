"""The HTTP surface: ``POST /slack/events``, ``/webhooks/…``, ``GET /media/…``, ``GET /healthz``, ``GET /metrics``.

Every route reads its body under a size limit and a deadline, and answers 400 to a body it cannot parse
(deeply nested JSON included), never 500. In Socket Mode ``/slack/events`` is not mounted at all: request
verification is never off on an HTTP route.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from slack_bolt import App, BoltRequest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from bridge.domain import Batch
from bridge.errors import BadPayload
from bridge.loops import EdgeFirst
from connectors.base import WebhookReceiver, WebhookReply, WebhookRequest

MAX_BODY = 1024 * 1024
BODY_SECONDS = 5.0
"""The whole body must arrive within this (a body sent a byte at a time no longer holds a connection)."""
UVICORN_LIMITS: dict[str, Any] = {"limit_concurrency": 200, "timeout_keep_alive": 5}
"""Passed to uvicorn by ``dmbridge serve``: beyond 200 open connections new ones get 503; idle keep-alive
connections close after 5 s. Header timeouts are a reverse proxy's job (README)."""
UNPARSABLE = (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError)
log = logging.getLogger(__name__)
INLINE_TYPES = ("image/", "video/", "audio/", "application/pdf")
"""Types served as themselves from ``/media``; anything else (HTML, SVG, scripts) as opaque bytes."""
Media = Callable[[str], tuple[str, str, int, Iterator[bytes]] | None]
"""A ``/media/{token}`` look-up: (name, MIME type, size, the bytes) or None (404)."""


class BodyRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason

    def response(self) -> Response:
        return JSONResponse({"error": self.reason}, status_code=self.status)


async def read_body(request: Request, limit: int = MAX_BODY, deadline: float = BODY_SECONDS) -> bytes:
    """The raw body; BodyRefused 413 beyond ``limit`` bytes, 408 when it takes longer than ``deadline``."""
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyRefused(413, "body too large")
    body = bytearray()
    try:
        async with asyncio.timeout(deadline):
            async for chunk in request.stream():
                body.extend(chunk)
                if len(body) > limit:
                    raise BodyRefused(413, "body too large")
    except TimeoutError:
        log.info("refused a request whose body took longer than %.0f s", deadline)
        raise BodyRefused(408, "body not received in time") from None
    return bytes(body)


def build_http(
    bolt: App | None,
    health: Callable[[], dict[str, Any]],
    registry: CollectorRegistry,
    receivers: dict[str, WebhookReceiver],
    store: Callable[[str, Batch], int],
    skip: Callable[[bytes, dict[str, str]], bool] | None = None,
    *,
    body_seconds: float = BODY_SECONDS,
    media: Media | None = None,
    edge: EdgeFirst | None = None,
) -> Starlette:
    """``bolt`` None (Socket Mode): no ``/slack/events`` route. ``store(route, batch)`` writes a webhook's
    messages in one transaction and wakes the loops. ``skip(body, headers)``: True for a verified request
    to acknowledge without storing (our own posts echoed back), answered without a trip through bolt."""

    first = edge or EdgeFirst()

    # a request counts as in flight (the loops give way to it) once its body is in: a client trickling a body
    # until the deadline holds up no delivery

    async def webhook(request: Request) -> Response:
        route = request.path_params.get("route", "generic")
        receiver = receivers.get(route)
        if receiver is None:
            return JSONResponse({"error": f"no {route} webhook is configured"}, status_code=404)
        try:
            body = await read_body(request, deadline=body_seconds)
        except BodyRefused as refused:
            return refused.response()
        with first.request():
            return await _webhook(request, route, receiver, body)

    async def slack_events(request: Request) -> Response:
        try:
            body = await read_body(request, deadline=body_seconds)
        except BodyRefused as refused:
            return refused.response()
        with first.request():
            return await _slack_events(request, body)

    async def _webhook(request: Request, route: str, receiver: WebhookReceiver, body: bytes) -> Response:
        req = WebhookRequest(
            method=request.method,
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            source=request.path_params.get("name"),
            client=request.client.host if request.client else "",
        )
        try:
            result = receiver.handle_webhook(req)
        except BadPayload as exc:
            return JSONResponse({"error": exc.reason}, status_code=exc.status)
        except UNPARSABLE as exc:
            log.warning("refused a %s webhook body that could not be parsed (%s)", route, type(exc).__name__)
            return JSONResponse({"error": "body could not be parsed"}, status_code=400)
        match result:
            case WebhookReply(status=status, body=content, content_type=content_type):
                return Response(content=content, status_code=status, media_type=content_type)
            case Batch():
                new = await run_in_threadpool(store, route, result)
                return JSONResponse({"received": len(result.messages), "new": new})

    async def _slack_events(request: Request, body: bytes) -> Response:
        assert bolt is not None  # the route is only mounted with bolt
        try:
            if skip is not None and skip(body, dict(request.headers)):
                return Response(status_code=200)
            # bolt parses (and reads fields) before it verifies: a body it cannot read is refused here
            bolt_req = BoltRequest(
                body=body.decode("utf-8", errors="replace"),
                query=request.url.query,
                headers={k: [v] for k, v in request.headers.items()},
            )
        except UNPARSABLE as exc:
            log.info("refused a Slack request body that could not be parsed (%s)", type(exc).__name__)
            return JSONResponse({"error": "body is not a Slack request"}, status_code=400)
        if not isinstance(bolt_req.body, dict):
            return JSONResponse({"error": "body is not an object"}, status_code=400)
        try:
            resp = await run_in_threadpool(bolt.dispatch, bolt_req)
        except UNPARSABLE as exc:
            # a verified request whose shape bolt cannot handle will never succeed: 400, not a retried 5xx
            log.warning("refused a Slack request bolt could not handle (%s)", type(exc).__name__)
            return JSONResponse({"error": "malformed Slack request"}, status_code=400)
        if resp.status == 401:
            log.info("refused a Slack request: its signature did not verify")  # bolt's own line is silenced
        headers = {k: v[0] for k, v in resp.headers.items() if v and k.lower() != "content-length"}
        return Response(content=resp.body, status_code=resp.status, headers=headers)

    async def healthz(_request: Request) -> Response:
        state = await run_in_threadpool(health)
        return JSONResponse(state, status_code=200 if state.get("ok") else 503)

    async def metrics(_request: Request) -> Response:
        # collectors read the database: never on the event loop
        return Response(await run_in_threadpool(generate_latest, registry), media_type=CONTENT_TYPE_LATEST)

    async def media_file(request: Request) -> Response:
        found = await run_in_threadpool(media, request.path_params["token"]) if media is not None else None
        if found is None:
            return PlainTextResponse("Not Found", status_code=404)
        name, mimetype, size, chunks = found
        safe_type = mimetype if mimetype.startswith(INLINE_TYPES) else "application/octet-stream"
        headers = {
            "Content-Length": str(size),
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        }
        return StreamingResponse(chunks, media_type=safe_type, headers=headers)

    routes = [Route("/slack/events", slack_events, methods=["POST"])] if bolt is not None else []
    return Starlette(
        routes=[
            *routes,
            Route("/webhooks/generic/{name}", webhook, methods=["POST"]),
            Route("/webhooks/{route:str}", webhook, methods=["GET", "POST"]),
            Route("/media/{token}", media_file, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )
