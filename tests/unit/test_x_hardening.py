"""The X webhook's CRC shape, pacing and account checks, and the users lookup in chunks of 100 (pure)."""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.domain import Batch
from bridge.errors import BadPayload
from connectors.base import WebhookReply, WebhookRequest
from connectors.signing import base64_sha256
from connectors.x.convert import chunks, numeric
from connectors.x.webhook import CRC_BURST, CRC_PER_SECOND, XWebhook, crc_token_ok, delivery_for

ME = "1460987654321098752"


class _Connector:
    user_id, account = ME, "acme_help"


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def hook(clock: _Clock | None = None) -> XWebhook:
    return XWebhook(_Connector(), "cs", clock=clock or _Clock())  # type: ignore[arg-type]


def get(token: str, client: str = "203.0.113.7") -> WebhookRequest:
    return WebhookRequest(method="GET", query={"crc_token": token}, headers={}, body=b"", client=client)


def post(payload: Any) -> WebhookRequest:
    body = json.dumps(payload).encode()
    return WebhookRequest(
        method="POST", query={}, headers={"x-twitter-webhooks-signature": base64_sha256("cs", body)}, body=body
    )


def test_x_shaped_tokens_are_answered() -> None:
    token = base64.b64encode(str(uuid.uuid4()).encode()).decode()  # what X sends: 48 characters
    assert crc_token_ok(token)
    reply = hook().handle_webhook(get(token))
    assert isinstance(reply, WebhookReply) and reply.status == 200


@given(st.text(max_size=300))
def test_nothing_answered_can_be_a_json_object(token: str) -> None:
    """The oracle is closed: an answered token never parses as the JSON object a delivery must be."""
    if crc_token_ok(token):
        with contextlib.suppress(ValueError):
            assert not isinstance(json.loads(token), dict)
    else:
        with pytest.raises(BadPayload):
            hook().handle_webhook(get(token))


def test_crc_pacing_per_peer_with_an_injected_clock() -> None:
    clock = _Clock()
    webhook = hook(clock)
    token = "dG9rZW4tdG9rZW4="
    assert [webhook.handle_webhook(get(token)).status for _ in range(CRC_BURST)] == [200] * CRC_BURST  # type: ignore[union-attr]
    assert webhook.handle_webhook(get(token)).status == 429  # type: ignore[union-attr]
    assert webhook.handle_webhook(get(token, client="198.51.100.2")).status == 200  # type: ignore[union-attr]
    clock.now += 1 / CRC_PER_SECOND
    assert webhook.handle_webhook(get(token)).status == 200  # type: ignore[union-attr]
    assert webhook.refused["crc_rate"] == 1


def dm(for_user: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "direct_message_events": [
            {
                "type": "message_create",
                "id": "1845123456789012481",
                "created_timestamp": "1787230991000",
                "message_create": {
                    "target": {"recipient_id": ME},
                    "sender_id": "1290011223344556677",
                    "message_data": {"text": "hi"},
                },
            }
        ]
    }
    if for_user is not None:
        body["for_user_id"] = for_user
    return body


def test_deliveries_are_stored_only_for_our_account() -> None:
    webhook = hook()
    ours = webhook.handle_webhook(post(dm(ME)))
    assert isinstance(ours, Batch) and len(ours.messages) == 1
    for other in (
        dm("1777000000000000001"),
        dm(None),
        {
            "data": {
                "event_type": "dm.received",
                "filter": {"user_id": "42"},
                "payload": {"id": "1", "sender_id": "2", "dm_conversation_id": f"2-{ME}"},
            }
        },
    ):
        reply = webhook.handle_webhook(post(other))
        assert isinstance(reply, WebhookReply) and reply.status == 200
    assert webhook.refused["other_account"] == 3


def test_delivery_target_of_both_shapes() -> None:
    assert delivery_for({"for_user_id": ME}) == ME
    assert delivery_for({"data": {"event_type": "dm.sent", "filter": {"user_id": ME}}}) == ME
    assert delivery_for({"data": {"event_type": "dm.sent", "filter": "x"}}) is None
    assert delivery_for({"for_user_id": True}) is None
    assert delivery_for([ME]) is None


@given(st.one_of(st.text(max_size=25), st.integers(), st.none(), st.booleans()))
def test_numeric_ids_are_what_int_reads(value: Any) -> None:
    if numeric(value):
        assert int(str(value)) >= 0 and str(value).isascii()


@given(st.lists(st.text(min_size=1, max_size=3), max_size=350), st.integers(min_value=1, max_value=120))
def test_chunks_keep_every_item_in_order_within_the_size(items: list[str], size: int) -> None:
    parts = chunks(items, size)
    assert [i for p in parts for i in p] == items
    assert all(1 <= len(p) <= size for p in parts)
