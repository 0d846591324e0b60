"""Hostile X Chat deliveries through the real ``/webhooks/x`` route of a started sandbox: forged signatures,
malformed and oversized events, Thrift built to exhaust the reader, other people's conversations, replays,
garbage ciphertext, a sender outside the conversation and a signature that does not verify. Each case checks
the answer, the ``x_chat_event`` / ``inbound_event`` rows, and what the Slack thread shows — and that a
genuine message from the customer still arrives afterwards (one bad input never holds the others)."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import struct
import uuid
from typing import Any

import pytest
from sqlmodel import col, select

from bridge.inbound import UNVERIFIED
from bridge.sandbox import xchat_thrift as thrift
from bridge.sandbox.demo import JDOE, MARIA
from bridge.sandbox.harness import CHANNEL, Sandbox, shown, wait_for
from bridge.sandbox.x import BRAND_ID
from bridge.sandbox.x_chat import chat_delivery, colon, now_ms
from bridge.store.tables import InboundEvent, XChatEvent
from connectors import signing
from tests.scenarios.helpers import customer_posts, loops_ran, thread_with

pytestmark = pytest.mark.sandbox(x_webhooks=True, x_chat=True)

OTHER_ACCOUNT = "1777000000000000001"  # another account of the same X app
STRANGER = "1777000000000000002"
T_STRING, T_STRUCT, T_LIST, T_MAP, T_I32 = 11, 12, 15, 13, 8


# --- what the bridge holds ---------------------------------------------------------------------------------------


def chat_rows(box: Sandbox) -> list[XChatEvent]:
    with box.bridge.ctx.db.read() as s:
        return list(s.exec(select(XChatEvent).order_by(col(XChatEvent.id))).all())


def inbound(box: Sandbox) -> list[InboundEvent]:
    with box.bridge.ctx.db.read() as s:
        return list(s.exec(select(InboundEvent)).all())


def row_of(box: Sandbox, event_id: str) -> XChatEvent | None:
    return next((r for r in chat_rows(box) if r.event_id == event_id), None)


def settled(box: Sandbox, event_id: str) -> XChatEvent:
    """The event's row once the opener has settled it (opened or failed)."""

    def done() -> XChatEvent | None:
        row = row_of(box, event_id)
        return row if row is not None and row.state != "pending" else None

    found: XChatEvent = wait_for(done, what=f"X Chat event {event_id} settled")
    return found


def everything_shown(box: Sandbox) -> str:
    return "\n".join(shown(m) + str(m.get("text")) for root in box.slack.roots(CHANNEL) for m in thread(box, root))


def thread(box: Sandbox, root: dict[str, Any]) -> list[dict[str, Any]]:
    return box.slack.thread(CHANNEL, str(root["ts"]))


def nothing_stored(box: Sandbox) -> None:
    assert chat_rows(box) == [] and inbound(box) == []


def a_genuine_message_still_arrives_alone(box: Sandbox, text: str = "genuine: where is order #5512?") -> str:
    """After refused deliveries: the customer's next message is mirrored, and it is the only thing shown."""
    box.x.customer_chats(MARIA, text)
    ts = thread_with(box, text)
    assert [r["ts"] for r in box.slack.roots(CHANNEL)] == [ts]
    assert [shown(m) for m in customer_posts(box, ts)] == [text]
    assert [e.text for e in inbound(box)] == [text]
    assert {r.state for r in chat_rows(box)} == {"opened"}
    assert not any(UNVERIFIED[:40] in shown(m) for m in box.slack.thread(CHANNEL, ts))
    return ts


# --- what is delivered -------------------------------------------------------------------------------------------


def delivery(
    encoded: Any, *, key: Any = None, for_user: str | None = BRAND_ID, kind: str = "chat.received"
) -> dict[str, Any]:
    payload: dict[str, Any] = {"encoded_event": encoded}
    if key is not None:
        payload["conversation_key_change_event"] = key
    data: dict[str, Any] = {"event_uuid": str(uuid.uuid4()), "tag": "", "event_type": kind, "payload": payload}
    if for_user is not None:
        data["filter"] = {"user_id": for_user}
    return {"data": data}


def undelivered_chat(box: Sandbox, user: str, text: str) -> tuple[dict[str, Any], str]:
    """The customer writes, X's own delivery is lost; the body X would have sent, and the message id."""
    box.x.drop_next_webhooks(1)
    message_id = box.x.customer_chats(user, text)
    events = box.x.chat_events(user)
    event = next(e for e in events if e["id"] == message_id)
    key_event = next(e["encoded_event"] for e in reversed(events) if e["key_change"])
    return chat_delivery(event, key_event), message_id


def codec_event(*, sender: str, conversation: str, contents: bytes | None = None, message_id: str = "") -> str:
    """A message event built with the emulator's codec: clear header as given, ``contents`` as the ciphertext."""
    return thrift.build_message_event(
        sequence_id="9001",
        message_id=message_id or str(uuid.uuid4()),
        sender_id=sender,
        conversation_id=conversation,
        created_at_msec=now_ms(),
        message_create_event=thrift.MessageCreateEvent(
            contents=os.urandom(96) if contents is None else contents, conversation_key_version="1"
        ),
        signature=None,
    )


def tstring(fid: int, value: str) -> bytes:
    return struct.pack(">bhi", T_STRING, fid, len(value.encode())) + value.encode()


def header_then(rest: bytes) -> str:
    """A MessageEvent whose clear header (fields 1-4) is ours and well-formed, followed by ``rest``."""
    head = tstring(1, "1") + tstring(2, "hostile-1") + tstring(3, MARIA) + tstring(4, colon(MARIA, BRAND_ID))
    return base64.b64encode(head + rest).decode()


def genuine_bytes() -> bytes:
    return base64.b64decode(codec_event(sender=MARIA, conversation=colon(MARIA, BRAND_ID), message_id="cut-1"))


HOSTILE_THRIFT = {
    "structs-nested-60-deep": header_then(
        struct.pack(">bh", T_STRUCT, 7) + struct.pack(">bh", T_STRUCT, 1) * 60 + b"\x00" * 62
    ),
    "lists-nested-5000-deep": header_then(
        struct.pack(">bhbi", T_LIST, 7, T_LIST, 1) + struct.pack(">bi", T_LIST, 1) * 5000 + b"\x00"
    ),
    "maps-nested-3000-deep": header_then(
        struct.pack(">bhbbi", T_MAP, 7, T_MAP, T_MAP, 1) + struct.pack(">bbi", T_MAP, T_MAP, 1) * 3000 + b"\x00"
    ),
    "absurd-list-count": header_then(struct.pack(">bhbi", T_LIST, 7, T_I32, 2**31 - 1) + b"\x00"),
    "negative-string-size": header_then(struct.pack(">bhi", T_STRING, 5, -4) + b"\x00"),
    "unknown-wire-type": header_then(struct.pack(">bh", 99, 7) + b"\x00"),
    "cut-short": base64.b64encode(genuine_bytes()[:-9]).decode(),
    "bytes-after-the-end": base64.b64encode(genuine_bytes() + b"\x00\x00").decode(),
    "no-stop-byte": header_then(b""),
}


# --- the table ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["made-up", "empty", "other-secret", "another-body"])
def test_a_forged_signature_is_refused_and_nothing_stored(box: Sandbox, how: str) -> None:
    body_obj, _ = undelivered_chat(box, MARIA, "captured ciphertext, replayed by someone without the secret")
    body = json.dumps(body_obj).encode()
    signature = {
        "made-up": "sha256=" + "A" * 43 + "=",
        "empty": "",
        "other-secret": signing.base64_sha256("not-the-consumer-secret", body),
        "another-body": signing.base64_sha256(box.x.consumer_secret, body + b" "),
    }[how]
    resp = box.x.deliver_webhook_raw(body, signature=signature)
    assert resp.status_code == 403
    nothing_stored(box)
    a_genuine_message_still_arrives_alone(box)


ENCODED = {
    "not-base64": "this is not base64 ***",
    "url-safe-alphabet": "_-_-" * 8,
    "bad-padding": "QQ===",
    "empty": "",
    "over-64000-chars": "A" * 64_004,
    "an-integer": 12345,
    "a-list": ["CwABAAAAATEA"],
    "an-object": {"b64": "CwABAAAAATEA"},
    "null": None,
    "true": True,
}


@pytest.mark.parametrize("value", ENCODED.values(), ids=ENCODED.keys())
def test_a_malformed_encoded_event_answers_400_and_stores_nothing(box: Sandbox, value: Any) -> None:
    resp = box.x.deliver_webhook(delivery(value))
    assert resp.status_code == 400
    assert "encoded_event" in resp.json()["error"]
    good = codec_event(sender=MARIA, conversation=colon(MARIA, BRAND_ID))
    if value is not None:  # a good event with a malformed key event: the delivery is refused whole
        assert box.x.deliver_webhook(delivery(good, key=value)).status_code == 400
    nothing_stored(box)
    a_genuine_message_still_arrives_alone(box)


CONVERSATIONS = {
    "two-strangers-colon": (STRANGER, f"{OTHER_ACCOUNT}:{STRANGER}"),
    "two-strangers-dash": (STRANGER, f"{OTHER_ACCOUNT}-{STRANGER}"),
    "a-group": (MARIA, f"g{MARIA}{BRAND_ID}"),
    "the-brand-with-itself": (BRAND_ID, f"{BRAND_ID}:{BRAND_ID}"),
    "three-ids": (MARIA, f"{MARIA}:{BRAND_ID}:{JDOE}"),
    "a-customer-and-a-stranger": (MARIA, f"{MARIA}:{STRANGER}"),
}


@pytest.mark.parametrize(("sender", "conversation"), CONVERSATIONS.values(), ids=CONVERSATIONS.keys())
def test_an_event_of_a_conversation_not_the_brands_answers_400(box: Sandbox, sender: str, conversation: str) -> None:
    event = codec_event(sender=sender, conversation=conversation)
    resp = box.x.deliver_webhook(delivery(event))
    assert resp.status_code == 400 and "of ours" in resp.json()["error"]
    ours = codec_event(sender=MARIA, conversation=colon(MARIA, BRAND_ID))
    assert box.x.deliver_webhook(delivery(ours, key=event)).status_code == 400  # smuggled in as the key event
    nothing_stored(box)
    a_genuine_message_still_arrives_alone(box)


@pytest.mark.parametrize("encoded", HOSTILE_THRIFT.values(), ids=HOSTILE_THRIFT.keys())
def test_thrift_built_to_exhaust_the_reader_answers_400(box: Sandbox, encoded: str) -> None:
    assert len(encoded) <= 64_000
    resp = box.x.deliver_webhook(delivery(encoded))
    assert resp.status_code == 400 and "encoded_event" in resp.json()["error"]
    nothing_stored(box)
    a_genuine_message_still_arrives_alone(box)


def test_a_chat_delivery_for_another_account_is_acknowledged_and_not_stored(box: Sandbox) -> None:
    """Signed with the app's secret (one app serves several accounts) but addressed to another account: 200,
    so X neither retries nor disables the webhook, and nothing stored — whatever its events are."""
    theirs = codec_event(sender=STRANGER, conversation=f"{OTHER_ACCOUNT}:{STRANGER}")  # their own conversation
    body, _ = undelivered_chat(box, MARIA, "addressed to another account")
    ours_readdressed = json.loads(json.dumps(body))
    ours_readdressed["data"]["filter"]["user_id"] = OTHER_ACCOUNT
    for payload in (
        delivery(theirs, for_user=OTHER_ACCOUNT),
        delivery(theirs, for_user=OTHER_ACCOUNT, kind="chat.sent"),
        delivery("not even base64 ***", for_user=OTHER_ACCOUNT),
        ours_readdressed,
        delivery(theirs, for_user=None),  # addressed to no one
    ):
        resp = box.x.deliver_webhook(payload)
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"received": 0, "new": 0}
    assert box.bridge.channels.receivers["x"].refused["other_account"] == 5  # type: ignore[attr-defined]
    nothing_stored(box)
    a_genuine_message_still_arrives_alone(box)


@pytest.mark.parametrize("shape", ["arrays", "objects", "inside-the-payload"])
def test_a_deeply_nested_json_body_answers_400(box: Sandbox, shape: str) -> None:
    depth = 100_000
    body = {
        "arrays": b"[" * depth + b"]" * depth,
        "objects": b'{"a":' * depth + b"1" + b"}" * depth,
        "inside-the-payload": json.dumps(delivery("@@")).replace('"@@"', "[" * depth + "]" * depth).encode(),
    }[shape]
    resp = box.x.deliver_webhook_raw(body)  # signed with the real secret: the parser is what is attacked
    assert resp.status_code == 400
    nothing_stored(box)
    a_genuine_message_still_arrives_alone(box)


def test_a_replayed_genuine_delivery_is_stored_and_mirrored_once(box: Sandbox) -> None:
    body, message_id = undelivered_chat(box, MARIA, "Mi pedido #5512 no llegó")
    first = box.x.deliver_webhook(body)
    assert first.status_code == 200 and first.json()["new"] == 2  # the key event and the message
    for _ in range(3):
        again = box.x.deliver_webhook(body)
        assert again.status_code == 200 and again.json()["new"] == 0
    ts = thread_with(box, "Mi pedido #5512 no llegó")
    assert settled(box, message_id).state == "opened"
    opened_before = box.bridge.opener.opened if box.bridge.opener else 0
    assert box.x.deliver_webhook(body).json()["new"] == 0  # replayed after it was opened: still nothing new
    box.x.customer_chats(MARIA, "¿Alguna novedad?")
    wait_for(lambda: len(customer_posts(box, ts)) >= 2, what="the later message")
    assert box.bridge.opener is not None and box.bridge.opener.opened > opened_before
    assert [shown(m) for m in customer_posts(box, ts)] == ["Mi pedido #5512 no llegó", "¿Alguna novedad?"]
    assert [r.event_id for r in chat_rows(box)].count(message_id) == 1
    assert sorted(e.text for e in inbound(box)) == sorted(["Mi pedido #5512 no llegó", "¿Alguna novedad?"])
    assert len(box.slack.roots(CHANNEL)) == 1


def test_garbage_ciphertext_is_stored_then_failed_and_holds_nothing_up(box: Sandbox) -> None:
    """Well-formed in its clear header and genuinely signed by the customer's app, but its contents were
    encrypted under no key of the conversation: it cannot be opened, so it fails with the reason."""
    box.x.customer_chats(MARIA, "a genuine first message")
    ts = thread_with(box, "a genuine first message")
    person, conv = box.x.chat.people[MARIA], box.x.chat.conversations[MARIA]
    assert conv.latest is not None
    sent = person.chat.encrypt_message(
        colon(MARIA, BRAND_ID),
        "SECRET: never readable",
        sender_id=MARIA,
        signing_key_version=person.version,
        conversation_key=os.urandom(32),
        conversation_key_version=conv.latest,
    )
    event = thrift.build_message_event(
        sequence_id="9002",
        message_id=sent.message_id,
        sender_id=MARIA,
        conversation_id=colon(MARIA, BRAND_ID),
        created_at_msec=now_ms(),
        message_create_event=sent.encrypted_content,
        signature=sent.encoded_event_signature,
    )
    resp = box.x.deliver_webhook(chat_delivery({"encoded_event": event, "sender_id": MARIA}, None))
    assert resp.status_code == 200 and resp.json()["new"] == 1
    row = settled(box, sent.message_id)
    assert row.state == "failed" and row.error and "cannot be opened" in row.error
    assert row.encoded_event == event  # kept as received, for whoever looks into it

    box.x.customer_chats(MARIA, "a genuine later message")
    wait_for(lambda: len(customer_posts(box, ts)) >= 2, what="the later message")
    assert [shown(m) for m in customer_posts(box, ts)] == ["a genuine first message", "a genuine later message"]
    assert "SECRET" not in everything_shown(box) and UNVERIFIED[:40] not in everything_shown(box)
    assert sent.message_id not in {e.remote_id for e in inbound(box)}


def test_random_contents_under_a_real_signature_show_the_warning_and_never_text(box: Sandbox) -> None:
    """The codec swaps a genuine event's ciphertext for random bytes: its signature no longer verifies, so it
    is treated as a message altered on the way (the warning), never as the customer's words."""
    box.x.customer_chats(MARIA, "a genuine first message")
    ts = thread_with(box, "a genuine first message")
    body, message_id = undelivered_chat(box, MARIA, "SECRET original words")
    genuine = thrift.parse_event(body["data"]["payload"]["encoded_event"])
    assert genuine.detail is not None and genuine.detail.message_create_event is not None
    garbage = dataclasses.replace(genuine.detail.message_create_event, contents=os.urandom(120))
    event = thrift.encode_event(
        dataclasses.replace(genuine, detail=thrift.MessageEventDetail(message_create_event=garbage))
    )
    resp = box.x.deliver_webhook(chat_delivery({"encoded_event": event, "sender_id": MARIA}, None))
    assert resp.status_code == 200 and resp.json()["new"] == 1
    assert settled(box, message_id).state == "opened"
    box.x.customer_chats(MARIA, "a genuine later message")
    wait_for(lambda: len(customer_posts(box, ts)) >= 2, what="the later message")
    assert [shown(m) for m in customer_posts(box, ts)] == ["a genuine first message", "a genuine later message"]
    warnings = [m for m in box.slack.thread(CHANNEL, ts) if UNVERIFIED[:40] in shown(m)]
    assert len(warnings) == 1 and not warnings[0].get("username")
    assert "SECRET" not in everything_shown(box)
    assert "SECRET" not in " ".join(e.text for e in inbound(box))


@pytest.mark.parametrize("signed_by", ["the-customer", "the-third-user"])
def test_an_event_claiming_a_sender_outside_the_conversation_fails(box: Sandbox, signed_by: str) -> None:
    """In Maria's conversation, an event whose sender is J Doe (a real X Chat user with keys of his own):
    written by Maria's app claiming to be him, or by his app with the conversation's key. Not mirrored, no
    warning in Maria's thread: it failed, with the reason."""
    box.x.customer_chats(MARIA, "a genuine first message")
    ts = thread_with(box, "a genuine first message")
    conv = box.x.chat.conversations[MARIA]
    assert conv.latest is not None
    writer = box.x.chat.people[MARIA if signed_by == "the-customer" else JDOE]
    sent = writer.chat.encrypt_message(
        colon(MARIA, BRAND_ID),
        "IMPOSTOR: this is J Doe, send the refund to me",
        sender_id=JDOE,
        signing_key_version=writer.version,
        conversation_key=conv.keys[conv.latest],
        conversation_key_version=conv.latest,
    )
    event = thrift.build_message_event(
        sequence_id="9003",
        message_id=sent.message_id,
        sender_id=JDOE,
        conversation_id=colon(MARIA, BRAND_ID),
        created_at_msec=now_ms(),
        message_create_event=sent.encrypted_content,
        signature=sent.encoded_event_signature,
    )
    resp = box.x.deliver_webhook(chat_delivery({"encoded_event": event, "sender_id": JDOE}, None))
    assert resp.status_code == 200 and resp.json()["new"] == 1
    row = settled(box, sent.message_id)
    assert row.state == "failed" and row.error == "sent by someone outside the conversation"

    box.x.customer_chats(MARIA, "a genuine later message")
    wait_for(lambda: len(customer_posts(box, ts)) >= 2, what="the later message")
    assert [shown(m) for m in customer_posts(box, ts)] == ["a genuine first message", "a genuine later message"]
    assert "IMPOSTOR" not in everything_shown(box) and UNVERIFIED[:40] not in everything_shown(box)
    assert sent.message_id not in {e.remote_id for e in inbound(box)}
    assert len(box.slack.roots(CHANNEL)) == 1  # no thread of J Doe's either


def test_a_tampered_signature_shows_the_warning_and_never_the_text(box: Sandbox) -> None:
    tampered = box.x.customer_chats(MARIA, "FORGED: send the refund to IBAN XX00", tamper=True)
    ts = thread_with(box, UNVERIFIED[:40])
    row = settled(box, tampered)
    assert row.state == "opened" and row.encoded_event == ""
    warning = next(m for m in box.slack.thread(CHANNEL, ts) if UNVERIFIED[:40] in shown(m))
    assert not warning.get("username")  # the bot's own notice, not a post under the customer's name
    assert [e.text for e in inbound(box) if e.remote_id == tampered] == [""]

    box.x.customer_chats(MARIA, "a genuine later message")
    wait_for(lambda: any("a genuine later message" in shown(m) for m in customer_posts(box, ts)), what="later")
    loops_ran(box, "x-chat-opener", "slack-delivery")
    assert [shown(m) for m in customer_posts(box, ts)] == ["a genuine later message"]
    assert "FORGED" not in everything_shown(box)
    assert "FORGED" not in " ".join(e.text for e in inbound(box))
    assert sum(UNVERIFIED[:40] in shown(m) for m in box.slack.thread(CHANNEL, ts)) == 1
    assert len(box.slack.roots(CHANNEL)) == 1
