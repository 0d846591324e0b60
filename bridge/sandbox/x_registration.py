"""The app-only side of the X emulator: ``POST /oauth2/token`` and ``GET /2/webhooks``.

X issues an app-only bearer token for the consumer key and secret
(client-credentials grant, HTTP Basic with the URL-encoded key and secret,
``grant_type=client_credentials``); webhook registrations are read with that
bearer token only (``GET /2/webhooks`` lists ``BearerToken`` as its one
security scheme; a user-context request is refused as unsupported).
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class AppOnly:
    def __init__(self, consumer_key: str, consumer_secret: str) -> None:
        self.consumer_key, self.consumer_secret = consumer_key, consumer_secret
        self.bearer = "AAAAAAAAAAAAAAAAAAAAA" + uuid.uuid4().hex
        self.webhooks: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def routes(self) -> list[Route]:
        return [
            Route("/oauth2/token", self._token, methods=["POST"]),
            Route("/2/webhooks", self._list, methods=["GET"]),
        ]

    def register(self, url: str, *, valid: bool = True) -> str:
        """What ``POST /2/webhooks`` does once X's CRC check passed (``valid=False``: it failed since)."""
        webhook_id = str(int(time.time() * 1000) << 22)
        with self._lock:
            self.webhooks.append(
                {
                    "id": webhook_id,
                    "url": url,
                    "valid": valid,
                    "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                }
            )
        return webhook_id

    async def _token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(errors="replace")))
        auth = request.headers.get("authorization", "")
        try:
            key, _, secret = (
                base64.b64decode(auth[6:]).decode().partition(":") if auth.startswith("Basic ") else ("", "", "")
            )
        except ValueError:
            key = secret = ""
        if unquote(key) != self.consumer_key or unquote(secret) != self.consumer_secret:
            return _v1_error(99, "Unable to verify your credentials", "authenticity_token_error")
        if form.get("grant_type") != "client_credentials":
            return _v1_error(170, "Missing required parameter: grant_type", "forbidden_missing_parameter")
        return JSONResponse({"token_type": "bearer", "access_token": self.bearer})

    async def _list(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        if auth.startswith("OAuth "):
            return _problem(
                403,
                "Unsupported Authentication",
                "Authenticating with OAuth 1.0a User Context is forbidden for this endpoint.  "
                "Supported authentication types are [OAuth 2.0 Application-Only].",
            )
        if not auth.startswith("Bearer ") or auth[7:] != self.bearer:
            return _problem(401, "Unauthorized", "Unauthorized")
        with self._lock:
            data = [dict(w) for w in self.webhooks]
        body: dict[str, Any] = {"meta": {"result_count": len(data)}}
        if data:
            body["data"] = data
        return JSONResponse(body)


def _v1_error(code: int, message: str, label: str) -> Response:
    return JSONResponse({"errors": [{"code": code, "message": message, "label": label}]}, status_code=403)


def _problem(status: int, title: str, detail: str) -> Response:
    return JSONResponse({"title": title, "detail": detail, "type": "about:blank", "status": status}, status_code=status)
