"""The HTTP surface: ``POST /slack/events``, ``/webhooks/…``, ``GET /healthz``, ``GET /metrics``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from slack_bolt import App, BoltRequest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.domain import Batch
from bridge.errors import BadPayload
from connectors.base import WebhookReceiver, WebhookReply, WebhookRequest

MAX_BODY = 1024 * 1024
log = logging.getLogger(__name__)


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes | None:
    """The raw body, or None when it exceeds ``limit`` (answer 413)."""
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            return None
    return bytes(body)


def build_http(bolt: App | None, health: Callable[[], dict[str, Any]], registry: CollectorRegistry,
               receivers: dict[str, WebhookReceiver], store: Callable[[str, Batch], int],
               skip: Callable[[bytes, dict[str, str]], bool] | None = None) -> Starlette:
    """``store(route, batch)`` writes a webhook's messages in one transaction and wakes the loops.
    ``skip(body, headers)``: True for a verified request to acknowledge without storing (our own posts
    echoed back), answered on the event loop without a trip through bolt."""

    async def webhook(request: Request) -> Response:
        route = request.path_params.get("route", "generic")
        receiver = receivers.get(route)
        if receiver is None:
            return JSONResponse({"error": f"no {route} webhook is configured"}, status_code=404)
        body = await read_body(request)
        if body is None:
            return JSONResponse({"error": "body too large"}, status_code=413)
        req = WebhookRequest(method=request.method, query=dict(request.query_params),
                             headers={k.lower(): v for k, v in request.headers.items()}, body=body,
                             source=request.path_params.get("name"),
                             client=request.client.host if request.client else "")
        try:
            result = receiver.handle_webhook(req)
        except BadPayload as exc:
            return JSONResponse({"error": exc.reason}, status_code=exc.status)
        match result:
            case WebhookReply(status=status, body=content, content_type=content_type):
                return Response(content=content, status_code=status, media_type=content_type)
            case Batch():
                new = await run_in_threadpool(store, route, result)
                return JSONResponse({"received": len(result.messages), "new": new})

    async def slack_events(request: Request) -> Response:
        if bolt is None:
            return JSONResponse({"error": "HTTP mode is off (Socket Mode in use)"}, status_code=404)
        body = await read_body(request)
        if body is None:
            return JSONResponse({"error": "body too large"}, status_code=413)
        if skip is not None and skip(body, dict(request.headers)):
            return Response(status_code=200)
        try:
            bolt_req = BoltRequest(body=body.decode("utf-8", errors="replace"), query=request.url.query,
                                   headers={k: [v] for k, v in request.headers.items()})
        except (ValueError, TypeError, AttributeError, KeyError, IndexError):
            # bolt parses (and reads fields) before it verifies: a body it cannot read is refused here
            return JSONResponse({"error": "body is not a Slack request"}, status_code=400)
        if not isinstance(bolt_req.body, dict):
            return JSONResponse({"error": "body is not an object"}, status_code=400)
        try:
            resp = await run_in_threadpool(bolt.dispatch, bolt_req)
        except (TypeError, AttributeError, KeyError, IndexError, ValueError):
            # a verified request whose shape bolt cannot handle will never succeed: 400, not a retried 5xx
            log.warning("refused a Slack request bolt could not handle", exc_info=True)
            return JSONResponse({"error": "malformed Slack request"}, status_code=400)
        headers = {k: v[0] for k, v in resp.headers.items() if v and k.lower() != "content-length"}
        return Response(content=resp.body, status_code=resp.status, headers=headers)

    async def healthz(_request: Request) -> Response:
        state = await run_in_threadpool(health)
        return JSONResponse(state, status_code=200 if state.get("ok") else 503)

    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[
        Route("/slack/events", slack_events, methods=["POST"]),
        Route("/webhooks/generic/{name}", webhook, methods=["POST"]),
        Route("/webhooks/{route:str}", webhook, methods=["GET", "POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ])
