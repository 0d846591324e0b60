"""An emulator of the X API v2 direct-message endpoints the bridge uses.

``GET /2/users/me``, ``GET /2/users``, ``GET /2/dm_events`` (newest first,
``max_results`` ≤ 100, opaque ``pagination_token``, ``dm_event.fields``,
``expansions=sender_id`` with ``user.fields``), ``GET
/2/dm_conversations/{id}/dm_events`` (one conversation's events), ``POST
/2/dm_conversations/{id}/messages`` and ``…/with/{participant}/messages``
(201 with ``dm_conversation_id``/``dm_event_id``; our own sends come back in
``dm_events`` like on X). Requests must carry a valid OAuth 1.0a signature
(HMAC-SHA1 over the URL actually requested) or the OAuth 2.0 user bearer
token — the static one, or one issued by the OAuth 2.0 server of ``x_oauth.py`` until it expires
(an expired token answers X's 401 problem). Errors are problem documents; rate limits answer 429 with
``x-rate-limit-*`` (and ``x-user-limit-24hour-*`` for the daily send cap).

With ``webhook_url`` set, every new DM event is also POSTed there, in the
background, as X's webhooks do: an Account Activity body
(``direct_message_events``) or, with ``webhook_format="activity"``, an X
Activity API envelope (``dm.received``/``dm.sent``), signed
``x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256(consumer secret,
body)>``. :meth:`XEmulator.crc_check` runs the CRC challenge.

Split by surface: the DM endpoints (:mod:`bridge.sandbox.x_dm`), webhook deliveries
(:mod:`bridge.sandbox.x_webhooks`), OAuth 2.0 (:mod:`bridge.sandbox.x_oauth`), app-only token and webhook
registrations (:mod:`bridge.sandbox.x_registration`), query rules (:mod:`bridge.sandbox.x_rules`). This module
holds the world set-up, faults, people acting on X, admission (faults, authentication, rate limits) and the users
endpoints.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import httpx
from oauthlib.oauth1.rfc5849 import signature as oauth_sig
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.sandbox import x_chat_api, x_chat_media, x_dm, x_media, x_rules
from bridge.sandbox.server import HttpServer
from bridge.sandbox.x_chat import ChatPeople, ChatWorld
from bridge.sandbox.x_oauth import OAuth2Server
from bridge.sandbox.x_parts import (
    BRAND_ID,
    DEFAULT_USER_FIELDS,
    NOT_PERMITTED,
    Fault,
    Problem,
    Window,
    conversation_id,
    fault_problem,
    fields_of,
    pick,
)
from bridge.sandbox.x_webhooks import WebhookSender

__all__ = ["BRAND_ID", "BRAND_USERNAME", "NOT_PERMITTED", "XEmulator"]
from bridge.sandbox.x_registration import AppOnly

BRAND_USERNAME = "acme_help"
TWITTER_EPOCH_MS = 1288834974657


class XEmulator(WebhookSender, ChatPeople):
    def __init__(
        self,
        *,
        consumer_key: str = "sandbox-ck",
        consumer_secret: str = "sandbox-cs",
        access_token: str = "sandbox-at",
        access_token_secret: str = "sandbox-ats",
        user_bearer_token: str = "sandbox-user-bearer",
        reads_per_window: int = 100_000,
        sends_per_window: int = 100_000,
        sends_per_day: int = 1_000_000,
        window_seconds: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.consumer_key, self.consumer_secret = consumer_key, consumer_secret
        self.access_token, self.access_token_secret = access_token, access_token_secret
        self.user_bearer_token = user_bearer_token
        self.oauth = OAuth2Server(clock=clock)  # OAuth 2.0: /i/oauth2/authorize, /2/oauth2/token, 2-hour tokens
        self.clock = clock
        self.user_bearer_scopes = set(x_rules.OAUTH2_SCOPES)  # what the static user bearer token was granted
        self.media = x_media.DmMedia()  # DM media and uploads (x_media.py)
        self._media = Window(reads_per_window, window_seconds)
        self.revoked = False
        self.users: dict[str, dict[str, Any]] = {}
        self.accepts_dms: dict[str, bool] = {}
        self._events: list[dict[str, Any]] = []
        self._api_sent: set[str] = set()
        self._faults: dict[str, list[Fault]] = {}
        self._chaos: tuple[float, tuple[str, ...], set[str], Any] | None = None
        self._reads = Window(reads_per_window, window_seconds)
        self._sends = Window(sends_per_window, window_seconds)
        self._daily = Window(sends_per_day, 86_400.0)
        self._last_id = 0
        self._lock = threading.RLock()
        self.requests: list[tuple[str, str, int]] = []
        self.webhook_url = ""
        self.webhook_format = "account_activity"
        self.webhook_statuses: list[int] = []
        self._drop_webhooks = 0
        self._webhooks: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._webhook_thread: threading.Thread | None = None
        self.client = httpx.Client(timeout=30)
        self.chat = ChatWorld()  # X Chat: public keys, customers' identities, conversations (x_chat.py)
        self.add_user(BRAND_ID, BRAND_USERNAME, "Acme Support")
        self.app_only = AppOnly(consumer_key, consumer_secret)  # app bearer token, webhook registrations
        self.http = HttpServer(
            Starlette(
                routes=[
                    *self.oauth.routes(),
                    *self.app_only.routes(),
                    Route("/2/users/me", self._me, methods=["GET"]),
                    Route("/2/users", self._users, methods=["GET"]),
                    *x_media.routes(self),
                    *x_dm.routes(self),
                    *x_chat_api.routes(self),
                    *x_chat_media.routes(self),
                ]
            )
        )

    # ------------------------------------------------------------------ lifecycle and world

    @property
    def api_url(self) -> str:
        return self.http.url

    def start(self) -> None:
        self.http.start()
        self._webhook_thread = threading.Thread(target=self._send_webhooks, name="x-emulator-webhooks", daemon=True)
        self._webhook_thread.start()

    def stop(self) -> None:
        self._webhooks.put(None)
        if self._webhook_thread is not None:
            self._webhook_thread.join(timeout=5)
        self.http.stop()
        self.client.close()

    def add_user(
        self, user_id: str, username: str, name: str, *, profile_image_url: str | None = None, accepts_dms: bool = True
    ) -> None:
        with self._lock:
            user = {"id": user_id, "username": username, "name": name}
            if profile_image_url:
                user["profile_image_url"] = profile_image_url
            self.users[user_id] = user
            self.accepts_dms[user_id] = accepts_dms

    def chaos(
        self,
        rate: float,
        *,
        kinds: tuple[str, ...] = ("429", "503"),
        on: tuple[str, ...] = ("send", "read"),
        seed: int = 11,
    ) -> None:
        """From now on a share ``rate`` of ``on`` calls fail at random: 429 (reset a second ahead) or 503.
        ``rate=0`` stops it."""
        import random

        with self._lock:
            self._chaos = (rate, kinds, set(on), random.Random(seed)) if rate else None

    def revoke(self, revoked: bool = True) -> None:
        """Every call answers 401 until called with False (a revoked or expired credential)."""
        self.revoked = revoked

    def fail_next(
        self,
        kind: str,
        *,
        status: int = 429,
        reset_in: float = 2,
        daily: bool = False,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        """The next ``times`` calls of ``kind`` (``send``, ``read``, ``users``, ``me``) fail with ``status``;
        a 429 carries ``x-rate-limit-reset`` ``reset_in`` seconds ahead (the 24-hour headers with ``daily``);
        ``delay`` answers that many seconds late instead."""
        with self._lock:
            self._faults.setdefault(kind, []).extend(Fault(status, reset_in, daily, delay) for _ in range(times))

    # ------------------------------------------------------------------ people acting on X

    def customer_sends(self, user_id: str, text: str, *, media: tuple[bytes, str] | None = None) -> str:
        """A customer DMs the brand, with a photo, GIF or video (``(bytes, media type)``); returns the event id."""
        return self._append(user_id, conversation_id(user_id, BRAND_ID), text, media=media)

    def brand_sends_from_app(self, user_id: str, text: str) -> str:
        """Someone answers from the X app itself (not through the API)."""
        return self._append(BRAND_ID, conversation_id(user_id, BRAND_ID), text)

    def events(self) -> list[dict[str, Any]]:
        """Every DM event, oldest first."""
        with self._lock:
            return [dict(e) for e in self._events]

    def received_by(self, user_id: str) -> list[str]:
        """The texts the brand sent this customer through the API, in order."""
        conv = conversation_id(user_id, BRAND_ID)
        with self._lock:
            return [
                e["text"]
                for e in self._events
                if e["dm_conversation_id"] == conv and e["sender_id"] == BRAND_ID and e["id"] in self._api_sent
            ]

    def received_media(self, user_id: str) -> list[bytes]:
        """The bytes of the media the brand sent this customer through the API, in order."""
        conv = conversation_id(user_id, BRAND_ID)
        with self._lock:
            sent = [e["id"] for e in self._events if e["dm_conversation_id"] == conv and e["id"] in self._api_sent]
            return [data for (dm, _, _), data in self.media.files.items() if dm in sent]

    def _append(
        self,
        sender: str,
        conversation: str,
        text: str,
        *,
        via_api: bool = False,
        media: tuple[bytes, str] | None = None,
        media_id: str = "",
    ) -> str:
        with self._lock:
            now_ms = int(time.time() * 1000)
            event_id = max((now_ms - TWITTER_EPOCH_MS) << 22, self._last_id + 1)
            self._last_id = event_id
            event: dict[str, Any] = {
                "id": str(event_id),
                "event_type": "MessageCreate",
                "text": text,
                "sender_id": sender,
                "dm_conversation_id": conversation,
                "created_at": datetime.fromtimestamp(now_ms / 1000, UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
            }
            if media is not None:
                event["attachments"] = {"media_keys": [self.media.attach(event["id"], *media, media_id=media_id)]}
            self._events.append(event)
            if via_api:
                self._api_sent.add(event["id"])
            if self.webhook_url:
                self._webhooks.put(dict(event))
            return event["id"]

    # ------------------------------------------------------------------ HTTP

    async def _admit(self, request: Request, kind: str, body: bytes = b"") -> dict[str, str]:
        """Injected faults, authentication and rate limits; the rate-limit headers to answer with."""
        with self._lock:
            faults = self._faults.get(kind, [])
            fault = faults.pop(0) if faults else None
            if fault is None and self._chaos is not None:
                rate, kinds, on, rng = self._chaos
                if kind in on and rng.random() < rate:
                    fault = Fault(429 if rng.choice(kinds) == "429" else 503, 1.0, False, 0.0)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
            fault = None
        with self._lock:
            if fault is not None:
                raise fault_problem(fault)
            self._authenticate(request, body)
            now = time.time()
            window = self._reads if kind in ("read", "users", "me", "media_read") else self._sends
            window = self._media if kind == "media" else window
            if not window.take(now):
                raise Problem(429, "Too Many Requests", "Too Many Requests", window.headers())
            headers = window.headers()
            if kind == "send":
                if not self._daily.take(now):
                    raise Problem(
                        429,
                        "Too Many Requests",
                        "Too Many Requests",
                        headers | self._daily.headers("x-user-limit-24hour"),
                    )
                headers |= self._daily.headers("x-user-limit-24hour")
            return headers

    async def _respond(
        self, request: Request, kind: str, produce: Any, body: bytes = b"", endpoint: str = ""
    ) -> Response:
        try:
            headers = await self._admit(request, kind, body)
            try:
                x_rules.check_query(endpoint or request.url.path, request.query_params)
            except x_rules.InvalidQuery as exc:
                raise Problem(400, "Invalid Request", exc.message, body=exc.body()) from exc
            with self._lock:
                data, status = produce()
        except Problem as exc:
            with self._lock:
                self.requests.append((request.method, request.url.path, exc.status))
            return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)
        with self._lock:
            self.requests.append((request.method, request.url.path, status))
        return JSONResponse(data, status_code=status, headers=headers)

    async def _me(self, request: Request) -> Response:
        return await self._respond(request, "me", lambda: ({"data": dict(self.users[BRAND_ID])}, 200))

    async def _users(self, request: Request) -> Response:
        q = request.query_params
        fields = fields_of(q.get("user.fields"), DEFAULT_USER_FIELDS)

        def produce() -> tuple[dict[str, Any], int]:
            ids = [i for i in (q.get("ids") or "").split(",") if i]
            if not ids:  # over 100 is refused with the other query rules
                raise Problem(400, "Invalid Request", "The `ids` query parameter can not be empty")
            found = [pick(self.users[i], fields) for i in ids if i in self.users]
            return {"data": found}, 200

        return await self._respond(request, "users", produce)

    # ------------------------------------------------------------------ authentication

    def _authenticate(self, request: Request, body: bytes) -> None:
        auth = request.headers.get("authorization", "")
        if self.revoked:
            raise Problem(401, "Unauthorized", "Unauthorized")
        if auth.startswith("Bearer "):
            if auth[7:] == self.user_bearer_token or self.oauth.valid(auth[7:]):
                return
            raise Problem(401, "Unauthorized", "Unauthorized")
        if not auth.startswith("OAuth "):
            raise Problem(401, "Unauthorized", "Unauthorized")
        oauth = dict(
            oauth_sig.collect_parameters(
                headers={"Authorization": auth}, exclude_oauth_signature=False, with_realm=False
            )
        )
        if oauth.get("oauth_consumer_key") != self.consumer_key or oauth.get("oauth_token") != self.access_token:
            raise Problem(401, "Unauthorized", "Unauthorized")
        form = body if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded") else None
        params = oauth_sig.collect_parameters(
            uri_query=request.url.query,
            body=form,
            headers={"Authorization": auth},
            exclude_oauth_signature=True,
            with_realm=False,
        )
        uri = oauth_sig.base_string_uri(f"{request.url.scheme}://{request.headers.get('host')}{request.url.path}")
        base = oauth_sig.signature_base_string(request.method.upper(), uri, oauth_sig.normalize_parameters(params))
        signer = SimpleNamespace(client_secret=self.consumer_secret, resource_owner_secret=self.access_token_secret)
        expected = oauth_sig.sign_hmac_sha1_with_client(base, signer)
        if not oauth_sig.safe_string_equals(expected, oauth.get("oauth_signature", "")):
            raise Problem(401, "Unauthorized", "Unauthorized")
