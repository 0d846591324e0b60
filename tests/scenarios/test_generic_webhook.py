"""A generic source end to end: signed messages in, signed replies to its callback URL through the outbox."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from bridge.sandbox.demo import SAM
from bridge.sandbox.generic import GenericSourceEmulator
from bridge.sandbox.harness import CHANNEL, Sandbox, shown, wait_for
from bridge.store.tables import Conversation, InboundEvent, Outbox, SentMessage
from connectors.signing import hex_sha256
from tests.scenarios.helpers import thread_with

pytestmark = pytest.mark.sandbox(generic=True)


def source(box: Sandbox) -> GenericSourceEmulator:
    assert box.generic is not None
    return box.generic


def stored(box: Sandbox) -> list[InboundEvent]:
    with box.bridge.ctx.db.session() as s:
        return list(s.exec(select(InboundEvent)).all())


def test_message_in_reply_out_signed_and_retried(box: Sandbox) -> None:
    src = source(box)
    resp = src.customer_sends(
        "chat-8812",
        "visitor-42",
        "Ana Costa",
        "Do you deliver on Sundays?",
        handle="ana.c",
        avatar_url="https://cdn.shop.example/ana.png",
        attachments=[(b"%PDF-1.4 receipt", "application/pdf", "receipt.pdf")],
        ttl=0,  # its link (on the sandbox's https CDN) has expired by the time the bridge fetches it
    )
    assert resp.status_code == 200 and resp.json() == {"received": 1, "new": 1}
    assert len(stored(box)) == 1
    ts = thread_with(box, "Do you deliver on Sundays?")
    card = shown(box.slack.thread(CHANNEL, ts)[0])
    assert "Webhook" in card and "Ana Costa" in card
    post = wait_for(lambda: [m for m in box.slack.thread(CHANNEL, ts) if m.get("username")], what="mirror")[0]
    assert post["username"] == "Ana Costa (Webhook)" and post["icon_url"] == "https://cdn.shop.example/ana.png"
    # after one more try, the thread names the file instead of copying it
    note = wait_for(lambda: [m for m in box.slack.thread(CHANNEL, ts) if "receipt.pdf" in shown(m)], what="note")[0]
    assert "could not be copied" in shown(note) and "Ana Costa (Webhook)" in shown(note)

    src.fail_next(503, times=2)
    reply_ts, _ = box.slack.post_as_user(SAM, CHANNEL, "Yes, from 10:00 to 16:00.", thread_ts=ts)
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, reply_ts), timeout=20, what="✅")
    assert src.replies("chat-8812") == ["Yes, from 10:00 to 16:00."]
    assert len(src.deliveries) == 3 and len({d["id"] for d in src.deliveries}) == 1  # one id across retries
    assert src.refused == []
    delivered = src.deliveries[-1]
    assert (delivered["conversation_id"], delivered["recipient_id"], delivered["source"]) == (
        "chat-8812",
        "visitor-42",
        "shop",
    )
    with box.bridge.ctx.db.session() as s:
        conv = s.exec(select(Conversation)).one()
        assert (conv.platform, conv.account, conv.remote_id) == ("generic", "shop", "chat-8812")
        assert s.exec(select(SentMessage)).one().remote_id == "src-" + delivered["id"]
        row = s.exec(select(Outbox).where(Outbox.kind == "dm")).one()
        assert row.state == "sent" and row.attempts == 3


def test_a_refused_reply_is_explained(box: Sandbox) -> None:
    src = source(box)
    src.customer_sends("chat-1", "visitor-1", "Bo", "hello")
    ts = thread_with(box, "hello")
    src.fail_next(422)
    reply_ts, _ = box.slack.post_as_user(SAM, CHANNEL, "hi Bo", thread_ts=ts)
    wait_for(lambda: "warning" in box.slack.reactions(CHANNEL, reply_ts), what="⚠️")
    note = wait_for(
        lambda: [m for m in box.slack.thread(CHANNEL, ts) if "Not delivered" in shown(m)], what="explanation"
    )[0]
    assert "shop refused the reply" in shown(note)


def test_bad_signature_replay_malformed_unknown_and_oversized(box: Sandbox) -> None:
    src = source(box)
    msg = src.message("chat-9", "visitor-9", "Cy", "once only", message_id="m-1")
    body = json.dumps(msg).encode()
    assert src.post(msg, secret="wrong").status_code == 403
    assert src.post_raw(body, signature="").status_code == 403
    assert src.post_raw(body + b" ", signature=hex_sha256(src.secret, body)).status_code == 403
    assert stored(box) == []

    assert [src.post(msg).status_code for _ in range(3)] == [200, 200, 200]
    assert [src.post(msg).json()["new"] for _ in range(2)] == [0, 0]
    assert len(stored(box)) == 1

    bad = [
        {"message_id": "m-2", "sender": {"id": "v", "name": "V"}, "text": "no conversation"},
        dict(msg, message_id="m-3", sender={"id": "v"}),
        dict(msg, message_id="m-4", text="", attachments=[]),
        dict(msg, message_id="m-5", timestamp="yesterday"),
        dict(msg, message_id="m-6", attachments=[{"name": "no url"}]),
        ["not", "an", "object"],
    ]
    for payload in bad:
        assert src.post(payload).status_code == 400, payload
    assert src.post_raw(b"{oops").status_code == 400
    assert src.post_raw(b"x" * (1024 * 1024 + 1)).status_code == 413
    unknown = src.client.post(
        box.http.url + "/webhooks/generic/nobody",
        content=body,
        headers={"X-Dmbridge-Signature": hex_sha256(src.secret, body)},
    )
    assert unknown.status_code == 404
    assert len(stored(box)) == 1
