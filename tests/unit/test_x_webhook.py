from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.errors import BadPayload
from connectors.x.convert import conversation_id, webhook_messages
from connectors.x.webhook import check_signature, crc_response

ME, ACCOUNT, MARIA = "1460987654321098752", "acme_help", "1290011223344556677"


def dm(event_id: str, sender: str, recipient: str, text: str, ms: str = "1787230991000") -> dict[str, Any]:
    return {
        "type": "message_create",
        "id": event_id,
        "created_timestamp": ms,
        "message_create": {
            "target": {"recipient_id": recipient},
            "sender_id": sender,
            "message_data": {"text": text, "attachment": {"type": "media", "media": {"id_str": "77"}}},
        },
    }


AAA = {
    "for_user_id": ME,
    "direct_message_events": [
        dm("1845123456789012482", ME, MARIA, "our answer"),
        dm("1845123456789012481", MARIA, ME, "Hi, my order never arrived"),
    ],
    "users": {
        MARIA: {
            "id": MARIA,
            "name": "Maria López",
            "screen_name": "maria_l",
            "profile_image_url_https": "https://pbs/maria.jpg",
        }
    },
}


@given(st.text(min_size=1, max_size=64))
def test_crc_answer_is_base64_hmac_of_the_token(token: str) -> None:
    expected = base64.b64encode(hmac.new(b"consumer-secret", token.encode(), hashlib.sha256).digest()).decode()
    assert crc_response(token, "consumer-secret") == {"response_token": "sha256=" + expected}


@given(st.binary(max_size=200))
def test_signature_is_checked_on_the_raw_body(body: bytes) -> None:
    good = "sha256=" + base64.b64encode(hmac.new(b"cs", body, hashlib.sha256).digest()).decode()
    check_signature(body, good, "cs")
    for header in (None, "", good[:-2], good.replace("sha256=", "")):
        with pytest.raises(BadPayload):
            check_signature(body, header, "cs")
    with pytest.raises(BadPayload):
        check_signature(body + b"!", good, "cs")


def test_account_activity_delivery() -> None:
    customer, ours = webhook_messages(AAA, me=ME, account=ACCOUNT)
    assert (customer.remote_id, customer.text, customer.from_brand) == (
        "1845123456789012481",
        "Hi, my order never arrived",
        False,
    )
    assert customer.conversation == conversation_id(MARIA, ME) == f"{MARIA}-{ME}"
    assert (customer.customer.name, customer.customer.handle, customer.customer.avatar_url) == (
        "Maria López",
        "maria_l",
        "https://pbs/maria.jpg",
    )
    assert customer.attachments == ("77",) and customer.sent_at.timestamp() == 1_787_230_991
    assert ours.from_brand and ours.customer.id == MARIA


def test_activity_api_envelopes() -> None:
    maria = {"data": {"id": MARIA, "name": "Maria", "username": "maria_l"}}
    received = {
        "data": {
            "event_type": "dm.received",
            "filter": {"user_id": ME},
            "event_uuid": "u",
            "payload": {"direct_message_events": [dm("9", MARIA, ME, "hello")], "users": {MARIA: maria}},
        }
    }
    (msg,) = webhook_messages(received, me=ME, account=ACCOUNT)
    assert (msg.text, msg.customer.handle) == ("hello", "maria_l")
    v2 = {
        "data": {
            "event_type": "dm.sent",
            "payload": {
                "id": "10",
                "sender_id": ME,
                "text": "sent elsewhere",
                "dm_conversation_id": f"{MARIA}-{ME}",
                "created_at": "2026-08-20T10:00:00.000Z",
            },
            "includes": {"users": [{"id": MARIA, "name": "Maria", "username": "maria_l"}]},
        }
    }
    (sent,) = webhook_messages(v2, me=ME, account=ACCOUNT)
    assert sent.from_brand and sent.customer.name == "Maria"
    assert webhook_messages({"data": {"event_type": "dm.read", "payload": {}}}, me=ME, account=ACCOUNT) == []


def test_other_account_activity_events_give_nothing() -> None:
    typing = {"for_user_id": ME, "direct_message_indicate_typing_events": [{"sender_id": MARIA}]}
    assert webhook_messages(typing, me=ME, account=ACCOUNT) == []


@pytest.mark.parametrize(
    "body",
    [
        [],
        "x",
        {"unrelated": 1},
        {"for_user_id": ME, "direct_message_events": {}},
        {"for_user_id": ME, "direct_message_events": [{"type": "message_create", "id": "1"}]},
        {"for_user_id": ME, "direct_message_events": [dm("1", "not-a-number", ME, "x")]},
        {"data": {"event_type": "dm.received", "payload": "x"}},
        {"data": {"event_type": "dm.sent", "payload": {"text": "no ids"}}},
    ],
)
def test_malformed_deliveries_are_refused(body: Any) -> None:
    with pytest.raises(BadPayload):
        webhook_messages(body, me=ME, account=ACCOUNT)
