"""Hostile requests at the HTTP edge (Socket Mode door, unparsable and slow bodies, Meta ids, generic timestamps):
each case with its outcome, nothing stored, nothing relayed. One row per attack, as in test_hostile.py."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select

from bridge.sandbox.demo import MARIA, SAM
from bridge.sandbox.harness import (
    CHANNEL,
    MESSENGER_CUSTOMER,
    PAGE_ID,
    SIGNING_SECRET,
    Sandbox,
    wait_for,
)
from bridge.store.tables import InboundEvent, Outbox, SlackEvent
from connectors.signing import base64_sha256, hex_sha256
from tests.scenarios.helpers import BoxFactory, customer_posts, thread_with

DEEP = b'{"a":' * 60_000 + b"1" + b"}" * 60_000  # ~360 KB, far below the size limit; json recursion fails
BOXES: dict[str, dict[str, Any]] = {
    "http": dict(meta=True, generic=True, x_webhooks=True, dmbridge_body_seconds=1.0),
    "socket": dict(slack_app_token="xapp-sandbox", slack_signing_secret=""),
    "stamped": dict(generic=True, generic_signed_timestamp=True),
}


def _counts(box: Sandbox) -> tuple[int, int, int]:
    with box.bridge.ctx.db.read() as s:
        return (
            s.exec(select(func.count()).select_from(SlackEvent)).one(),
            s.exec(select(func.count()).select_from(Outbox)).one(),
            s.exec(select(func.count()).select_from(InboundEvent)).one(),
        )


def _reply_envelope(ts: str, text: str = "relay this") -> bytes:
    event = {
        "type": "message",
        "user": SAM,
        "text": text,
        "ts": "1999999999.000100",
        "thread_ts": ts,
        "channel": CHANNEL,
    }
    return json.dumps(
        {
            "type": "event_callback",
            "team_id": "T0SANDBOX",
            "api_app_id": "A0BRIDGE",
            "event_id": "EvEDGE1",
            "event_time": int(time.time()),
            "event": event,
        }
    ).encode()


def _to_slack(box: Sandbox, body: bytes, *, signed: bool, content_type: str = "application/json") -> httpx.Response:
    headers = box.slack.sign(body, secret=SIGNING_SECRET) if signed else {}
    return box.slack.send_raw(body, headers, content_type, target=box.http.url + "/slack/events")


def _slash(text: str) -> bytes:
    return urllib.parse.urlencode(
        {
            "command": "/dm",
            "text": text,
            "user_id": SAM,
            "channel_id": CHANNEL,
            "team_id": "T0SANDBOX",
            "response_url": "http://127.0.0.1:9/r",
            "trigger_id": "1.2.3",
        }
    ).encode()


def _meta_event(sender: Any) -> dict[str, Any]:
    return {
        "sender": {"id": sender},
        "recipient": {"id": PAGE_ID},
        "timestamp": int(time.time() * 1000),
        "message": {"mid": "m_hostile_1", "text": "hello"},
    }


def _generic(box: Sandbox, body: bytes, headers: dict[str, str]) -> httpx.Response:
    assert box.generic is not None
    return httpx.post(box.generic.webhook_url, content=body, headers={"Content-Type": "application/json", **headers})


def _generic_message(box: Sandbox) -> bytes:
    assert box.generic is not None
    return json.dumps(box.generic.message("chat-h", "visitor-h", "Eve", "replayed")).encode()


def _stamped(box: Sandbox, *, stamp: int, signed_stamp: int | None = None, body_only: bool = False) -> httpx.Response:
    assert box.generic is not None
    body = _generic_message(box)
    base = body if body_only else f"{stamp if signed_stamp is None else signed_stamp}.".encode() + body
    return _generic(
        box, body, {"X-Dmbridge-Timestamp": str(stamp), "X-Dmbridge-Signature": hex_sha256(box.generic.secret, base)}
    )


def _slow_body(box: Sandbox, path: str) -> httpx.Response:
    """Headers at once, then the declared 400-byte body one byte every 50 ms (20 s in all)."""
    sock = socket.create_connection(("127.0.0.1", box.http.port))
    sock.settimeout(60)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: 400\r\n\r\n".encode()
    )
    answered = threading.Event()

    def drip() -> None:
        for _ in range(400):
            if answered.wait(0.05):
                return
            try:
                sock.send(b" ")
            except OSError:
                return

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        head = sock.recv(4096)
    finally:
        answered.set()
        dripper.join(timeout=5)
        sock.close()
    return httpx.Response(int(head.split(b" ", 2)[1]))


@dataclass(frozen=True)
class Case:
    name: str
    box: str
    send: Callable[[Sandbox, str], httpx.Response]
    status: int


CASES = [
    # Socket Mode: the HTTP route does not exist, signed or not
    Case(
        "socket mode: unsigned agent reply on /slack/events",
        "socket",
        lambda b, ts: _to_slack(b, _reply_envelope(ts), signed=False),
        404,
    ),
    Case(
        "socket mode: signed agent reply on /slack/events",
        "socket",
        lambda b, ts: _to_slack(b, _reply_envelope(ts), signed=True),
        404,
    ),
    Case(
        "socket mode: unsigned /dm list all",
        "socket",
        lambda b, ts: _to_slack(b, _slash("list all"), signed=False, content_type="application/x-www-form-urlencoded"),
        404,
    ),
    # unparsable bodies: 400 on every route, never a 500 with a traceback
    Case("deeply nested JSON, unsigned, /slack/events", "http", lambda b, ts: _to_slack(b, DEEP, signed=False), 400),
    Case("deeply nested JSON, signed, /slack/events", "http", lambda b, ts: _to_slack(b, DEEP, signed=True), 400),
    Case(
        "deeply nested JSON in an interactivity payload, signed",
        "http",
        lambda b, ts: _to_slack(
            b,
            b"payload=" + urllib.parse.quote(DEEP.decode()).encode(),
            signed=True,
            content_type="application/x-www-form-urlencoded",
        ),
        400,
    ),
    Case(
        "deeply nested JSON with a bot_id, signed (echo fast path)",
        "http",
        lambda b, ts: _to_slack(b, b'{"bot_id":' + DEEP + b"}", signed=True),
        400,
    ),
    Case(
        "deeply nested JSON, signed, /webhooks/meta",
        "http",
        lambda b, ts: b.meta.deliver_raw(DEEP),  # type: ignore[union-attr]
        400,
    ),
    Case(
        "deeply nested JSON, signed, /webhooks/x",
        "http",
        lambda b, ts: b.x.deliver_webhook_raw(DEEP, signature=base64_sha256(b.x.consumer_secret, DEEP)),
        400,
    ),
    Case("deeply nested JSON, signed, /webhooks/generic", "http", lambda b, ts: b.generic.post_raw(DEEP), 400),  # type: ignore[union-attr]
    # slow bodies: a deadline on the whole body
    Case(
        "body a byte every 50 ms, /webhooks/generic", "http", lambda b, ts: _slow_body(b, "/webhooks/generic/shop"), 408
    ),
    Case("body a byte every 50 ms, /slack/events", "http", lambda b, ts: _slow_body(b, "/slack/events"), 408),
    # Meta ids become Graph URL paths: digits only
    Case(
        "Meta sender id with a path",
        "http",
        lambda b, ts: b.meta.deliver_events([(PAGE_ID, _meta_event("../../me/accounts"))]),
        400,
    ),  # type: ignore[union-attr]
    Case(
        "Meta sender id with a query",
        "http",
        lambda b, ts: b.meta.deliver_events([(PAGE_ID, _meta_event("1?fields=access_token"))]),
        400,
    ),  # type: ignore[union-attr]
    Case("Meta sender id true", "http", lambda b, ts: b.meta.deliver_events([(PAGE_ID, _meta_event(True))]), 400),  # type: ignore[union-attr]
    # generic signed timestamps (opt-in per source)
    Case(
        "generic timestamp 6 min old, correctly signed",
        "stamped",
        lambda b, ts: _stamped(b, stamp=int(time.time()) - 360),
        403,
    ),
    Case(
        "generic timestamp 6 min ahead, correctly signed",
        "stamped",
        lambda b, ts: _stamped(b, stamp=int(time.time()) + 360),
        403,
    ),
    Case(
        "generic old signature with a fresh timestamp header",
        "stamped",
        lambda b, ts: _stamped(b, stamp=int(time.time()), signed_stamp=int(time.time()) - 3600),
        403,
    ),
    Case(
        "generic signature over the body alone",
        "stamped",
        lambda b, ts: _stamped(b, stamp=int(time.time()), body_only=True),
        403,
    ),
    Case(
        "generic timestamp missing",
        "stamped",
        lambda b, ts: _generic(
            b,
            _generic_message(b),
            {
                "X-Dmbridge-Signature": hex_sha256(
                    b.generic.secret,  # type: ignore[union-attr]
                    _generic_message(b),
                )
            },
        ),
        403,
    ),
    Case(
        "generic timestamp not a number",
        "stamped",
        lambda b, ts: _generic(
            b, _generic_message(b), {"X-Dmbridge-Timestamp": "1e9", "X-Dmbridge-Signature": "sha256=00"}
        ),
        403,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_edge_request(case: Case, make_box: BoxFactory) -> None:
    box = make_box(**BOXES[case.box])
    if case.box == "socket":
        wait_for(box.slack.socket.connected, what="the Socket Mode connection")
    box.x.customer_sends(MARIA, "hello")
    ts = thread_with(box, "hello")
    wait_for(lambda: customer_posts(box, ts), what="the mirrored message")
    before = _counts(box)
    posts_before = len(box.slack.calls("chat.postMessage"))
    response = case.send(box, ts)
    assert response.status_code == case.status
    assert "Traceback" not in response.text
    # what a stored row would have led to: a relay to the customer or a post; the loops are woken by a store
    box.bridge.ctx.wake_events.set()
    box.bridge.ctx.wake_platform.set()
    assert _counts(box) == before
    assert len(box.slack.calls("chat.postMessage")) == posts_before
    assert box.x.received_by(MARIA) == []
    if box.meta is not None:
        assert box.meta.received_by(MESSENGER_CUSTOMER) == []
        assert box.meta.profile_requests == []
    if box.generic is not None:
        assert box.generic.deliveries == []
