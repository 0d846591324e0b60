"""X with webhooks on: CRC, signed Account Activity / X Activity deliveries, and the slow reconciliation poll."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlmodel import select

from bridge.inbound import ECHO_GRACE_SECONDS
from bridge.sandbox.demo import JDOE, MARIA, SAM
from bridge.sandbox.harness import CHANNEL, Sandbox, shown, wait_for
from bridge.store.tables import InboundEvent, Outbox
from connectors.signing import base64_sha256
from tests.scenarios.helpers import BoxFactory, loops_ran, polls_ran, thread_with, wait_settled

pytestmark = pytest.mark.sandbox(x_webhooks=True)


def reads(box: Sandbox) -> int:
    return sum(1 for method, path, _ in box.x.requests if method == "GET" and path == "/2/dm_events")


def stored(box: Sandbox) -> list[InboundEvent]:
    with box.bridge.ctx.db.session() as s:
        return list(s.exec(select(InboundEvent)).all())


def test_crc_challenge(box: Sandbox) -> None:
    assert box.x.crc_check()
    assert box.x.client.get(box.http.url + "/webhooks/x").status_code == 400


@pytest.mark.parametrize("fmt", ["account_activity", "activity"])
def test_dms_arrive_by_webhook_and_polling_is_only_reconciliation(box: Sandbox, fmt: str) -> None:
    box.x.webhook_format = fmt
    box.x.customer_sends(MARIA, "pushed, not polled")
    ts = thread_with(box, "pushed, not polled")
    card = shown(box.slack.thread(CHANNEL, ts)[0])
    assert "Maria López" in card and "@maria_l" in card
    assert reads(box) == 1  # the start-up poll only: the next pass is X_RECONCILE_SECONDS away
    reply_ts, _ = box.slack.post_as_user(SAM, CHANNEL, "Answer from Slack", thread_ts=ts)
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, reply_ts), what="✅")
    assert box.x.received_by(MARIA) == ["Answer from Slack"]
    box.x.brand_sends_from_app(MARIA, "typed in the X app")
    post = wait_for(
        lambda: [m for m in box.slack.thread(CHANNEL, ts) if "typed in the X app" in shown(m)],
        what="outside send mirrored",
    )[0]
    assert "outside Slack" in shown(post)
    wait_for(lambda: len(box.x.webhook_statuses) >= 3, what="all three webhooks delivered")
    assert box.x.webhook_statuses == [200, 200, 200]
    # our own send came back by webhook too, possibly before its result was recorded: never mirrored
    wait_settled(box.bridge.ctx.db, timeout=ECHO_GRACE_SECONDS + 15)  # the echo's mirror row waited out its grace
    assert not any("Answer from Slack" in shown(m) for m in box.slack.thread(CHANNEL, ts) if m.get("username"))
    texts = {e.text: e.from_brand for e in stored(box)}
    assert texts.pop("pushed, not polled") is False and texts.pop("typed in the X app") is True
    assert texts in ({}, {"Answer from Slack": True})
    with box.bridge.ctx.db.session() as s:
        results = [r.result for r in s.exec(select(Outbox).where(Outbox.kind == "mirror")).all()]
    assert results.count("our own send: not mirrored") == len(texts)


def test_a_lost_delivery_is_recovered_by_the_reconciliation_poll(make_box: BoxFactory) -> None:
    box = make_box(x_webhooks=True, x_reconcile_seconds=0.5)
    box.x.drop_next_webhooks(1)
    box.x.customer_sends(JDOE, "this webhook was lost")
    thread_with(box, "this webhook was lost")
    box.x.customer_sends(JDOE, "this one was not")
    ts = thread_with(box, "this one was not")
    wait_for(lambda: len(box.x.webhook_statuses) >= 1, what="the second webhook")
    polls_ran(box.x)  # one more reconciliation pass, then its deliveries: nothing doubles
    loops_ran(box, "slack-delivery")
    mirrored = [m for m in box.slack.thread(CHANNEL, ts) if m.get("username")]
    assert [shown(m) for m in mirrored] == ["this webhook was lost", "this one was not"]
    assert len(stored(box)) == 2


def test_bad_signature_replay_malformed_and_oversized(box: Sandbox) -> None:
    event_id = box.x.customer_sends(MARIA, "first")
    ts = thread_with(box, "first")
    event = next(e for e in box.x.events() if e["id"] == event_id)
    payload: dict[str, Any] = box.x.webhook_payload(dict(event, id=str(int(event_id) + 7), text="forged"))
    assert box.x.deliver_webhook(payload, secret="not-the-consumer-secret").status_code == 403
    assert box.x.deliver_webhook_raw(json.dumps(payload).encode(), signature="").status_code == 403
    body = json.dumps(payload).encode()
    assert (
        box.x.deliver_webhook_raw(body + b"\n", signature=base64_sha256(box.x.consumer_secret, body)).status_code == 403
    )
    assert [e.text for e in stored(box)] == ["first"]

    replayed = box.x.webhook_payload(event)
    assert [box.x.deliver_webhook(replayed).status_code for _ in range(3)] == [200, 200, 200]
    loops_ran(box, "slack-delivery")
    assert [e.text for e in stored(box)] == ["first"]
    assert len([m for m in box.slack.thread(CHANNEL, ts) if m.get("username")]) == 1

    for bad in (
        [],
        {"something": "else"},
        {"for_user_id": "1", "direct_message_events": "x"},
        {"for_user_id": "1", "direct_message_events": [{"type": "message_create", "id": "5"}]},
        {"data": {"event_type": "dm.received", "payload": None}},
    ):
        assert box.x.deliver_webhook(bad).status_code == 400, bad
    assert box.x.deliver_webhook_raw(b"\xff not json").status_code == 400
    assert box.x.deliver_webhook_raw(b"{" * (1024 * 1024 + 1)).status_code == 413
    assert box.x.deliver_webhook({"data": {"event_type": "profile.update.bio", "payload": {}}}).status_code == 200
    assert len(stored(box)) == 1
