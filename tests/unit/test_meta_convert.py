from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.domain import Platform
from bridge.errors import AuthFailed, BadPayload, Rejected, RetryLater
from bridge.text import utf8_len
from bridge.thread_messages import platform_parts
from connectors.meta.convert import (
    LIMITS,
    Closed,
    HumanAgent,
    Response,
    customer_from_profile,
    error_for,
    parse,
    send_body,
    send_window,
)
from connectors.meta.webhook import challenge, check_signature
from connectors.signing import hex_sha256

PAGE, USER, OUR_APP = "104729384756102", "7361522908877213", "940051237712345"
HOUR = 3600.0


def event(text: str = "hi", mid: str = "m_1", ts: int = 1_787_230_991_000, **message: Any) -> dict[str, Any]:
    return {
        "sender": {"id": USER},
        "recipient": {"id": PAGE},
        "timestamp": ts,
        "message": {"mid": mid, "text": text, **message},
    }


def echo(mid: str, app_id: int, text: str = "from the page") -> dict[str, Any]:
    return {
        "sender": {"id": PAGE},
        "recipient": {"id": USER},
        "timestamp": 1_787_230_999_000,
        "message": {"mid": mid, "text": text, "is_echo": True, "app_id": app_id},
    }


def payload(*events: dict[str, Any], obj: str = "page") -> dict[str, Any]:
    return {"object": obj, "entry": [{"id": PAGE, "time": 1, "messaging": list(events)}]}


def test_customer_message_becomes_a_domain_message() -> None:
    (msg,) = parse(
        payload(event("Where is it?", attachments=[{"type": "image", "payload": {"url": "https://i"}}])), OUR_APP
    )
    assert (msg.platform, msg.account, msg.conversation, msg.remote_id) == (Platform.MESSENGER, PAGE, USER, "m_1")
    assert msg.text == "Where is it?" and msg.attachments == ()
    assert [(f.id, f.url, f.kind, f.name) for f in msg.files] == [("m_1:0", "https://i", "image", "image.jpg")]
    assert msg.needs_profile and not msg.from_brand and msg.customer.id == USER
    assert msg.sent_at.timestamp() == 1_787_230_991


def test_instagram_object_and_ordering_across_entries() -> None:
    body = {
        "object": "instagram",
        "entry": [
            {"id": "1784", "messaging": [event("later", "m_b", ts=2_000)]},
            {"id": "1784", "messaging": [event("earlier", "m_a", ts=1_000)]},
        ],
    }
    assert [(m.platform, m.text) for m in parse(body, None)] == [
        (Platform.INSTAGRAM, "earlier"),
        (Platform.INSTAGRAM, "later"),
    ]


def test_our_echo_is_dropped_and_other_apps_echoes_are_from_the_brand() -> None:
    msgs = parse(payload(echo("m_ours", int(OUR_APP)), echo("m_suite", 263902037430900)), OUR_APP)
    assert [(m.remote_id, m.from_brand, m.conversation, m.needs_profile) for m in msgs] == [
        ("m_suite", True, USER, False)
    ]
    # before our app id is known, echoes go to the core, which checks sent_message
    assert len(parse(payload(echo("m_ours", int(OUR_APP))), None)) == 1


def test_reads_deliveries_and_deleted_messages_give_nothing() -> None:
    read = {"sender": {"id": USER}, "recipient": {"id": PAGE}, "timestamp": 1, "read": {"watermark": 1}}
    assert parse(payload(read, event(is_deleted=True)), OUR_APP) == []


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {"object": "user"},
        {"object": "page"},
        {"object": "page", "entry": {}},
        {"object": "page", "entry": [{"messaging": []}]},
        {"object": "page", "entry": [{"id": PAGE, "messaging": {}}]},
        {"object": "page", "entry": [{"id": PAGE, "messaging": ["x"]}]},
        payload({"sender": {"id": USER}, "recipient": {"id": PAGE}, "timestamp": 1, "message": {"text": "no mid"}}),
        payload({"recipient": {"id": PAGE}, "timestamp": 1, "message": {"mid": "m"}}),
        payload(event(ts="yesterday")),  # type: ignore[arg-type]
    ],
)
def test_malformed_deliveries_are_refused(body: Any) -> None:
    with pytest.raises(BadPayload) as err:
        parse(body, OUR_APP)
    assert err.value.status == 400


@given(st.binary(max_size=300), st.binary(min_size=1, max_size=8))
def test_signature_covers_every_byte(body: bytes, tamper: bytes) -> None:
    good = hex_sha256("app-secret", body)
    check_signature(body, good, "app-secret")
    for forged in (body + tamper, tamper + body):
        with pytest.raises(BadPayload):
            check_signature(forged, good, "app-secret")
    for header in (None, "", good.upper(), hex_sha256("other", body)):
        with pytest.raises(BadPayload):
            check_signature(body, header, "app-secret")


def test_verification_challenge() -> None:
    ok = {"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "42"}
    assert challenge(ok, "tok") == "42"
    for bad in (dict(ok, **{"hub.verify_token": "nope"}), dict(ok, **{"hub.mode": "x"}), {"hub.challenge": "1"}):
        with pytest.raises(BadPayload):
            challenge(bad, "tok")


@given(st.floats(min_value=0, max_value=40 * 24 * HOUR), st.sampled_from([0.0, 1.0, 7.0]))
def test_window_decision(age: float, days: float) -> None:
    now = 2_000_000_000.0
    window = send_window(Platform.MESSENGER, now - age, now, days)
    if age < 24 * HOUR:
        assert window == Response()
    elif age < days * 24 * HOUR:
        assert window == HumanAgent()
    else:
        assert isinstance(window, Closed) and "24 hours" in window.reason


def test_window_wording_and_no_customer_message() -> None:
    closed = send_window(Platform.INSTAGRAM, 0.0, 9 * 24 * HOUR, 7)
    assert isinstance(closed, Closed)
    assert "Instagram" in closed.reason and "7 days for a human agent" in closed.reason
    assert "9 days ago" in closed.reason
    off = send_window(Platform.INSTAGRAM, 0.0, 30 * HOUR, 0)
    assert isinstance(off, Closed) and "extension is off" in off.reason and "30 hours ago" in off.reason
    assert isinstance(send_window(Platform.MESSENGER, None, 0.0, 7), Closed)


def test_send_bodies() -> None:
    assert send_body(USER, "hi", Response()) == {
        "recipient": {"id": USER},
        "message": {"text": "hi"},
        "messaging_type": "RESPONSE",
    }
    tagged = send_body(USER, "hi", HumanAgent())
    assert (tagged["messaging_type"], tagged["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")


def err(code: int, sub: int | None = None, status: int = 400, **extra: Any) -> bytes:
    e: dict[str, Any] = {"message": "boom", "code": code, **extra}
    if sub is not None:
        e["error_subcode"] = sub
    return json.dumps({"error": e}).encode()


def test_error_codes_map_to_reasons() -> None:
    m = Platform.MESSENGER
    window = error_for(m, 400, err(10, 2018278), {}, 0)
    assert isinstance(window, Rejected) and "messaging window" in window.reason
    gone = error_for(m, 400, err(551, 1545041), {}, 0)
    assert isinstance(gone, Rejected) and "isn't available" in gone.reason
    assert isinstance(error_for(m, 400, err(190), {}, 0), AuthFailed)
    limited = error_for(m, 429, err(613), {"retry-after": "30"}, 100.0)
    assert isinstance(limited, RetryLater) and limited.rate_limited and limited.retry_at == 130.0
    usage = {
        "x-business-use-case-usage": json.dumps({PAGE: [{"type": "messenger", "estimated_time_to_regain_access": 5}]})
    }
    bucket = error_for(m, 400, err(32), usage, 100.0)
    assert isinstance(bucket, RetryLater) and bucket.retry_at == 400.0
    assert isinstance(error_for(m, 500, b"<html>", {}, 0), RetryLater)
    assert isinstance(error_for(m, 400, err(2, is_transient=True), {}, 0), RetryLater)
    other = error_for(Platform.INSTAGRAM, 400, err(100), {}, 0)
    assert isinstance(other, Rejected) and other.reason.startswith("Instagram refused the message")


def test_profiles() -> None:
    lena = customer_from_profile(
        Platform.MESSENGER, USER, {"first_name": "Lena", "last_name": "Fischer", "profile_pic": "https://p"}
    )
    assert (lena.name, lena.avatar_url, lena.handle) == ("Lena Fischer", "https://p", None)
    ig = customer_from_profile(Platform.INSTAGRAM, "1785", {"username": "tomas.rz"})
    assert (ig.name, ig.profile_url) == ("@tomas.rz", "https://www.instagram.com/tomas.rz")
    assert customer_from_profile(Platform.MESSENGER, USER, {}).name == USER


@given(
    st.lists(st.sampled_from(["a", " ", "\n", "é", "💙", "👍🏽", "🇩🇪", "字"]), min_size=1, max_size=1500).map("".join)
)
def test_instagram_parts_fit_1000_bytes_and_lose_nothing(text: str) -> None:
    parts = platform_parts(text, LIMITS[Platform.INSTAGRAM])
    assert all(sum(utf8_len(c) for c in p) <= 1000 for p in parts)
    assert "".join(parts).split() == text.strip().split()
    assert all(len(p) <= 2000 for p in platform_parts(text * 2, LIMITS[Platform.MESSENGER]))
