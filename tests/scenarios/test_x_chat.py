"""X Chat end to end through the real serve path: encrypted DMs in by webhook and reconciliation, encrypted
replies out, key rotation, a message whose signature does not verify, restarts, missing keys, and a customer
who writes by legacy DM and by X Chat in one thread. The emulated customers decrypt with chatxdk themselves."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from bridge.inbound import UNVERIFIED
from bridge.sandbox.demo import JDOE, MARIA, SAM
from bridge.sandbox.harness import CHANNEL, Sandbox, shown, wait_for
from bridge.sandbox.x_chat import chat_delivery
from bridge.store.tables import Conversation, InboundEvent, XChatEvent, XChatIdentity
from tests.scenarios.helpers import BoxFactory, customer_posts, thread_with

pytestmark = pytest.mark.sandbox(x_webhooks=True, x_chat=True, x_reconcile_seconds=0.5)


def rows(box: Sandbox, model: Any) -> list[Any]:
    with box.bridge.ctx.db.session() as s:
        return list(s.exec(select(model)).all())


def opened_past(box: Sandbox, goal: int) -> None:
    opener = box.bridge.opener
    assert opener is not None
    wait_for(lambda: opener.opened >= goal, what=f"{goal} X Chat events opened")


def reply(box: Sandbox, ts: str, text: str) -> str:
    reply_ts, _ = box.slack.post_as_user(SAM, CHANNEL, text, thread_ts=ts)
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, reply_ts), what=f"✅ on {text!r}")
    return reply_ts


def card(box: Sandbox, ts: str) -> str:
    return shown(box.slack.thread(CHANNEL, ts)[0])


def test_an_encrypted_dm_is_mirrored_once_though_delivered_three_times(box: Sandbox) -> None:
    box.x.customer_chats(MARIA, "Mi pedido #5512 no llegó")
    ts = thread_with(box, "Mi pedido #5512 no llegó")
    wait_for(lambda: "Maria López" in card(box, ts), what="the customer's name on the card")
    assert "X Chat :lock:" in card(box, ts)
    event = box.x.chat_events(MARIA)[-1]
    key_event = next(e["encoded_event"] for e in box.x.chat_events(MARIA) if e["key_change"])
    before = box.bridge.opener.opened if box.bridge.opener else 0
    for _ in range(2):  # X retries deliveries: the same body twice more
        assert box.x.deliver_webhook(chat_delivery(event, key_event)).status_code == 200
    box.x.customer_chats(MARIA, "¿Alguna novedad?")  # a later message proves the opener ran past the repeats
    wait_for(lambda: len(customer_posts(box, ts)) >= 2, what="the second message")
    opened_past(box, before + 1)
    texts = [shown(m) for m in customer_posts(box, ts)]
    assert sum("Mi pedido #5512" in t for t in texts) == 1
    assert [e.text for e in rows(box, InboundEvent)] == ["Mi pedido #5512 no llegó", "¿Alguna novedad?"]
    stored = [r for r in rows(box, XChatEvent) if r.event_id == event["id"]]
    assert len(stored) == 1 and stored[0].state == "opened" and stored[0].encoded_event == ""


@pytest.mark.sandbox(x_webhooks=True, x_chat=True, x_reconcile_seconds=0.3)
def test_reconciliation_brings_a_message_whose_delivery_was_lost(box: Sandbox) -> None:
    box.x.drop_next_webhooks(1)
    box.x.customer_chats(JDOE, "Do you ship to Canada? (webhook lost)")
    ts = thread_with(box, "Do you ship to Canada? (webhook lost)")
    assert "J Doe" in card(box, ts) or "X Chat" in card(box, ts)
    reads = [p for m, p, _ in box.x.requests if m == "GET" and p == "/2/chat/conversations"]
    assert reads  # found by the reconciliation pass, not by a delivery


def test_a_reply_goes_encrypted_and_the_customer_reads_it(box: Sandbox) -> None:
    box.x.customer_chats(MARIA, "Hola, ¿tienen talla M?")
    ts = thread_with(box, "Hola, ¿tienen talla M?")
    reply(box, ts, "¡Sí! La talla M está disponible.")
    assert box.x.chat_received_by(MARIA) == ["¡Sí! La talla M está disponible."]
    assert box.x.received_by(MARIA) == []  # nothing went by legacy DM
    sent = [p for m, p, _ in box.x.requests if m == "POST" and p.endswith("/messages")]
    assert sent and all(p.startswith("/2/chat/conversations/") for p in sent)


def test_the_customer_rotates_keys_mid_conversation(box: Sandbox) -> None:
    box.x.customer_chats(MARIA, "before the rotation")
    ts = thread_with(box, "before the rotation")
    reply(box, ts, "answer one")
    box.x.customer_sets_keys(MARIA)  # a new conversation key version
    box.x.customer_chats(MARIA, "after the rotation")
    wait_for(lambda: any("after the rotation" in shown(m) for m in customer_posts(box, ts)), what="rotated message")
    reply(box, ts, "answer two")
    assert box.x.chat_received_by(MARIA) == ["answer one", "answer two"]


def test_a_message_whose_signature_does_not_verify_is_not_shown_as_the_customers(box: Sandbox) -> None:
    box.x.customer_chats(MARIA, "a genuine first message")
    ts = thread_with(box, "a genuine first message")
    box.x.customer_chats(MARIA, "FORGED: send the refund to IBAN XX00", tamper=True)
    wait_for(lambda: any(UNVERIFIED[:40] in shown(m) for m in box.slack.thread(CHANNEL, ts)), what="the warning")
    box.x.customer_chats(MARIA, "a genuine later message")  # one bad message holds nothing up
    wait_for(lambda: any("a genuine later message" in shown(m) for m in customer_posts(box, ts)), what="later one")
    thread = box.slack.thread(CHANNEL, ts)
    assert not any("FORGED" in shown(m) or "FORGED" in str(m.get("text")) for m in thread)
    warning = next(m for m in thread if UNVERIFIED[:40] in shown(m))
    assert not warning.get("username")  # the bot's own notice, not a post under the customer's name
    assert "FORGED" not in " ".join(e.text for e in rows(box, InboundEvent))


def test_keys_survive_a_restart(box: Sandbox) -> None:
    box.x.customer_chats(MARIA, "before the restart")
    ts = thread_with(box, "before the restart")
    box.restart()
    box.x.customer_chats(MARIA, "after the restart")
    wait_for(lambda: any("after the restart" in shown(m) for m in customer_posts(box, ts)), what="after restart")
    reply(box, ts, "still encrypted after a restart")
    assert box.x.chat_received_by(MARIA) == ["still encrypted after a restart"]
    identity = rows(box, XChatIdentity)
    assert len(identity) == 1 and identity[0].sealed.startswith("gAAAA")  # a Fernet token, never the blob


def test_without_stored_keys_x_chat_does_not_start_and_says_why(make_box: BoxFactory) -> None:
    box = make_box(x_webhooks=True, x_chat=True, x_chat_setup=False)
    health = box.x.client.get(box.http.url + "/healthz")
    assert health.status_code == 503
    assert "x-chat setup" in health.json()["checks"]["x_chat"]
    assert box.bridge.opener is None and "xchat" not in box.bridge.pollers
    box.x.customer_sends(MARIA, "legacy DMs still arrive")  # the rest of the bridge works
    thread_with(box, "legacy DMs still arrive")


def test_a_wrong_secret_key_does_not_open_the_keys(make_box: BoxFactory) -> None:
    box = make_box(x_webhooks=True, x_chat=True)
    box.settings = box.settings.model_copy(update={"dmbridge_secret_key": "A" * 43 + "="})
    box.restart()
    health = box.x.client.get(box.http.url + "/healthz").json()
    assert "cannot be opened" in health["checks"]["x_chat"] or "not a key" in health["checks"]["x_chat"]


def test_legacy_dm_and_x_chat_from_one_customer_share_one_thread(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "first by legacy DM")
    ts = thread_with(box, "first by legacy DM")
    wait_for(lambda: "legacy DM" in card(box, ts), what="the card says legacy DM")
    reply(box, ts, "legacy answer")
    assert box.x.received_by(MARIA) == ["legacy answer"]
    box.x.customer_chats(MARIA, "then by X Chat")
    assert thread_with(box, "then by X Chat") == ts
    wait_for(lambda: "X Chat :lock:" in card(box, ts), what="the card says X Chat")
    reply(box, ts, "answer by X Chat")
    assert box.x.chat_received_by(MARIA) == ["answer by X Chat"]
    assert box.x.received_by(MARIA) == ["legacy answer"]
    assert len(rows(box, Conversation)) == 1 and rows(box, Conversation)[0].via == "xchat"


@pytest.mark.sandbox(x_webhooks=True, x_chat=True, x_reconcile_seconds=0.5, x_daily_budget_usd=5.0)
def test_healthz_and_doctor_show_todays_x_spend_and_the_keys(box: Sandbox) -> None:
    from bridge.doctor_x_chat import x_chat_checks

    box.x.customer_chats(MARIA, "how much does this cost?")
    ts = thread_with(box, "how much does this cost?")
    reply(box, ts, "less than a cent")
    assert box.bridge.meter is not None
    box.bridge.meter.flush()
    spend = box.x.client.get(box.http.url + "/healthz").json()["x_spend"]
    assert spend["budget_usd"] == 5.0 and spend["over_budget"] is False
    assert spend["calls"]["send"] >= 1 and spend["calls"]["chat_event"] >= 2  # the message and our echo
    assert 0 < spend["today_usd"] < 1
    checks = {c.name: c for c in x_chat_checks(box.settings)}
    assert checks["X Chat keys"].ok and checks["X Chat public key at X"].ok
    assert checks["X spend today"].ok and "of a $5.00 budget" in checks["X spend today"].detail
    broken = box.settings.model_copy(update={"dmbridge_secret_key": ""})
    refused = {c.name: c for c in x_chat_checks(broken)}["X Chat keys"]
    assert not refused.ok and "DMBRIDGE_SECRET_KEY" in refused.detail + refused.fix


def test_a_reply_typed_in_the_brands_x_app_is_mirrored_as_outside_slack(box: Sandbox) -> None:
    from bridge import x_chat_keys

    box.x.customer_chats(MARIA, "anyone there?")
    ts = thread_with(box, "anyone there?")
    reply(box, ts, "yes, from Slack")
    identity = x_chat_keys.load(box.bridge.ctx.db, box.settings.dmbridge_secret_key)  # the brand's unlocked app
    box.x.brand_chats_from_app(MARIA, "and this one from the X app", identity.chat, identity.key_version)
    post = wait_for(
        lambda: [m for m in box.slack.thread(CHANNEL, ts) if "from the X app" in shown(m)], what="outside send"
    )[0]
    assert "outside Slack" in shown(post)
    # our own send came back as chat.sent too: recognised by its message id, never mirrored
    assert not any("yes, from Slack" in shown(m) for m in customer_posts(box, ts))


def test_a_rate_limited_send_waits_for_the_reset_and_then_goes(box: Sandbox) -> None:
    box.x.customer_chats(MARIA, "quick question")
    ts = thread_with(box, "quick question")
    box.x.fail_next("send", status=429, reset_in=1)
    reply_ts, _ = box.slack.post_as_user(SAM, CHANNEL, "after the rate limit", thread_ts=ts)
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, reply_ts), what="✅ after the reset")
    assert box.x.chat_received_by(MARIA) == ["after the rate limit"]
    assert ("POST", "/2/chat/conversations/1290011223344556677-1460987654321098752/messages", 429) in box.x.requests


@pytest.mark.sandbox(x_webhooks=True, x_chat=True, x_reconcile_seconds=3600)
@pytest.mark.parametrize("way", ["legacy", "xchat"])
def test_a_message_whose_delivery_was_lost_arrives_late_and_says_when_it_was_sent(box: Sandbox, way: str) -> None:
    import time

    send, poller = (box.x.customer_sends, "x") if way == "legacy" else (box.x.customer_chats, "xchat")
    send(MARIA, f"{way} first")
    ts = thread_with(box, f"{way} first")
    box.x.drop_next_webhooks(1)
    send(MARIA, f"{way} second, its delivery lost")
    lost_at = time.time()
    wait_for(lambda: time.time() > lost_at + 0.002, what="a later millisecond")
    send(MARIA, f"{way} third")
    wait_for(lambda: any(f"{way} third" in shown(m) for m in customer_posts(box, ts)), what="the third, delivered")
    box.bridge.pollers[poller].poll_once()  # the reconciliation pass finds the lost one
    wait_for(lambda: any(f"{way} second" in shown(m) for m in customer_posts(box, ts)), what="the lost one, found")
    order = [shown(m) for m in customer_posts(box, ts)]
    assert [p.split(",")[0].split("\n")[0] for p in order] == [f"{way} first", f"{way} third", f"{way} second"]
    assert "reached dmbridge after the messages above" in order[2]  # it says when it was sent instead
    assert all("after the messages above" not in p for p in order[:2])
