"""A CRM receiving dmbridge's lead hand-offs (``[crm]``) over https on loopback, checking each POST's signature
(``X-Dmbridge-Signature``, HMAC-SHA256 of the body) like a real receiver would, and refusing unsigned ones."""

from __future__ import annotations

import json
import threading
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.sandbox.cdn import tls_files
from bridge.sandbox.server import HttpServer
from connectors import signing

SIGNATURE_HEADER = "X-Dmbridge-Signature"


class CrmEmulator:
    def __init__(self, *, secret: str = "sandbox-crm-secret") -> None:
        self.secret = secret
        self.received: list[dict[str, Any]] = []
        """Every correctly signed lead accepted (after any faults)."""
        self.attempts = 0
        self.refused: list[int] = []
        self._faults: list[int] = []
        self._lock = threading.Lock()
        # the sandbox's CA is trusted through SSL_CERT_FILE
        self.http = HttpServer(Starlette(routes=[Route("/leads", self._leads, methods=["POST"])]), **tls_files())

    @property
    def url(self) -> str:
        return self.http.url + "/leads"

    def start(self) -> None:
        self.http.start()

    def close(self) -> None:
        self.http.stop()

    def fail_next(self, status: int = 503, times: int = 1) -> None:
        with self._lock:
            self._faults.extend([status] * times)

    async def _leads(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            self.attempts += 1
            if not signing.same(signing.hex_sha256(self.secret, body), request.headers.get(SIGNATURE_HEADER)):
                self.refused.append(401)
                return JSONResponse({"error": "bad signature"}, status_code=401)
            if self._faults:
                status = self._faults.pop(0)
                self.refused.append(status)
                return JSONResponse({"error": "try later"}, status_code=status)
            self.received.append(json.loads(body))
        return JSONResponse({"ok": True})
