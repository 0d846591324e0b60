"""An emulator of the Graph API parts the bridge uses, and of Meta's signed webhook deliveries.

Graph side (reached only through ``META_GRAPH_URL``, under any version prefix
``/vNN.N``, as Graph serves every version it still supports): ``GET /app`` (the
app a token belongs to), ``GET /me`` (the Page a Page token belongs to),
``GET``/``POST /{page-id}/subscribed_apps`` (the Page's webhook fields for our
app), ``GET /{user-id}?fields=…`` (Messenger and Instagram profiles),
``POST /me/messages`` and ``POST /{page-id}/messages`` (the Send API).
Tokens come as ``Authorization: Bearer`` or ``access_token``. The Send API
applies Meta's rules: ``RESPONSE`` within 24 hours of the customer's last
message, ``MESSAGE_TAG`` + ``HUMAN_AGENT`` within 7 days where the account is
approved for it, Messenger text ≤ 2,000 characters, Instagram ≤ 1,000 bytes;
errors carry Meta's codes (190 token, 10/2018278 window, 551/1545041
unavailable, 100 parameters). Faults (429, 5xx, any code) are injected with
:meth:`MetaEmulator.fail_next`.

Webhook side: a customer's message, and every message the page sends
(``is_echo``: ours with our app id, Business Suite's with its own), is POSTed
to ``webhook_url`` signed ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256>``.

Split by surface: the Send API (:mod:`bridge.sandbox.meta_send`), webhook deliveries
(:mod:`bridge.sandbox.meta_webhooks`), the Page endpoints and version segment (:mod:`bridge.sandbox.meta_pages`).
This module holds the world set-up, faults, people acting on Meta and the profile and app reads.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.sandbox import meta_pages as pages
from bridge.sandbox import meta_send as send
from bridge.sandbox.cdn import Cdn
from bridge.sandbox.meta_pages import V
from bridge.sandbox.meta_webhooks import WebhookSender
from bridge.sandbox.server import HttpServer

VERSION = "v26.0"
"""The default Graph version (released 2026-07-29; usable until two years after its successor's release)."""
APP_ID = "940051237712345"
BUSINESS_SUITE_APP_ID = "263902037430900"
MESSENGER, INSTAGRAM = "messenger", "instagram"
DAY = 86_400.0
Attachment = tuple[bytes, str, str] | dict[str, Any]
"""A customer's file: ``(bytes, type, name)`` served from the CDN, or a Graph attachment object as it is."""


@dataclass
class _Account:
    id: str
    platform: str
    token: str
    name: str
    human_agent: bool = True


@dataclass
class _Customer:
    id: str
    account: str
    profile: dict[str, Any]
    available: bool = True
    last_message_at: float | None = None
    log: list[dict[str, Any]] = field(default_factory=list)


class _GraphError(Exception):
    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        subcode: int | None = None,
        headers: dict[str, str] | None = None,
        transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.subcode = status, code, message, subcode
        self.headers, self.transient = headers or {}, transient

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": "OAuthException",
            "code": self.code,
            "fbtrace_id": uuid.uuid4().hex[:11],
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.transient:
            error["is_transient"] = True
        return {"error": error}


class MetaEmulator(WebhookSender):
    def __init__(
        self,
        *,
        app_secret: str = "sandbox-meta-app-secret",
        verify_token: str = "sandbox-verify-token",
        app_id: str = APP_ID,
        version: str = VERSION,
        cdn: Cdn | None = None,
    ) -> None:
        self.cdn = cdn
        """Where customers' files are served from (``attachments`` given as bytes)."""
        self.app_secret, self.verify_token, self.app_id = app_secret, verify_token, app_id
        self.version = version
        self.subscriptions: dict[str, list[str]] = {}
        """Page id → the webhook fields our app is subscribed to on that Page (none until subscribed)."""
        self.webhook_url = ""
        self.accounts: dict[str, _Account] = {}
        self.customers: dict[str, _Customer] = {}
        self.send_requests: list[tuple[dict[str, Any], int]] = []
        self.profile_requests: list[str] = []
        self.webhook_statuses: list[int] = []
        self._faults: dict[str, list[_GraphError]] = {}
        self._lock = threading.RLock()
        self._echoes: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._echo_thread: threading.Thread | None = None
        self.client = httpx.Client(timeout=30)
        self.http = HttpServer(
            Starlette(
                routes=[
                    *pages.routes(self),
                    Route(f"{V}/app", self._app, methods=["GET"]),
                    *send.routes(self),
                    Route(f"{V}/{{node}}", self._node, methods=["GET"]),
                ]
            )
        )

    # ------------------------------------------------------------------ lifecycle and world

    @property
    def graph_url(self) -> str:
        return f"{self.http.url}/{self.version}"

    def start(self) -> None:
        self.http.start()
        self._echo_thread = threading.Thread(target=self._send_echoes, name="meta-emulator-echo", daemon=True)
        self._echo_thread.start()

    def stop(self) -> None:
        self._echoes.put(None)
        if self._echo_thread is not None:
            self._echo_thread.join(timeout=5)
        self.http.stop()
        self.client.close()

    def add_account(self, account_id: str, platform: str, token: str, name: str, *, human_agent: bool = True) -> None:
        """A Facebook Page (``messenger``) or Instagram professional account, reachable with ``token``."""
        with self._lock:
            self.accounts[account_id] = _Account(account_id, platform, token, name, human_agent)

    def add_customer(
        self,
        account_id: str,
        user_id: str,
        *,
        name: str,
        username: str | None = None,
        profile_pic: str | None = None,
        available: bool = True,
    ) -> None:
        with self._lock:
            first, _, last = name.partition(" ")
            profile: dict[str, Any] = {"id": user_id, "name": name}
            if self.accounts[account_id].platform == MESSENGER:
                profile |= {"first_name": first, "last_name": last}
            if username:
                profile["username"] = username
            if profile_pic:
                profile["profile_pic"] = profile_pic
            self.customers[user_id] = _Customer(user_id, account_id, profile, available)

    def subscribe(self, page_id: str, fields: list[str]) -> None:
        """What ``POST /{page-id}/subscribed_apps`` does: our app receives these webhook fields for the Page."""
        with self._lock:
            self.subscriptions[page_id] = list(fields)

    def set_available(self, user_id: str, available: bool) -> None:
        with self._lock:
            self.customers[user_id].available = available

    def revoke(self, token: str) -> None:
        """``token`` stops working (error 190) for every account it served."""
        with self._lock:
            for account in self.accounts.values():
                if account.token == token:
                    account.token = "revoked-" + uuid.uuid4().hex

    def fail_next(
        self,
        kind: str,
        *,
        status: int = 429,
        code: int | None = None,
        subcode: int | None = None,
        retry_after: float | None = 1,
        times: int = 1,
    ) -> None:
        """The next ``times`` calls of ``kind`` (``send``, ``profile``, ``app``) fail: 429 (code 613, with
        Retry-After), 5xx (transient code 2), or ``status`` with Meta error ``code``/``subcode``."""
        if status == 429:
            err = _GraphError(
                429,
                code or 613,
                "(#613) Calls to this api have exceeded the rate limit.",
                subcode,
                {"Retry-After": str(retry_after)} if retry_after is not None else {},
            )
        elif status >= 500:
            err = _GraphError(
                status,
                code or 2,
                "An unexpected error has occurred. Please retry your request later.",
                subcode,
                transient=True,
            )
        else:
            err = _GraphError(status, code or 100, f"(#{code or 100}) Injected error", subcode)
        with self._lock:
            self._faults.setdefault(kind, []).extend(err for _ in range(times))

    # ------------------------------------------------------------------ people acting on Meta

    def message_event(
        self,
        user_id: str,
        text: str,
        *,
        at: float | None = None,
        attachments: list[Attachment] | None = None,
        ttl: float | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """A customer writes (recorded, not yet delivered): the account id and its ``messaging`` item.
        ``attachments``: ``(bytes, type, name)`` (type ``image``, ``video``, ``audio`` or ``file``) put on the
        CDN, their links expiring after ``ttl`` seconds if given, or Graph attachment objects as they are."""
        items = [self._attachment(a, ttl) for a in attachments or []]
        with self._lock:
            customer = self.customers[user_id]
            when = time.time() if at is None else at
            mid = self._mid()
            message: dict[str, Any] = {"mid": mid}
            if text:
                message["text"] = text
            if items:
                message["attachments"] = items
            customer.last_message_at = max(customer.last_message_at or 0.0, when)
            files = [a[2] for a in attachments or [] if isinstance(a, tuple)]
            customer.log.append({"from": "customer", "mid": mid, "text": text, "at": when, "files": files})
            return customer.account, {
                "sender": {"id": user_id},
                "recipient": {"id": customer.account},
                "timestamp": int(when * 1000),
                "message": message,
            }

    def _attachment(self, item: Attachment, ttl: float | None) -> dict[str, Any]:
        """As Meta sends a customer's file: ``{"type": …, "payload": {"url": <its CDN link>}}`` (no name)."""
        if isinstance(item, dict):
            return item
        data, kind, name = item
        if self.cdn is None:
            raise RuntimeError("this Meta emulator has no CDN to serve files from (MetaEmulator(cdn=...))")
        return {"type": kind, "payload": {"url": self.cdn.put_kind(data, kind, name, ttl)}}

    def customer_sends(
        self,
        user_id: str,
        text: str,
        *,
        at: float | None = None,
        attachments: list[Attachment] | None = None,
        ttl: float | None = None,
    ) -> str:
        """A customer writes (``attachments`` as for :meth:`message_event`); the webhook is delivered before this
        returns. Returns the ``mid``."""
        account, event = self.message_event(user_id, text, at=at, attachments=attachments, ttl=ttl)
        self.deliver_events([(account, event)])
        return str(event["message"]["mid"])

    def customer_taps(self, user_id: str, title: str, *, payload: str | None = None) -> str:
        """The customer taps the quick reply ``title`` of the page's latest message that offered quick replies:
        Meta posts the title as their message with ``message.quick_reply.payload`` (``payload`` forges one)."""
        with self._lock:
            offered = next(m["quick_replies"] for m in reversed(self.customers[user_id].log) if m.get("quick_replies"))
        chosen = payload if payload is not None else next(q["payload"] for q in offered if q["title"] == title)
        account, event = self.message_event(user_id, title)
        event["message"]["quick_reply"] = {"payload": chosen}
        self.deliver_events([(account, event)])
        return str(event["message"]["mid"])

    def business_suite_sends(self, user_id: str, text: str) -> str:
        """Someone answers from Meta Business Suite: the page's message comes back as another app's echo."""
        with self._lock:
            customer = self.customers[user_id]
            mid = self._mid()
            customer.log.append({"from": "page", "via": "business_suite", "mid": mid, "text": text, "at": time.time()})
            event = send.echo(customer.account, user_id, mid, text, BUSINESS_SUITE_APP_ID)
        self.deliver_events([(customer.account, event)])
        return mid

    def received_by(self, user_id: str) -> list[str]:
        """What the page sent this customer through the Send API, in order."""
        with self._lock:
            return [m["text"] for m in self.customers[user_id].log if m.get("via") == "api"]

    def log(self, user_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self.customers[user_id].log]

    # ------------------------------------------------------------------ Graph API

    def _token(self, request: Request) -> str:
        auth = request.headers.get("authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else request.query_params.get("access_token", "")

    def _account_for(self, request: Request) -> _Account:
        token = self._token(request)
        for account in self.accounts.values():
            if token and account.token == token:
                return account
        raise _GraphError(400, 190, "Invalid OAuth access token - Cannot parse access token")

    def _fault(self, kind: str) -> None:
        faults = self._faults.get(kind, [])
        if faults:
            raise faults.pop(0)

    async def _app(self, request: Request) -> Response:
        def produce() -> dict[str, Any]:
            self._fault("app")
            self._account_for(request)
            return {
                "id": self.app_id,
                "name": "dmbridge sandbox",
                "link": "https://www.facebook.com/games/?app_id=" + self.app_id,
            }

        return self._answer(produce)

    async def _node(self, request: Request) -> Response:
        user_id = request.path_params["node"]

        def produce() -> dict[str, Any]:
            self._fault("profile")
            account = self._account_for(request)
            self.profile_requests.append(user_id)
            customer = self.customers.get(user_id)
            if customer is None or not self._owns(account, customer):
                raise _GraphError(400, 100, f"Unsupported get request. Object with ID '{user_id}' does not exist", 33)
            fields = set((request.query_params.get("fields") or "id,name").split(",")) | {"id"}
            return {k: v for k, v in customer.profile.items() if k in fields}

        return self._answer(produce)

    def _owns(self, account: _Account, customer: _Customer) -> bool:
        return customer.account == account.id or self._linked(account, customer.account)

    def _linked(self, account: _Account, other: str) -> bool:
        """A page token also serves the Instagram account linked to the page (same token)."""
        linked = self.accounts.get(other)
        return linked is not None and linked.token == account.token

    def _answer(self, produce: Any) -> Response:
        try:
            with self._lock:
                return JSONResponse(produce())
        except _GraphError as exc:
            return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    def _mid(self) -> str:
        return "m_" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
