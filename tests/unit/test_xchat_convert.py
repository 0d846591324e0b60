"""The pure X Chat shapes (connectors.xchat.convert): the clear header of an event read without decrypting,
conversation ids in each form X writes them, webhook envelopes → sealed events, opened events → messages."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bridge.domain import Customer
from bridge.errors import BadPayload
from bridge.sandbox import xchat_thrift as xt
from connectors.xchat import convert

ROOT = Path(__file__).resolve().parents[2]
ME = "1290011223344550000"
CUSTOMER = "1290011223344556677"
VECTOR_EVENTS = ("event_message_b64", "event_reply_valid_b64", "event_reply_forged_b64", "event_key_change_b64")

T_STRING, T_STRUCT, T_LIST, T_I32 = 11, 12, 15, 8


def vectors() -> dict[str, Any]:
    candidates = [Path(os.environ["DMBRIDGE_SPECS"])] if os.environ.get("DMBRIDGE_SPECS") else []
    candidates += [p / "shared" / "specs" for p in ROOT.parents]
    found = next((c / "x" / "chat-xdk-sdk-vectors.json" for c in candidates if (c / "x").is_dir()), None)
    if found is None or not found.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail("x/chat-xdk-sdk-vectors.json not found under CI (../shared/specs or $DMBRIDGE_SPECS)")
        pytest.skip("x/chat-xdk-sdk-vectors.json not found (../shared/specs or $DMBRIDGE_SPECS)")
    data: dict[str, Any] = json.loads(found.read_text(encoding="utf-8"))
    return data


# --- Thrift by hand ----------------------------------------------------------------------------------------------


def string(fid: int, value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return struct.pack(">bhi", T_STRING, fid, len(raw)) + raw


def struct_field(fid: int, inner: bytes) -> bytes:
    return struct.pack(">bh", T_STRUCT, fid) + inner + b"\x00"


def event(*fields: bytes, message_id: str = "m-1", sender: str = CUSTOMER, conversation: str | None = None) -> str:
    conversation = f"{CUSTOMER}:{ME}" if conversation is None else conversation
    head = string(2, message_id) + string(3, sender) + string(4, conversation)
    return base64.b64encode(head + b"".join(fields) + b"\x00").decode()


def genuine(message_id: str = "m-1", conversation: str | None = None) -> str:
    return xt.build_message_event(
        sequence_id="7",
        message_id=message_id,
        sender_id=CUSTOMER,
        conversation_id=conversation or f"{CUSTOMER}:{ME}",
        created_at_msec=1_700_000_000_000,
        message_create_event=xt.MessageCreateEvent(contents=b"\x01" * 48, conversation_key_version="1"),
        signature=xt.MessageEventSignature(signature="c2ln", public_key_version="1", signature_version="7"),
    )


# --- header ------------------------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
@example(b"")
@example(b"\x0f\x00\x07" + b"\x0f\x00\x00\x00\x01" * 1200)  # a list of lists of lists … far deeper than the stack
@example(b"\x0d\x00\x07" + b"\x0d\x0d\x00\x00\x00\x01" * 1200)  # the same with maps
def test_header_raises_only_value_error_on_any_bytes(raw: bytes) -> None:
    try:
        head = convert.header(base64.b64encode(raw).decode())
    except ValueError:
        return
    assert convert.EVENT_ID.fullmatch(head.message_id) and convert.USER_ID.fullmatch(head.sender_id)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_header_raises_only_value_error_on_any_text(text: str) -> None:
    with contextlib.suppress(ValueError):
        convert.header(text)


def test_header_reads_the_vectors_ids() -> None:
    v = vectors()
    for name in VECTOR_EVENTS:
        head = convert.header(v[name])
        parsed = xt.parse_event(v[name])
        assert head == convert.Header(str(parsed.message_id), v["event_sender_id"], v["event_conversation_id"]), name
    assert convert.header(v["event_key_change_b64"]).message_id == "kc-msg-1"
    assert convert.canonical(v["event_conversation_id"], "2222") == "1111-2222"
    with pytest.raises(ValueError):
        convert.header(v["event_garbage_b64"])


def test_header_reads_what_the_codec_builds_and_refuses_every_truncation() -> None:
    b64 = genuine("0f7c-message.1")
    assert convert.header(b64) == convert.Header("0f7c-message.1", CUSTOMER, f"{CUSTOMER}:{ME}")
    raw = base64.b64decode(b64)
    for n in range(len(raw)):
        with pytest.raises(ValueError):
            convert.header(base64.b64encode(raw[:n]).decode())
    with pytest.raises(ValueError, match="after the event"):
        convert.header(base64.b64encode(raw + b"\x00").decode())


MALFORMED_IDS = [
    "not-base64",
    "structs-40-deep",
    "huge-list-count",
    "negative-count",
    "lists-2000-deep",
    "unknown-type",
    "no-message-id",
    "bad-message-id",
    "sender-not-digits",
    "sender-20-digits",
    "no-conversation",
    "not-utf8",
]


@pytest.mark.parametrize(
    ("b64", "why"),
    [
        ("not base64!", "not base64"),
        (event(struct_field(7, b"\x0c\x00\x01" * 40 + b"\x00" * 40)), "deep"),
        (event(struct.pack(">bhbi", T_LIST, 7, T_I32, 2**31 - 1)), "count"),
        (event(struct.pack(">bhbi", T_LIST, 7, T_I32, -1)), "count"),
        (event(struct.pack(">bhbi", T_LIST, 7, T_LIST, 1) + struct.pack(">bi", T_LIST, 1) * 2000), "deep"),
        (event(struct.pack(">bh", 99, 7)), "unknown Thrift type"),
        (event(message_id=""), "needs a message id"),
        (event(message_id="spaces are not ids"), "needs a message id"),
        (event(sender="not-a-user"), "needs a message id"),
        (event(sender="1" * 20), "needs a message id"),
        (event(conversation=""), "needs a message id"),
        (base64.b64encode(string(2, "m") + string(3, b"\xff\xfe") + b"\x00").decode(), "utf-8"),
    ],
    ids=MALFORMED_IDS,
)
def test_malformed_headers_raise_value_error(b64: str, why: str) -> None:
    with pytest.raises(ValueError, match=f"(?i){why}"):
        convert.header(b64)


# --- canonical ---------------------------------------------------------------------------------------------------

ids = st.integers(min_value=1, max_value=10**19 - 1).map(str)


@given(ids, ids, st.sampled_from(["{a}:{b}", "{a}-{b}", "{b}:{a}", "{b}-{a}", "{other}"]))
def test_canonical_is_low_high_from_every_form(me: str, customer: str, form: str) -> None:
    if me == customer:
        return
    other = customer
    got = convert.canonical(form.format(a=me, b=customer, other=other), me)
    low, high = sorted((me, customer), key=int)
    assert got == f"{low}-{high}"
    assert got is not None and convert.other(got, me) == customer
    assert convert.canonical(got, me) == got  # idempotent


@given(ids, ids, ids)
def test_canonical_refuses_strangers(me: str, a: str, b: str) -> None:
    if me in (a, b):
        return
    assert convert.canonical(f"{a}:{b}", me) is None
    assert convert.canonical(f"{a}-{b}", me) is None


@given(ids)
def test_canonical_refuses_self_conversations(me: str) -> None:
    for form in (me, f"{me}:{me}", f"{me}-{me}", f"0{me}", f"0{me}:{me}", f"{me}-00{me}"):
        assert convert.canonical(form, me) is None, form


@pytest.mark.parametrize(
    "conversation",
    [
        "",
        "g1234567890",  # a group
        f"g{CUSTOMER}:{ME}",
        f"{CUSTOMER}:{ME}:{CUSTOMER}",
        f"{CUSTOMER}-{ME}-1",
        f"{CUSTOMER}:",
        f":{ME}",
        "abc",
        f"{CUSTOMER}x:{ME}",
        f" {CUSTOMER}:{ME}",
        f"{CUSTOMER}:{ME}\n",
        "١٢٣:" + ME,  # digits of another script
        "1" * 20,  # over 19 digits
        f"{'9' * 20}:{ME}",
        f"{CUSTOMER}_{ME}",
    ],
)
def test_canonical_refuses_what_is_not_a_one_to_one_of_ours(conversation: str) -> None:
    assert convert.canonical(conversation, ME) is None


@given(st.text(max_size=60))
def test_canonical_is_total(text: str) -> None:
    got = convert.canonical(text, ME)
    if got is not None:
        low, high = got.split("-")
        assert ME in (low, high) and int(low) < int(high)


# --- sealed_from_activity ----------------------------------------------------------------------------------------


def activity(payload: Any) -> dict[str, Any]:
    return {"event_type": "chat.received", "filter": {"user_id": ME}, "payload": payload}


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "a string",
        [genuine()],
        {},
        {"encoded_event": None},
        {"encoded_event": ""},
        {"encoded_event": 12345},
        {"encoded_event": [genuine()]},
        {"encoded_event": {"b64": genuine()}},
        {"encoded_event": "not base64 ***"},
        {"encoded_event": "A" * (convert.MAX_EVENT_CHARS + 4)},
        {"encoded_event": genuine(conversation="1777000000000000001:1777000000000000002")},  # strangers
        {"encoded_event": genuine(conversation=f"g{CUSTOMER}")},  # a group
        {"encoded_event": genuine(), "conversation_key_change_event": ""},
        {"encoded_event": genuine(), "conversation_key_change_event": "%%%"},
        {"encoded_event": genuine(), "conversation_key_change_event": 7},
    ],
)
def test_sealed_from_activity_refuses_malformed_payloads(payload: Any) -> None:
    with pytest.raises(BadPayload) as refused:
        convert.sealed_from_activity(activity(payload), me=ME, account="acme_help")
    assert refused.value.status == 400


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.sampled_from(["encoded_event", "conversation_key_change_event", "x"]), json_values))
def test_sealed_from_activity_raises_only_bad_payload(payload: dict[str, Any]) -> None:
    with contextlib.suppress(BadPayload):
        convert.sealed_from_activity(activity(payload), me=ME, account="acme_help")


def test_sealed_from_activity_gives_the_key_event_then_the_message() -> None:
    key = genuine("key-1", conversation=CUSTOMER)  # the other user's id alone: X's short form
    found = convert.sealed_from_activity(
        activity({"encoded_event": genuine("msg-1"), "conversation_key_change_event": key}), me=ME, account="acme"
    )
    low, high = sorted((ME, CUSTOMER), key=int)
    assert [(s.event_id, s.conversation, s.account) for s in found] == [
        ("key-1", f"{low}-{high}", "acme"),
        ("msg-1", f"{low}-{high}", "acme"),
    ]
    assert found[1].encoded_event == genuine("msg-1")


# --- to_message --------------------------------------------------------------------------------------------------


def opened(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "Message",
        "sender_id": CUSTOMER,
        "verified": True,
        "created_at_msec": "1700000000000",
        "content": {"content_type": "Text", "text": "where is my order", "attachments": [{"a": 1}]},
    }
    return base | changes


def message(event: dict[str, Any]) -> Any:
    return convert.to_message(
        event,
        event_id="m-1",
        conversation=f"{ME}-{CUSTOMER}",
        me=ME,
        account="acme_help",
        customer=Customer(id=CUSTOMER, name=CUSTOMER),
    )


def test_to_message_keeps_a_verified_message() -> None:
    msg = message(opened())
    assert msg.text == "where is my order" and not msg.unverified and msg.via == "xchat"
    assert msg.attachments == ("0",) and msg.sent_at.year == 2023 and not msg.from_brand
    assert message(opened(reply_preview_validation="Valid")).unverified is False
    assert message(opened(sender_id=ME)).from_brand is True


@pytest.mark.parametrize(
    "changes",
    [
        {"verified": False},
        {"verified": None},
        {"verified": "true"},  # only the boolean counts
        {"verified": 1},
        {"reply_preview_validation": "Invalid"},
        {"reply_preview_validation": "Forged"},
        {"reply_preview_validation": None},
        {"verified": False, "reply_preview_validation": "Valid"},
    ],
)
def test_to_message_marks_unverified_and_shows_nothing(changes: dict[str, Any]) -> None:
    msg = message(opened(**changes))
    assert msg.unverified is True and msg.text == "" and msg.attachments == ()


@pytest.mark.parametrize("kind", ["KeyChange", "MessageFailure", None, "message"])
def test_to_message_ignores_other_event_types(kind: str | None) -> None:
    assert message(opened(type=kind)) is None


@given(st.one_of(st.none(), st.text(max_size=12), st.integers(), st.floats(allow_nan=True)))
def test_a_bad_timestamp_never_raises(msec: Any) -> None:
    assert message(opened(created_at_msec=msec)).sent_at is not None
