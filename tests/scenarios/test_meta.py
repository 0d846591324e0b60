"""Messenger and Instagram end to end: the Meta emulator's signed webhooks in, the Send API out."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlmodel import select

from bridge.sandbox.demo import SAM
from bridge.sandbox.harness import (
    CHANNEL,
    IG_ACCOUNT,
    IG_CUSTOMER,
    MESSENGER_CUSTOMER,
    PAGE_ID,
    PAGE_TOKEN,
    Sandbox,
    shown,
    wait_for,
)
from bridge.sandbox.meta import MESSENGER, MetaEmulator
from bridge.store.tables import Conversation, InboundEvent, Outbox
from bridge.toml_config import FileConfig, MetaFile, MetaPage, Route
from connectors.signing import hex_sha256
from tests.scenarios.helpers import BoxFactory, loops_ran, thread_with

DAY = 86_400


pytestmark = pytest.mark.sandbox(meta=True)


def meta(box: Sandbox) -> MetaEmulator:
    assert box.meta is not None
    return box.meta


def posts(box: Sandbox, ts: str, channel: str = CHANNEL) -> list[dict[str, Any]]:
    return [m for m in box.slack.thread(channel, ts)[1:] if m.get("bot_id") and m.get("username")]


def inbound(box: Sandbox) -> list[InboundEvent]:
    with box.bridge.ctx.db.session() as s:
        return list(s.exec(select(InboundEvent)).all())


def conversations(box: Sandbox) -> list[Conversation]:
    with box.bridge.ctx.db.session() as s:
        return list(s.exec(select(Conversation).order_by(Conversation.id)).all())


def reply(box: Sandbox, ts: str, text: str) -> str:
    reply_ts, _ = box.slack.post_as_user(SAM, CHANNEL, text, thread_ts=ts)
    return reply_ts


def test_subscription_verification(box: Sandbox) -> None:
    ok = meta(box).verify_subscription(challenge="8127361")
    assert ok.status_code == 200 and ok.text == "8127361"
    assert meta(box).verify_subscription(verify_token="guess", challenge="1").status_code == 403
    wrong_mode = meta(box).client.get(
        box.http.url + "/webhooks/meta",
        params={"hub.mode": "unsubscribe", "hub.verify_token": meta(box).verify_token, "hub.challenge": "1"},
    )
    assert wrong_mode.status_code == 403


def test_messenger_message_is_mirrored_under_the_profile_name_and_the_reply_goes_out(box: Sandbox) -> None:
    resp = meta(box).deliver_events([meta(box).message_event(MESSENGER_CUSTOMER, "Is my order shipped?")])
    assert resp.status_code == 200
    assert len(inbound(box)) == 1  # stored before the 200
    ts = thread_with(box, "Is my order shipped?")
    card = shown(box.slack.thread(CHANNEL, ts)[0])
    assert "Messenger" in card and "Lena Fischer" in card
    post = wait_for(lambda: posts(box, ts), what="mirrored message")[0]
    assert post["username"] == "Lena Fischer (Messenger)"
    assert post["icon_url"] == "https://platform-lookaside.fbsbx.example/lena.jpg"
    reply_ts = reply(box, ts, "Yes, it left this morning.")
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, reply_ts), what="✅")
    assert meta(box).received_by(MESSENGER_CUSTOMER) == ["Yes, it left this morning."]
    assert meta(box).log(MESSENGER_CUSTOMER)[-1]["messaging_type"] == "RESPONSE"
    (conv,) = conversations(box)
    assert (conv.platform, conv.account, conv.remote_id) == ("messenger", PAGE_ID, MESSENGER_CUSTOMER)
    assert conv.customer_name == "Lena Fischer" and conv.thread_ts == ts
    # a second message the same day asks for no second profile
    meta(box).customer_sends(MESSENGER_CUSTOMER, "Thanks!")
    wait_for(lambda: len(posts(box, ts)) == 2, what="second message")
    assert meta(box).profile_requests == [MESSENGER_CUSTOMER]


def test_instagram_reply_is_split_under_1000_bytes_on_safe_boundaries(box: Sandbox) -> None:
    meta(box).customer_sends(IG_CUSTOMER, "¿Tienen talla M?")
    ts = thread_with(box, "Tienen talla M")
    card = shown(box.slack.thread(CHANNEL, ts)[0])
    assert "Instagram" in card and "Tomás Ruiz" in card and "tomas.rz" in card
    long = " ".join(["Sí, la talla M está disponible en azul 💙 y en verde 👍🏽."] * 40)  # ≈ 2,600 bytes
    reply_ts = reply(box, ts, long)
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, reply_ts), what="✅")
    got = meta(box).received_by(IG_CUSTOMER)
    assert len(got) >= 3 and all(len(p.encode()) <= 1000 for p in got)
    assert "".join(got).split() == long.split()
    (conv,) = conversations(box)
    assert (conv.platform, conv.account, conv.remote_id) == ("instagram", IG_ACCOUNT, IG_CUSTOMER)
    assert all("\U0001f3fd" not in p[:1] for p in got)  # a skin tone never starts a piece


def test_human_agent_tag_after_24_hours_and_nothing_sent_after_7_days(box: Sandbox) -> None:
    meta(box).customer_sends(MESSENGER_CUSTOMER, "old question", at=time.time() - 2 * DAY)
    ts = thread_with(box, "old question")
    tagged = reply(box, ts, "Sorry for the wait!")
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, tagged), what="✅")
    sent = meta(box).log(MESSENGER_CUSTOMER)[-1]
    assert (sent["messaging_type"], sent["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")

    meta(box).add_customer(PAGE_ID, "7361522908870001", name="Old Timer")
    meta(box).customer_sends("7361522908870001", "are you there?", at=time.time() - 9 * DAY)
    ts2 = thread_with(box, "are you there?")
    calls_before = len(meta(box).send_requests)
    late = reply(box, ts2, "We are now")
    wait_for(lambda: "warning" in box.slack.reactions(CHANNEL, late), what="⚠️")
    note = wait_for(
        lambda: [m for m in box.slack.thread(CHANNEL, ts2) if "Not delivered" in shown(m)], what="window note"
    )[0]
    assert "within 24 hours" in shown(note) and "9 days ago" in shown(note)
    assert len(meta(box).send_requests) == calls_before  # refused before any API call
    assert meta(box).received_by("7361522908870001") == []


def test_human_agent_off_closes_the_window_at_24_hours(make_box: BoxFactory) -> None:
    box = make_box(meta=True, meta_human_agent_days=0)
    m = meta(box)
    m.customer_sends(IG_CUSTOMER, "hola", at=time.time() - 30 * 3600)
    ts = thread_with(box, "hola")
    late = reply(box, ts, "¡Hola!")
    wait_for(lambda: "warning" in box.slack.reactions(CHANNEL, late), what="⚠️")
    assert m.send_requests == []
    with box.bridge.ctx.db.session() as s:
        row = s.exec(select(Outbox).where(Outbox.kind == "dm")).one()
    assert row.state == "failed" and "human-agent extension is off" in (row.last_error or "")


def test_our_echoes_are_dropped_and_business_suite_replies_are_labelled(box: Sandbox) -> None:
    m = meta(box)
    m.customer_sends(MESSENGER_CUSTOMER, "hello page")
    ts = thread_with(box, "hello page")
    reply_ts = reply(box, ts, "hello from Slack")
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, reply_ts), what="✅")
    wait_for(lambda: len(m.webhook_statuses) >= 2, what="our echo delivered")
    m.business_suite_sends(MESSENGER_CUSTOMER, "typed in Business Suite")
    post = wait_for(
        lambda: [p for p in box.slack.thread(CHANNEL, ts) if "typed in Business Suite" in shown(p)],
        what="outside reply mirrored",
    )[0]
    assert "outside Slack" in shown(post)
    assert not any("hello from Slack" in shown(p) for p in box.slack.thread(CHANNEL, ts) if p.get("bot_id"))
    with box.bridge.ctx.db.session() as s:
        stored = {e.text: e.from_brand for e in s.exec(select(InboundEvent)).all()}
    assert stored == {"hello page": False, "typed in Business Suite": True}


def test_batched_entries_and_messaging_items_are_all_stored_in_order(box: Sandbox) -> None:
    m = meta(box)
    m.add_customer(PAGE_ID, "7361522908870002", name="Ada Byron")
    t0 = time.time()
    items = [
        m.message_event(MESSENGER_CUSTOMER, "one", at=t0),
        m.message_event("7361522908870002", "two", at=t0 + 1),
        m.message_event(MESSENGER_CUSTOMER, "three", at=t0 + 2),
    ]
    read = (
        PAGE_ID,
        {
            "sender": {"id": MESSENGER_CUSTOMER},
            "recipient": {"id": PAGE_ID},
            "timestamp": int(t0 * 1000),
            "read": {"watermark": int(t0 * 1000)},
        },
    )
    assert m.deliver_events([*items, read]).status_code == 200
    ts = thread_with(box, "three")
    wait_for(lambda: len(posts(box, ts)) == 2, what="both of Lena's messages")
    assert [shown(p) for p in posts(box, ts)] == ["one", "three"]
    assert thread_with(box, "two") != ts
    assert len(inbound(box)) == 3


def test_bad_signature_replay_malformed_and_oversized_deliveries(box: Sandbox) -> None:
    m = meta(box)
    body = json.dumps(m.payload([m.message_event(MESSENGER_CUSTOMER, "forged")])).encode()
    assert m.deliver_raw(body, secret="not-the-app-secret").status_code == 403
    assert m.deliver_raw(body, signature="").status_code == 403
    assert m.deliver_raw(body + b" ", signature=hex_sha256(m.app_secret, body)).status_code == 403
    assert inbound(box) == []

    good = m.payload([m.message_event(MESSENGER_CUSTOMER, "only once")])
    assert [m.deliver(good).status_code for _ in range(3)] == [200, 200, 200]
    ts = thread_with(box, "only once")
    loops_ran(box, "slack-delivery")
    assert len(inbound(box)) == 1 and len(posts(box, ts)) == 1

    for payload in (
        {"object": "page", "entry": "nope"},
        {"object": "whatsapp_business_account", "entry": []},
        {
            "object": "page",
            "entry": [{"id": PAGE_ID, "messaging": [{"message": {"text": "no mid"}, "sender": {"id": "1"}}]}],
        },
    ):
        assert m.deliver(payload).status_code == 400
    assert m.deliver_raw(b"{not json").status_code == 400
    assert m.deliver_raw(b" " * (1024 * 1024 + 1)).status_code == 413
    assert len(inbound(box)) == 1


def test_platform_errors_are_explained(box: Sandbox) -> None:
    m = meta(box)
    m.customer_sends(MESSENGER_CUSTOMER, "hi")
    ts = thread_with(box, "hi")
    m.fail_next("send", status=429, retry_after=1)
    waited = reply(box, ts, "first try is rate limited")
    wait_for(lambda: "hourglass_flowing_sand" in box.slack.reactions(CHANNEL, waited), what="⏳")
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, waited), what="✅ after the limit")
    m.fail_next("send", status=500)
    retried = reply(box, ts, "after a server error")
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, retried), what="✅ after a 500")
    assert m.received_by(MESSENGER_CUSTOMER) == ["first try is rate limited", "after a server error"]

    m.set_available(MESSENGER_CUSTOMER, False)
    refused = reply(box, ts, "are you still there?")
    wait_for(lambda: "warning" in box.slack.reactions(CHANNEL, refused), what="⚠️")
    note = wait_for(
        lambda: [p for p in box.slack.thread(CHANNEL, ts) if "Not delivered" in shown(p)], what="explanation"
    )[0]
    assert "isn't available right now" in shown(note)


def test_revoked_token_shows_in_health_and_the_reply_waits(box: Sandbox) -> None:
    m = meta(box)
    m.customer_sends(MESSENGER_CUSTOMER, "hello")
    ts = thread_with(box, "hello")
    m.revoke(PAGE_TOKEN)
    reply(box, ts, "will wait for a new token")
    wait_for(lambda: "access token" in box.bridge.ctx.health.get("messenger", ""), what="health shows the token")
    assert box.bridge.health()["ok"] is False

    def waiting() -> bool:  # health is reported as the attempt ends; the row is put back just after
        with box.bridge.ctx.db.session() as s:
            row = s.exec(select(Outbox).where(Outbox.kind == "dm")).one()
        return row.state == "pending" and "expired or revoked" in (row.last_error or "")

    wait_for(waiting, what="the reply waiting for a new token")


def test_several_pages_route_to_their_channels(monkeypatch: pytest.MonkeyPatch, make_box: BoxFactory) -> None:
    eu_page, eu_token = "209384756102938", "sandbox-eu-page-token"
    file = FileConfig(
        routes=[Route(connector="meta", account=eu_page, channel="C0EUROPE")],
        meta=MetaFile(pages=[MetaPage(id=eu_page, token_env="META_TOKEN_EU")]),
    )
    box = make_box(meta=True, file=file, environ={"META_TOKEN_EU": eu_token})
    m = meta(box)
    box.slack.add_channel("C0EUROPE", "social-eu", members=["U0AGENT1", "U0BOT"])
    m.add_account(eu_page, MESSENGER, eu_token, "Acme Europe")
    m.add_customer(eu_page, "5550001112223334", name="Jan de Vries")
    m.customer_sends("5550001112223334", "Hallo uit Utrecht")
    m.customer_sends(MESSENGER_CUSTOMER, "Hello from Berlin")
    eu_ts = thread_with(box, "Hallo uit Utrecht", channel="C0EUROPE")
    thread_with(box, "Hello from Berlin")
    assert not any("Utrecht" in shown(p) for p in box.slack.messages(CHANNEL))
    reply_ts, _ = box.slack.post_as_user(SAM, "C0EUROPE", "Goedemiddag!", thread_ts=eu_ts)
    wait_for(lambda: "white_check_mark" in box.slack.reactions("C0EUROPE", reply_ts), what="✅")
    assert m.received_by("5550001112223334") == ["Goedemiddag!"]
