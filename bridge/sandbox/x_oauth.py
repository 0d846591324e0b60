"""X's OAuth 2.0 authorization server, as the X emulator plays it.

``GET /i/oauth2/authorize`` checks the request (``response_type=code``, a known ``client_id``, a
registered ``redirect_uri``, known scopes, ``state``, an S256 ``code_challenge``) and — the user
approving at once — redirects (302) to ``redirect_uri?state=…&code=…``. ``POST /2/oauth2/token``
takes form-encoded ``authorization_code`` (the PKCE verifier must hash to the challenge; a code
works once, for 30 s) and ``refresh_token`` grants; a confidential client must authenticate with
HTTP Basic, a public one names ``client_id`` in the body. Access tokens last 7,200 s; with
``offline.access`` a refresh token is issued, and each refresh rotates it (the used one is dead).
Errors are X's ``{"error", "error_description"}`` bodies. Time is the injectable ``clock``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from bridge.sandbox.x_rules import OAUTH2_SCOPES

ACCESS_SECONDS = 7200
CODE_SECONDS = 30
BAD_TOKEN = "Value passed for the token was invalid."
BAD_CODE = "Value passed for the authorization code was invalid."


@dataclass
class Client:
    client_id: str
    secret: str | None  # None: a public client
    redirect_uris: tuple[str, ...]


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    expires_at: float


@dataclass
class OAuth2Server:
    clock: Callable[[], float] = time.time
    clients: dict[str, Client] = field(default_factory=dict)
    access: dict[str, tuple[float, str]] = field(default_factory=dict)  # token → (expires_at, scope)
    refresh: dict[str, tuple[str, str]] = field(default_factory=dict)  # live refresh token → (client, scope)
    grants: list[tuple[str, int]] = field(default_factory=list)  # (grant_type, status) of each token call
    _codes: dict[str, _Code] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def routes(self) -> list[Route]:
        return [
            Route("/i/oauth2/authorize", self._authorize, methods=["GET"]),
            Route("/2/oauth2/token", self._token, methods=["POST"]),
        ]

    def add_client(self, client_id: str, redirect_uri: str, secret: str | None = None) -> None:
        with self._lock:
            self.clients[client_id] = Client(client_id, secret, (redirect_uri,))

    def valid(self, token: str) -> bool:
        with self._lock:
            found = self.access.get(token)
            return found is not None and self.clock() < found[0]

    def refresh_grants(self) -> int:
        with self._lock:
            return sum(1 for kind, status in self.grants if kind == "refresh_token" and status == 200)

    # ------------------------------------------------------------------ HTTP

    async def _authorize(self, request: Request) -> Response:
        q = request.query_params
        client = self.clients.get(q.get("client_id", ""))
        problem = None
        if client is None:
            problem = "invalid client_id"
        elif q.get("redirect_uri") not in client.redirect_uris:
            problem = "redirect_uri does not match a callback URL of the app"
        elif q.get("response_type") != "code":
            problem = "response_type must be code"
        elif not q.get("state"):
            problem = "state is required"
        elif q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            problem = "code_challenge with code_challenge_method S256 is required"
        elif not set((q.get("scope") or "").split()) or set((q.get("scope") or "").split()) - OAUTH2_SCOPES:
            problem = "scope is missing or has unknown scopes"
        if problem is not None or client is None:
            return JSONResponse({"error": "invalid_request", "error_description": problem}, status_code=400)
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = _Code(
                client.client_id, q["redirect_uri"], q["code_challenge"], q["scope"], self.clock() + CODE_SECONDS
            )
        return RedirectResponse(
            f"{q['redirect_uri']}?{urlencode({'state': q['state'], 'code': code})}", status_code=302
        )

    async def _token(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return self._answer("?", 400, "invalid_request", "Missing required parameter [grant_type].")
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
        grant = form.get("grant_type", "")
        with self._lock:
            client = self._client(request, form)
            if isinstance(client, Response):
                self.grants.append((grant, client.status_code))
                return client
            if grant == "authorization_code":
                return self._code_grant(client, form)
            if grant == "refresh_token":
                return self._refresh_grant(client, form)
            return self._answer(grant, 400, "invalid_request", "Missing required parameter [grant_type].")

    def _client(self, request: Request, form: dict[str, str]) -> Client | Response:
        auth = request.headers.get("authorization", "")
        if auth.startswith("Basic "):
            try:
                client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                client_id, secret = "", ""
            client = self.clients.get(client_id)
            if client is None or client.secret is None or not secrets.compare_digest(client.secret, secret):
                return JSONResponse(
                    {"error": "unauthorized_client", "error_description": "Missing valid authorization header"},
                    status_code=401,
                )
            return client
        client = self.clients.get(form.get("client_id", ""))
        if client is None or client.secret is not None:  # a confidential client must use Basic
            return JSONResponse(
                {"error": "unauthorized_client", "error_description": "Missing valid authorization header"},
                status_code=401,
            )
        return client

    def _code_grant(self, client: Client, form: dict[str, str]) -> Response:
        code = self._codes.pop(form.get("code", ""), None)  # a code works once
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if (
            code is None
            or code.client_id != client.client_id
            or code.expires_at <= self.clock()
            or code.redirect_uri != form.get("redirect_uri")
            or not secrets.compare_digest(code.challenge, challenge)
        ):
            return self._answer("authorization_code", 400, "invalid_request", BAD_CODE)
        return self._issue("authorization_code", client, code.scope)

    def _refresh_grant(self, client: Client, form: dict[str, str]) -> Response:
        found = self.refresh.get(form.get("refresh_token", ""))
        if found is None or found[0] != client.client_id:
            return self._answer("refresh_token", 400, "invalid_request", BAD_TOKEN)
        del self.refresh[form["refresh_token"]]  # rotation: the used refresh token is dead
        return self._issue("refresh_token", client, found[1])

    def _issue(self, grant: str, client: Client, scope: str) -> Response:
        token = secrets.token_urlsafe(40)
        self.access[token] = (self.clock() + ACCESS_SECONDS, scope)
        body: dict[str, object] = {
            "token_type": "bearer",
            "expires_in": ACCESS_SECONDS,
            "access_token": token,
            "scope": scope,
        }
        if "offline.access" in scope.split():
            refresh = secrets.token_urlsafe(40)
            self.refresh[refresh] = (client.client_id, scope)
            body["refresh_token"] = refresh
        self.grants.append((grant, 200))
        return JSONResponse(body)

    def _answer(self, grant: str, status: int, error: str, description: str) -> Response:
        self.grants.append((grant, status))
        return JSONResponse({"error": error, "error_description": description}, status_code=status)
