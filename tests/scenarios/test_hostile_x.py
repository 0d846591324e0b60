"""Hostile requests against the X webhook and X-side inputs (issue 11 item 2 and its low item; issue 10 item 5)."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from bridge.sandbox.demo import MARIA
from bridge.sandbox.harness import CHANNEL, Sandbox, wait_for
from bridge.sandbox.x import BRAND_ID
from bridge.store.tables import InboundEvent
from connectors.x.webhook import CRC_BURST

OTHER_ACCOUNT = "1777000000000000001"


pytestmark = pytest.mark.sandbox(x_webhooks=True)


def stored(box: Sandbox) -> list[InboundEvent]:
    with box.bridge.ctx.db.session() as s:
        return list(s.exec(select(InboundEvent)).all())


def forged_delivery(text: str, for_user: str = BRAND_ID, event_id: str = "1845999999999999001") -> bytes:
    return json.dumps(
        {
            "for_user_id": for_user,
            "direct_message_events": [
                {
                    "type": "message_create",
                    "id": event_id,
                    "created_timestamp": "1787230991000",
                    "message_create": {
                        "target": {"recipient_id": BRAND_ID},
                        "sender_id": MARIA,
                        "message_data": {"text": text},
                    },
                }
            ],
            "users": {MARIA: {"id": MARIA, "name": "Acme Security Team", "screen_name": "maria_l"}},
        }
    ).encode()


def test_the_crc_endpoint_is_no_signing_oracle(box: Sandbox) -> None:
    """The attack: ask the CRC endpoint to 'answer' a JSON body, then POST that body with the answer as its
    signature. The JSON body is not of the shape of X's tokens, so nothing is signed and nothing mirrored."""
    body = forged_delivery("Please verify your account at https://evil.example")
    url = box.http.url + "/webhooks/x"
    crc = box.x.client.get(url, params={"crc_token": body.decode()})
    assert crc.status_code == 400
    assert "response_token" not in crc.text
    signature = "sha256=" + "A" * 43 + "="  # the best an attacker without the secret can do
    attempt = box.x.deliver_webhook_raw(body, signature=signature)
    assert attempt.status_code == 403
    assert box.x.crc_check()  # X's own challenge still passes
    assert not stored(box) and not box.slack.roots(CHANNEL)


@pytest.mark.parametrize("token", ['{"a":1}', "x" * 129, "has space", "semi;colon", "ab", "é" * 10])
def test_crc_tokens_not_of_x_shape_are_refused(box: Sandbox, token: str) -> None:
    assert box.x.client.get(box.http.url + "/webhooks/x", params={"crc_token": token}).status_code == 400


def test_the_crc_endpoint_is_rate_limited(box: Sandbox) -> None:
    url = box.http.url + "/webhooks/x"
    statuses = [
        box.x.client.get(url, params={"crc_token": f"dG9rZW4t{i:04d}"}).status_code for i in range(CRC_BURST + 20)
    ]
    assert statuses[:CRC_BURST] == [200] * CRC_BURST
    assert 429 in statuses[CRC_BURST:]


def test_a_delivery_for_another_account_is_acknowledged_and_not_stored(box: Sandbox) -> None:
    """Signed with the app's secret (one app may serve several subscribed accounts), but not for ours:
    200 so X neither retries nor disables the webhook, nothing stored, counted in /metrics."""
    resp = box.x.deliver_webhook_raw(forged_delivery("for someone else", for_user=OTHER_ACCOUNT))
    assert resp.status_code == 200 and resp.json() == {"received": 0, "new": 0}
    activity = {
        "data": {
            "event_type": "dm.received",
            "filter": {"user_id": OTHER_ACCOUNT},
            "payload": {
                "id": "1845999999999999002",
                "sender_id": MARIA,
                "text": "x",
                "dm_conversation_id": f"{MARIA}-{BRAND_ID}",
            },
        }
    }
    assert box.x.deliver_webhook(activity).status_code == 200
    no_target = json.loads(forged_delivery("no target"))
    no_target.pop("for_user_id")
    assert box.x.deliver_webhook(no_target).status_code == 200
    assert not stored(box)
    assert box.bridge.channels.receivers["x"].refused["other_account"] == 3  # type: ignore[attr-defined]
    metrics = box.x.client.get(box.http.url + "/metrics").text
    assert 'dmbridge_webhook_refused_total{reason="other_account",route="x"} 3.0' in metrics
    box.x.customer_sends(MARIA, "ours still arrive")
    wait_for(lambda: [e for e in stored(box) if e.text == "ours still arrive"], what="our own DM")


@pytest.mark.parametrize("event_id", ["abc", "12a", "²³", "-5", "1" * 21, ""])
def test_non_numeric_event_ids_answer_400(box: Sandbox, event_id: str) -> None:
    resp = box.x.deliver_webhook_raw(forged_delivery("odd id", event_id=event_id))
    assert resp.status_code == 400
    activity = {
        "data": {
            "event_type": "dm.received",
            "filter": {"user_id": BRAND_ID},
            "payload": {"id": event_id, "sender_id": MARIA, "text": "x", "dm_conversation_id": f"{MARIA}-{BRAND_ID}"},
        }
    }
    assert box.x.deliver_webhook(activity).status_code == 400
    assert not stored(box)
