"""An emulator of the X API v2 direct-message endpoints the bridge uses.

``GET /2/users/me``, ``GET /2/users``, ``GET /2/dm_events`` (newest first,
``max_results`` ≤ 100, opaque ``pagination_token``, ``dm_event.fields``,
``expansions=sender_id`` with ``user.fields``), ``GET
/2/dm_conversations/{id}/dm_events`` (one conversation's events), ``POST
/2/dm_conversations/{id}/messages`` and ``…/with/{participant}/messages``
(201 with ``dm_conversation_id``/``dm_event_id``; our own sends come back in
``dm_events`` like on X). Requests must carry a valid OAuth 1.0a signature
(HMAC-SHA1 over the URL actually requested) or the OAuth 2.0 user bearer
token. Errors are problem documents; rate limits answer 429 with
``x-rate-limit-*`` (and ``x-user-limit-24hour-*`` for the daily send cap).

With ``webhook_url`` set, every new DM event is also POSTed there, in the
background, as X's webhooks do: an Account Activity body
(``direct_message_events``) or, with ``webhook_format="activity"``, an X
Activity API envelope (``dm.received``/``dm.sent``), signed
``x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256(consumer secret,
body)>``. :meth:`XEmulator.crc_check` runs the CRC challenge.
"""

from __future__ import annotations

import asyncio
import base64
import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import httpx
from oauthlib.oauth1.rfc5849 import signature as oauth_sig
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.sandbox.server import HttpServer
from bridge.sandbox.x_registration import AppOnly
from connectors import signing

BRAND_ID = "1460987654321098752"
BRAND_USERNAME = "acme_help"
TWITTER_EPOCH_MS = 1288834974657
MAX_TEXT = 10_000
DEFAULT_USER_FIELDS = ("id", "name", "username")
DEFAULT_EVENT_FIELDS = ("id", "event_type", "text")
NOT_PERMITTED = "You are not permitted to send Direct Messages to this user."


@dataclass
class _Fault:
    status: int
    reset_in: float
    daily: bool
    delay: float


class _Problem(Exception):
    def __init__(self, status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.headers = status, title, detail, headers or {}


class _Window:
    """A fixed rate-limit window as X reports it in ``x-rate-limit-*`` headers."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit, self.seconds = limit, seconds
        self.used, self.reset = 0, 0.0

    def take(self, now: float) -> bool:
        if now >= self.reset:
            self.used, self.reset = 0, now + self.seconds
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def headers(self, prefix: str = "x-rate-limit") -> dict[str, str]:
        return {f"{prefix}-limit": str(self.limit), f"{prefix}-remaining": str(max(0, self.limit - self.used)),
                f"{prefix}-reset": str(int(self.reset))}


class XEmulator:
    def __init__(self, *, consumer_key: str = "sandbox-ck", consumer_secret: str = "sandbox-cs",
                 access_token: str = "sandbox-at", access_token_secret: str = "sandbox-ats",
                 user_bearer_token: str = "sandbox-user-bearer", reads_per_window: int = 100_000,
                 sends_per_window: int = 100_000, sends_per_day: int = 1_000_000,
                 window_seconds: float = 900.0) -> None:
        self.consumer_key, self.consumer_secret = consumer_key, consumer_secret
        self.access_token, self.access_token_secret = access_token, access_token_secret
        self.user_bearer_token = user_bearer_token
        self.revoked = False
        self.users: dict[str, dict[str, Any]] = {}
        self.accepts_dms: dict[str, bool] = {}
        self._events: list[dict[str, Any]] = []
        self._api_sent: set[str] = set()
        self._faults: dict[str, list[_Fault]] = {}
        self._chaos: tuple[float, tuple[str, ...], set[str], Any] | None = None
        self._reads = _Window(reads_per_window, window_seconds)
        self._sends = _Window(sends_per_window, window_seconds)
        self._daily = _Window(sends_per_day, 86_400.0)
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
        self.add_user(BRAND_ID, BRAND_USERNAME, "Acme Support")
        self.app_only = AppOnly(consumer_key, consumer_secret)  # app bearer token, webhook registrations
        self.http = HttpServer(Starlette(routes=[
            *self.app_only.routes(),
            Route("/2/users/me", self._me, methods=["GET"]),
            Route("/2/users", self._users, methods=["GET"]),
            Route("/2/dm_events", self._dm_events, methods=["GET"]),
            Route("/2/dm_conversations/{conversation}/dm_events", self._dm_events, methods=["GET"]),
            Route("/2/dm_conversations/with/{participant}/messages", self._send_with, methods=["POST"]),
            Route("/2/dm_conversations/{conversation}/messages", self._send_in, methods=["POST"]),
        ]))

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

    def add_user(self, user_id: str, username: str, name: str, *, profile_image_url: str | None = None,
                 accepts_dms: bool = True) -> None:
        with self._lock:
            user = {"id": user_id, "username": username, "name": name}
            if profile_image_url:
                user["profile_image_url"] = profile_image_url
            self.users[user_id] = user
            self.accepts_dms[user_id] = accepts_dms

    def chaos(self, rate: float, *, kinds: tuple[str, ...] = ("429", "503"), on: tuple[str, ...] = ("send", "read"),
              seed: int = 11) -> None:
        """From now on a share ``rate`` of ``on`` calls fail at random: 429 (reset a second ahead) or 503.
        ``rate=0`` stops it."""
        import random

        with self._lock:
            self._chaos = (rate, kinds, set(on), random.Random(seed)) if rate else None

    def revoke(self, revoked: bool = True) -> None:
        """Every call answers 401 until called with False (a revoked or expired credential)."""
        self.revoked = revoked

    def fail_next(self, kind: str, *, status: int = 429, reset_in: float = 2, daily: bool = False,
                  times: int = 1, delay: float = 0.0) -> None:
        """The next ``times`` calls of ``kind`` (``send``, ``read``, ``users``, ``me``) fail with ``status``;
        a 429 carries ``x-rate-limit-reset`` ``reset_in`` seconds ahead (the 24-hour headers with ``daily``);
        ``delay`` answers that many seconds late instead."""
        with self._lock:
            self._faults.setdefault(kind, []).extend(_Fault(status, reset_in, daily, delay) for _ in range(times))

    # ------------------------------------------------------------------ people acting on X

    def customer_sends(self, user_id: str, text: str) -> str:
        """A customer DMs the brand; returns the event id."""
        return self._append(user_id, _conversation_id(user_id, BRAND_ID), text)

    def brand_sends_from_app(self, user_id: str, text: str) -> str:
        """Someone answers from the X app itself (not through the API)."""
        return self._append(BRAND_ID, _conversation_id(user_id, BRAND_ID), text)

    def events(self) -> list[dict[str, Any]]:
        """Every DM event, oldest first."""
        with self._lock:
            return [dict(e) for e in self._events]

    def received_by(self, user_id: str) -> list[str]:
        """The texts the brand sent this customer through the API, in order."""
        conv = _conversation_id(user_id, BRAND_ID)
        with self._lock:
            return [e["text"] for e in self._events if e["dm_conversation_id"] == conv
                    and e["sender_id"] == BRAND_ID and e["id"] in self._api_sent]

    def _append(self, sender: str, conversation: str, text: str, *, via_api: bool = False) -> str:
        with self._lock:
            now_ms = int(time.time() * 1000)
            event_id = max((now_ms - TWITTER_EPOCH_MS) << 22, self._last_id + 1)
            self._last_id = event_id
            event = {"id": str(event_id), "event_type": "MessageCreate", "text": text, "sender_id": sender,
                     "dm_conversation_id": conversation,
                     "created_at": datetime.fromtimestamp(now_ms / 1000, UTC).isoformat(timespec="milliseconds")
                     .replace("+00:00", "Z")}
            self._events.append(event)
            if via_api:
                self._api_sent.add(event["id"])
            if self.webhook_url:
                self._webhooks.put(dict(event))
            return event["id"]

    # ------------------------------------------------------------------ webhooks

    def drop_next_webhooks(self, times: int = 1) -> None:
        """The next ``times`` webhook deliveries are lost (never sent)."""
        with self._lock:
            self._drop_webhooks += times

    def webhook_payload(self, event: dict[str, Any]) -> dict[str, Any]:
        """The body X would POST for one DM event, in ``webhook_format``."""
        with self._lock:
            sender = event["sender_id"]
            low, high = event["dm_conversation_id"].split("-")
            recipient = high if low == sender else low
            created = datetime.fromisoformat(event["created_at"].replace("Z", "+00:00"))
            millis = str(int(created.timestamp() * 1000))
            dm = {"type": "message_create", "id": event["id"], "created_timestamp": millis,
                  "message_create": {"target": {"recipient_id": recipient}, "sender_id": sender,
                                     "message_data": {"text": event["text"], "entities": {
                                         "hashtags": [], "symbols": [], "user_mentions": [], "urls": []}}}}
            if event["id"] in self._api_sent:
                dm["message_create"]["source_app_id"] = "28371937"
            users = {u: self.users[u] for u in (sender, recipient) if u in self.users}
        if self.webhook_format == "activity":
            return {"data": {"event_uuid": str(uuid.uuid4()), "filter": {"user_id": BRAND_ID}, "tag": "",
                             "event_type": "dm.sent" if sender == BRAND_ID else "dm.received",
                             "payload": {"direct_message_events": [dm],
                                         "users": {k: {"data": dict(v)} for k, v in users.items()}}}}
        return {"for_user_id": BRAND_ID, "direct_message_events": [dm],
                "users": {k: {"id": k, "name": v["name"], "screen_name": v["username"],
                              "profile_image_url_https": v.get("profile_image_url")} for k, v in users.items()}}

    def deliver_webhook(self, payload: Any, *, secret: str | None = None) -> httpx.Response:
        return self.deliver_webhook_raw(json.dumps(payload).encode(), secret=secret)

    def deliver_webhook_raw(self, body: bytes, *, secret: str | None = None,
                            signature: str | None = None) -> httpx.Response:
        sig = signature if signature is not None else signing.base64_sha256(secret or self.consumer_secret, body)
        resp = self.client.post(self.webhook_url, content=body,
                                headers={"Content-Type": "application/json", "x-twitter-webhooks-signature": sig})
        with self._lock:
            self.webhook_statuses.append(resp.status_code)
        return resp

    def crc_check(self) -> bool:
        """X's challenge: GET ?crc_token=…; True when the answer is the expected HMAC."""
        token = uuid.uuid4().hex
        resp = self.client.get(self.webhook_url, params={"crc_token": token})
        expected = signing.base64_sha256(self.consumer_secret, token.encode())
        return resp.status_code == 200 and resp.json().get("response_token") == expected

    def _send_webhooks(self) -> None:
        while True:
            event = self._webhooks.get()
            if event is None:
                return
            with self._lock:
                if self._drop_webhooks:
                    self._drop_webhooks -= 1
                    continue
            try:
                self.deliver_webhook(self.webhook_payload(event))
            except httpx.HTTPError:
                with self._lock:
                    self.webhook_statuses.append(0)

    # ------------------------------------------------------------------ HTTP

    async def _admit(self, request: Request, kind: str, body: bytes = b"") -> dict[str, str]:
        """Injected faults, authentication and rate limits; the rate-limit headers to answer with."""
        with self._lock:
            faults = self._faults.get(kind, [])
            fault = faults.pop(0) if faults else None
            if fault is None and self._chaos is not None:
                rate, kinds, on, rng = self._chaos
                if kind in on and rng.random() < rate:
                    fault = _Fault(429 if rng.choice(kinds) == "429" else 503, 1.0, False, 0.0)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
            fault = None
        with self._lock:
            if fault is not None:
                raise _fault_problem(fault)
            self._authenticate(request, body)
            now = time.time()
            window = self._reads if kind in ("read", "users", "me") else self._sends
            if not window.take(now):
                raise _Problem(429, "Too Many Requests", "Too Many Requests", window.headers())
            headers = window.headers()
            if kind == "send":
                if not self._daily.take(now):
                    raise _Problem(429, "Too Many Requests", "Too Many Requests",
                                   headers | self._daily.headers("x-user-limit-24hour"))
                headers |= self._daily.headers("x-user-limit-24hour")
            return headers

    async def _respond(self, request: Request, kind: str, produce: Any, body: bytes = b"") -> Response:
        try:
            headers = await self._admit(request, kind, body)
            with self._lock:
                data, status = produce()
        except _Problem as exc:
            with self._lock:
                self.requests.append((request.method, request.url.path, exc.status))
            return JSONResponse({"title": exc.title, "detail": exc.detail, "type": "about:blank",
                                 "status": exc.status}, status_code=exc.status, headers=exc.headers)
        with self._lock:
            self.requests.append((request.method, request.url.path, status))
        return JSONResponse(data, status_code=status, headers=headers)

    async def _me(self, request: Request) -> Response:
        return await self._respond(request, "me", lambda: ({"data": dict(self.users[BRAND_ID])}, 200))

    async def _users(self, request: Request) -> Response:
        q = request.query_params
        fields = _fields(q.get("user.fields"), DEFAULT_USER_FIELDS)

        def produce() -> tuple[dict[str, Any], int]:
            ids = [i for i in (q.get("ids") or "").split(",") if i]
            if not ids or len(ids) > 100:
                raise _Problem(400, "Invalid Request", "The `ids` query parameter value must have 1 to 100 ids")
            found = [_pick(self.users[i], fields) for i in ids if i in self.users]
            return {"data": found}, 200

        return await self._respond(request, "users", produce)

    async def _dm_events(self, request: Request) -> Response:
        q = request.query_params

        def produce() -> tuple[dict[str, Any], int]:
            try:
                max_results = int(q.get("max_results") or 100)
            except ValueError:
                max_results = 0
            if not 1 <= max_results <= 100:
                raise _Problem(400, "Invalid Request", "The `max_results` query parameter value is not between "
                                                       "1 and 100")
            types = set((q.get("event_types") or "MessageCreate,ParticipantsJoin,ParticipantsLeave").split(","))
            ordered = [e for e in reversed(self._events) if e["event_type"] in types]
            conversation = request.path_params.get("conversation")
            if conversation:
                ordered = [e for e in ordered if e["dm_conversation_id"] == conversation]
            token = q.get("pagination_token")
            if token:
                before = _decode_token(token)
                if before is None:
                    raise _Problem(400, "Invalid Request", "The `pagination_token` query parameter value is invalid")
                ordered = [e for e in ordered if int(e["id"]) < before]
            page, rest = ordered[:max_results], ordered[max_results:]
            fields = _fields(q.get("dm_event.fields"), DEFAULT_EVENT_FIELDS)
            body: dict[str, Any] = {"data": [_pick(e, fields) for e in page],
                                    "meta": {"result_count": len(page)}}
            if not page:
                body.pop("data")
            if rest:
                body["meta"]["next_token"] = _encode_token(int(page[-1]["id"]))
            if "sender_id" in (q.get("expansions") or "").split(","):
                ufields = _fields(q.get("user.fields"), DEFAULT_USER_FIELDS)
                senders = dict.fromkeys(e["sender_id"] for e in page)
                users = [_pick(self.users[s], ufields) for s in senders if s in self.users]
                if users:
                    body["includes"] = {"users": users}
            return body, 200

        return await self._respond(request, "read", produce)

    async def _send_in(self, request: Request) -> Response:
        conversation = request.path_params["conversation"]
        raw = await request.body()
        return await self._respond(request, "send", lambda: self._send(conversation, raw), raw)

    async def _send_with(self, request: Request) -> Response:
        participant = request.path_params["participant"]
        raw = await request.body()
        return await self._respond(request, "send",
                                   lambda: self._send(_conversation_id(participant, BRAND_ID), raw), raw)

    def _send(self, conversation: str, raw: bytes) -> tuple[dict[str, Any], int]:
        try:
            body = json.loads(raw or b"{}")
        except ValueError as exc:
            raise _Problem(400, "Invalid Request", "The request body is not valid JSON") from exc
        if not isinstance(body, dict) or set(body) - {"text", "attachments"}:
            raise _Problem(400, "Invalid Request", "The request body has unknown fields")
        text = body.get("text")
        if not body.get("attachments") and (not isinstance(text, str) or not text):
            raise _Problem(400, "Invalid Request", "One of text or attachments is required")
        if isinstance(text, str) and len(text) > MAX_TEXT:
            raise _Problem(400, "Invalid Request", f"text must be at most {MAX_TEXT} characters")
        parts = conversation.split("-")
        if len(parts) != 2 or BRAND_ID not in parts:
            raise _Problem(404, "Not Found Error", "Could not find the conversation")
        other = parts[0] if parts[1] == BRAND_ID else parts[1]
        if other not in self.users:
            raise _Problem(404, "Not Found Error", "Could not find the recipient")
        if not self.accepts_dms.get(other, True):
            raise _Problem(403, "Forbidden", NOT_PERMITTED)
        event_id = self._append(BRAND_ID, conversation, text or "", via_api=True)
        return {"data": {"dm_conversation_id": conversation, "dm_event_id": event_id}}, 201

    # ------------------------------------------------------------------ authentication

    def _authenticate(self, request: Request, body: bytes) -> None:
        auth = request.headers.get("authorization", "")
        if self.revoked:
            raise _Problem(401, "Unauthorized", "Unauthorized")
        if auth.startswith("Bearer "):
            if auth[7:] == self.user_bearer_token:
                return
            raise _Problem(401, "Unauthorized", "Unauthorized")
        if not auth.startswith("OAuth "):
            raise _Problem(401, "Unauthorized", "Unauthorized")
        oauth = dict(oauth_sig.collect_parameters(headers={"Authorization": auth}, exclude_oauth_signature=False,
                                                  with_realm=False))
        if oauth.get("oauth_consumer_key") != self.consumer_key or oauth.get("oauth_token") != self.access_token:
            raise _Problem(401, "Unauthorized", "Unauthorized")
        form = body if request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded") else None
        params = oauth_sig.collect_parameters(uri_query=request.url.query, body=form,
                                              headers={"Authorization": auth}, exclude_oauth_signature=True,
                                              with_realm=False)
        uri = oauth_sig.base_string_uri(f"{request.url.scheme}://{request.headers.get('host')}{request.url.path}")
        base = oauth_sig.signature_base_string(request.method.upper(), uri, oauth_sig.normalize_parameters(params))
        signer = SimpleNamespace(client_secret=self.consumer_secret, resource_owner_secret=self.access_token_secret)
        expected = oauth_sig.sign_hmac_sha1_with_client(base, signer)
        if not oauth_sig.safe_string_equals(expected, oauth.get("oauth_signature", "")):
            raise _Problem(401, "Unauthorized", "Unauthorized")


def _fault_problem(fault: _Fault) -> _Problem:
    reset = str(int(time.time() + fault.reset_in))
    if fault.status == 429:
        headers = {"x-rate-limit-limit": "15", "x-rate-limit-remaining": "0", "x-rate-limit-reset": reset}
        if fault.daily:
            headers |= {"x-user-limit-24hour-limit": "1440", "x-user-limit-24hour-remaining": "0",
                        "x-user-limit-24hour-reset": reset, "x-rate-limit-remaining": "14"}
        return _Problem(429, "Too Many Requests", "Too Many Requests", headers)
    if fault.status == 401:
        return _Problem(401, "Unauthorized", "Unauthorized")
    if fault.status == 403:
        return _Problem(403, "Forbidden", NOT_PERMITTED)
    return _Problem(fault.status, "Service Unavailable" if fault.status == 503 else "Server Error",
                    "Service Unavailable" if fault.status == 503 else "Internal Error")


def _conversation_id(a: str, b: str) -> str:
    low, high = sorted((a, b), key=int)
    return f"{low}-{high}"


def _fields(requested: str | None, default: tuple[str, ...]) -> set[str]:
    return set(default) | {f for f in (requested or "").split(",") if f}


def _pick(obj: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k in fields}


def _encode_token(event_id: int) -> str:
    return base64.b32encode(f"older:{event_id}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> int | None:
    try:
        raw = base64.b32decode(token + "=" * (-len(token) % 8)).decode()
        return int(raw.removeprefix("older:")) if raw.startswith("older:") else None
    except (ValueError, UnicodeDecodeError):
        return None
