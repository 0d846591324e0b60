"""The X Chat Thrift codec (bridge.sandbox.xchat_thrift): chatxdk's own server-encoded vectors parse and re-encode
byte for byte, malformed input is a ValueError, and events the codec builds from what a client POSTs decrypt
and verify with the real chatxdk on the other side."""

from __future__ import annotations

import dataclasses
import json
import os
import struct
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.sandbox import xchat_thrift as xt
from bridge.sandbox import xchat_wire as wire

ROOT = Path(__file__).resolve().parents[2]
VECTOR_EVENTS = [
    "event_message_b64",
    "event_reply_valid_b64",
    "event_reply_forged_b64",
    "event_key_change_b64",
    "event_failure_b64",
]


def _specs_dir() -> Path | None:
    candidates = [Path(os.environ["DMBRIDGE_SPECS"])] if os.environ.get("DMBRIDGE_SPECS") else []
    candidates += [p / "shared" / "specs" for p in ROOT.parents]
    return next((c for c in candidates if (c / "x" / "chat-xdk-sdk-vectors.json").is_file()), None)


@cache
def _load_vectors(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def vectors() -> dict[str, Any]:
    base = _specs_dir()
    if base is None:
        if os.environ.get("CI") == "true":  # CI always has the specs: a missing one there is a broken set-up
            pytest.fail("x/chat-xdk-sdk-vectors.json not found under CI (../shared/specs or $DMBRIDGE_SPECS)")
        pytest.skip("x/chat-xdk-sdk-vectors.json not found (../shared/specs or $DMBRIDGE_SPECS)")
    return _load_vectors(base / "x" / "chat-xdk-sdk-vectors.json")


# --- the vectors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VECTOR_EVENTS)
def test_vector_events_parse_and_re_encode_byte_identically(name: str) -> None:
    b64 = vectors()[name]
    event = xt.parse_event(b64)
    assert xt.encode_event(event) == b64
    raw = xt.b64decode(b64)
    assert wire.encode_struct(wire.decode_struct(raw)) == raw
    assert event.extra == () and event.detail is not None and len(event.detail.set_fields()) == 1


def test_vector_fields_have_the_idl_names() -> None:
    v = vectors()
    msg = xt.parse_event(v["event_message_b64"])
    assert (msg.sequence_id, msg.sender_id, msg.conversation_id, msg.created_at_msec) == (
        "1",
        v["event_sender_id"],
        v["event_conversation_id"],
        "1700000000000",
    )
    assert msg.detail is not None and msg.detail.message_create_event is not None
    create = msg.detail.message_create_event
    assert create.conversation_key_version == v["event_conversation_key_version"] and create.should_notify is True
    assert create.contents and len(create.contents) > 40  # nonce(24) ‖ tag(16) ‖ ciphertext
    sig = msg.message_event_signature
    assert sig is not None and sig.public_key_version == v["event_signing_key_version"]
    assert sig.signature_version == "7"

    change = xt.parse_event(v["event_key_change_b64"]).detail
    assert change is not None and change.conversation_key_change_event is not None
    keys = change.conversation_key_change_event.conversation_participant_keys
    assert keys is not None and [(k.user_id, k.public_key_version) for k in keys] == [("1111", "1")]

    failure = xt.parse_event(v["event_failure_b64"])
    assert failure.message_event_signature is None and failure.detail is not None
    assert failure.detail.message_failure_event == xt.MessageFailureEvent(failure_type=12, rate_limit_tier=3)


def test_vector_parts_rebuild_the_vector_event() -> None:
    """What a client would POST (the create event + its signature) plus the server's fields is the vector."""
    b64 = vectors()["event_message_b64"]
    e = xt.parse_event(b64)
    assert e.detail is not None and e.detail.message_create_event is not None and e.message_event_signature
    built = xt.build_message_event(
        sequence_id="1",
        message_id=str(e.message_id),
        sender_id="1111",
        conversation_id="1111:2222",
        created_at_msec=1700000000000,
        message_create_event=xt.b64encode(e.detail.message_create_event.encode()),
        signature=xt.b64encode(e.message_event_signature.encode()),
    )
    assert built == b64


def test_vector_garbage_and_every_truncation_raise() -> None:
    v = vectors()
    with pytest.raises(ValueError):
        xt.parse_event(v["event_garbage_b64"])
    raw = xt.b64decode(v["event_key_change_b64"])
    for n in range(len(raw)):
        with pytest.raises(ValueError):
            xt.parse_event(xt.b64encode(raw[:n]))
    with pytest.raises(ValueError, match="after the end"):
        xt.parse_event(xt.b64encode(raw + b"\x00"))


# --- malformed input (no specs needed) --------------------------------------------------------------------------


def _field(ttype: int, fid: int, payload: bytes) -> bytes:
    return struct.pack(">bh", ttype, fid) + payload


def _string(s: bytes) -> bytes:
    return struct.pack(">i", len(s)) + s


@pytest.mark.parametrize(
    "raw",
    [
        b"",  # nothing
        _field(wire.T_STRING, 1, struct.pack(">i", 1000) + b"abc") + b"\x00",  # string longer than the input
        _field(wire.T_STRING, 1, struct.pack(">i", -1)) + b"\x00",  # negative length
        _field(wire.T_LIST, 2, bytes([wire.T_I32]) + struct.pack(">i", 2**31 - 1)) + b"\x00",  # huge count
        _field(wire.T_LIST, 2, bytes([99]) + struct.pack(">i", 0)) + b"\x00",  # unknown element type
        _field(99, 1, b"") + b"\x00",  # unknown wire type
        _field(wire.T_BOOL, 1, b"\x02") + b"\x00",  # bool other than 0/1
        _field(wire.T_STRING, 1, _string(b"a")) + _field(wire.T_STRING, 1, _string(b"b")) + b"\x00",  # repeated
        _field(wire.T_STRING, 0, _string(b"a")) + b"\x00",  # field id 0
        _field(wire.T_I32, 1, struct.pack(">i", 5)) + b"\x00",  # sequence_id as an i32
        _field(wire.T_STRING, 3, _string(b"\xff\xfe")) + b"\x00",  # sender_id not UTF-8
        _field(wire.T_STRUCT, 7, b"\x00") + b"\x00",  # detail: a union with no member
    ],
)
def test_malformed_events_raise_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        xt.parse_event(xt.b64encode(raw))


def test_nesting_and_size_are_capped() -> None:
    deep = b"".join(_field(wire.T_STRUCT, 1, b"") for _ in range(wire.MAX_DEPTH + 1)) + b"\x00" * (wire.MAX_DEPTH + 2)
    with pytest.raises(ValueError, match="deep"):
        wire.decode_struct(deep)
    with pytest.raises(ValueError, match="limit"):
        wire.decode_struct(b"\x00" * (wire.MAX_BYTES + 1))
    with pytest.raises(ValueError):
        xt.parse_event("A" * (wire.MAX_BYTES * 2))
    for text in ("not base64!", "QQ===", "Q"):
        with pytest.raises(ValueError):
            xt.parse_event(text)


def test_a_union_with_two_members_is_refused_both_ways() -> None:
    two = xt.MessageEventDetail(
        message_create_event=xt.MessageCreateEvent(contents=b"x", conversation_key_version="1"),
        message_failure_event=xt.MessageFailureEvent(failure_type=2),
    )
    with pytest.raises(ValueError, match="exactly one"):
        two.encode()
    with pytest.raises(ValueError, match="exactly one"):
        xt.MessageEventDetail.decode(wire.encode_struct(wire.TStruct(tuple(two.to_struct().fields))))


def test_client_parts_are_validated() -> None:
    with pytest.raises(ValueError, match="contents"):
        xt.parse_message_create_event(xt.b64encode(xt.MessageCreateEvent(conversation_key_version="1").encode()))
    with pytest.raises(ValueError, match="signature_version"):
        xt.parse_message_event_signature(
            xt.b64encode(xt.MessageEventSignature(signature="c2ln", public_key_version="1").encode())
        )
    failure = xt.b64encode(xt.MessageEventDetail(message_failure_event=xt.MessageFailureEvent()).encode())
    with pytest.raises(ValueError, match="not a conversation key change"):
        xt.build_key_change_event(
            sequence_id="1",
            message_id="m",
            sender_id="1",
            conversation_id="1:2",
            created_at_msec=1,
            key_change=failure,
            signature=None,
        )
    with pytest.raises(ValueError):
        xt.signature_from_json({"signature": "x", "public_key_version": 1, "signature_version": "7"})
    with pytest.raises(ValueError):
        xt.participant_keys_from_json([{"user_id": "1", "encrypted_conversation_key": "k"}])


def test_unknown_fields_are_kept_and_written_back() -> None:
    """A newer SDK's field (here an unknown 200, and ttl/franking the IDL names) survives parse → build."""
    create = xt.MessageCreateEvent(
        contents=b"\x01" * 48,
        conversation_key_version="9",
        should_notify=False,
        ttl_msec=86_400_000,
        franking_data=xt.FrankingData(franking_tag=b"t", encrypted_media_hashes=(b"a", b"b")),
        extra=((200, wire.T_MAP, wire.TMap(wire.T_STRING, wire.T_DOUBLE, ((b"k", 1.5),))),),
    )
    raw = create.encode()
    again = xt.parse_message_create_event(xt.b64encode(raw))
    assert again == create and again.encode() == raw
    event = xt.parse_event(
        xt.build_message_event(
            sequence_id="5",
            message_id="m",
            sender_id="1",
            conversation_id="1:2",
            created_at_msec="7",
            message_create_event=xt.b64encode(raw),
            signature=None,
        )
    )
    assert event.detail is not None and event.detail.message_create_event == create


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_parse_or_raise_value_error(data: bytes) -> None:
    try:
        event = xt.parse_event(xt.b64encode(data))
    except ValueError:
        return
    assert xt.parse_event(xt.encode_event(event)) == event


# --- round trip with real crypto -------------------------------------------------------------------------------


@dataclasses.dataclass
class Party:
    user_id: str
    chat: Any
    public_key: dict[str, str]  # as GET /2/users/public_keys returns it


def _party(user_id: str) -> Party:
    chat_xdk = pytest.importorskip("chat_xdk")
    chat = chat_xdk.Chat()
    reg = chat.generate_keypairs()  # the body of POST /2/users/{id}/public_keys: public_key{...}, version, …
    chat.set_identity(user_id, reg.version)  # the version X reports for the registered key
    key = {
        "user_id": user_id,
        "public_key_version": reg.version,
        "public_key": reg.public_key.public_key,
        "signing_public_key": reg.public_key.signing_public_key,
        "identity_public_key_signature": reg.public_key.identity_public_key_signature,
    }
    return Party(user_id, chat, key)


def _wrapping_keys(*parties: Party) -> list[dict[str, str]]:
    """What prepare_conversation_key_change takes: user_id, identity public_key, key_version."""
    return [
        {
            "user_id": p.user_id,
            "public_key": p.public_key["public_key"],
            "key_version": p.public_key["public_key_version"],
        }
        for p in parties
    ]


def _signing_keys(*parties: Party) -> list[dict[str, str]]:
    """What decrypt_event(s) take; note ``public_key`` is the *signing* key here."""
    return [
        {
            "user_id": p.user_id,
            "public_key_version": p.public_key["public_key_version"],
            "public_key": p.public_key["signing_public_key"],
            "identity_public_key": p.public_key["public_key"],
            "identity_public_key_signature": p.public_key["identity_public_key_signature"],
            "signing_public_key": p.public_key["signing_public_key"],
        }
        for p in parties
    ]


def _server_key_change(sender: Party, prepared: dict[str, Any], sequence_id: str) -> str:
    """What X makes of POST /2/chat/conversations/{id}/keys built from ``prepared``."""
    body = {
        "conversation_key_version": prepared["conversation_key_version"],
        "conversation_participant_keys": [
            {
                "user_id": k["user_id"],
                "encrypted_conversation_key": k["encrypted_key"],
                "public_key_version": k["public_key_version"],
            }
            for k in prepared["participant_keys"]
        ],
        "action_signatures": [
            {
                "message_id": s["message_id"],
                "encoded_message_event_detail": s["encoded_message_event_detail"],
                "message_event_signature": {
                    "signature": s["signature"],
                    "public_key_version": s["public_key_version"],
                    "signature_version": s["signature_version"],
                },
            }
            for s in prepared["action_signatures"]
        ],
    }
    (action,) = body["action_signatures"]
    change = xt.parse_message_event_detail(action["encoded_message_event_detail"]).conversation_key_change_event
    assert change is not None
    assert change.conversation_key_version == body["conversation_key_version"]
    assert change.conversation_participant_keys == xt.participant_keys_from_json(body["conversation_participant_keys"])
    return xt.build_key_change_event(
        sequence_id=sequence_id,
        message_id=action["message_id"],
        sender_id=sender.user_id,
        conversation_id=prepared["conversation_id"],
        created_at_msec=1_700_000_000_000,
        key_change=change,
        signature=xt.signature_from_json(action["message_event_signature"]),
    )


def _server_message(sender: Party, payload: Any, sequence_id: str, conversation_id: str = "100:200") -> str:
    """What X makes of POST /2/chat/conversations/{id}/messages with the SendPayload's fields."""
    body = {
        "message_id": payload.message_id,
        "encoded_message_create_event": payload.encrypted_content,
        "encoded_message_event_signature": payload.encoded_event_signature,
    }
    return xt.build_message_event(
        sequence_id=sequence_id,
        message_id=body["message_id"],
        sender_id=sender.user_id,
        conversation_id=conversation_id,
        created_at_msec=1_700_000_000_001,
        message_create_event=body["encoded_message_create_event"],
        signature=body["encoded_message_event_signature"],
    )


def test_round_trip_with_chatxdk() -> None:
    brand, customer = _party("100"), _party("200")
    signing = _signing_keys(brand, customer)

    # The customer opens the conversation: a fresh key wrapped for both, signed, POSTed to …/200… /keys.
    prepared = customer.chat.prepare_conversation_key_change(_wrapping_keys(customer, brand))
    assert prepared["conversation_id"] == "100:200" and len(prepared["action_signatures"]) == 1
    key_event = _server_key_change(customer, prepared, "10")
    version = prepared["conversation_key_version"]

    # The brand recovers the key from the event the codec built, three ways.
    extracted = brand.chat.extract_conversation_keys([key_event])
    assert extracted["keys"] == {version: prepared["conversation_key"]} and extracted["latest_version"] == version
    mine = next(k for k in prepared["participant_keys"] if k["user_id"] == "100")
    assert brand.chat.decrypt_conversation_key(mine["encrypted_key"]) == prepared["conversation_key"]
    key_change = brand.chat.decrypt_event(key_event, None, signing)
    assert (key_change["type"], key_change["verified"], key_change["key_version"]) == ("KeyChange", True, version)

    # The customer writes; the brand reads it, verified, alone and in a batch with the key change.
    sent = customer.chat.encrypt_message(
        "100:200", "hello brand", conversation_key=prepared["conversation_key"], conversation_key_version=version
    )
    assert (sent.signature_info.signature_version, sent.conversation_key_version) == ("7", version)
    event = _server_message(customer, sent, "11")
    got = brand.chat.decrypt_event(event, extracted["keys"], signing)
    assert (got["type"], got["content"]["text"], got["verified"], got["sender_id"]) == (
        "Message",
        "hello brand",
        True,
        "200",
    )
    batch = brand.chat.decrypt_events([key_event, event], signing)
    assert batch["errors"] == {} and [m["event"]["verified"] for m in batch["messages"]] == [True, True]

    # The brand, from a fresh process holding only its exported key blob, replies; the customer verifies it.
    restored = pytest.importorskip("chat_xdk").Chat()
    restored.import_keys(bytes(brand.chat.export_keys()), version=brand.public_key["public_key_version"])
    restored.set_identity("100", brand.public_key["public_key_version"])
    reply = restored.encrypt_message(
        "200", "hi, how can we help?", conversation_key=extracted["keys"][version], conversation_key_version=version
    )
    back = customer.chat.decrypt_event(
        _server_message(brand, reply, "12"), {version: prepared["conversation_key"]}, signing
    )
    assert (back["content"]["text"], back["verified"]) == ("hi, how can we help?", True)


def test_tampered_events_raise_or_are_not_verified() -> None:
    """Default policy (reject unverified): decrypt_event raises ValueError; with it off: ``verified`` False."""
    brand, customer = _party("100"), _party("200")
    signing = _signing_keys(brand, customer)
    prepared = customer.chat.prepare_conversation_key_change(_wrapping_keys(customer, brand))
    keys = {prepared["conversation_key_version"]: prepared["conversation_key"]}
    kw = {
        "conversation_key": prepared["conversation_key"],
        "conversation_key_version": prepared["conversation_key_version"],
    }
    sent = customer.chat.encrypt_message("100:200", "genuine", **kw)

    sig = xt.parse_message_event_signature(sent.encoded_event_signature)
    assert sig.signature is not None
    flipped = dataclasses.replace(
        sig, signature=sig.signature[:5] + ("B" if sig.signature[5] == "A" else "A") + sig.signature[6:]
    )
    forged_sig = xt.build_message_event(
        sequence_id="11",
        message_id=sent.message_id,
        sender_id="200",
        conversation_id="100:200",
        created_at_msec=1,
        message_create_event=sent.encrypted_content,
        signature=flipped,
    )
    impostor = brand.chat.encrypt_message("100:200", "not from the customer", **kw)  # brand's key, claimed as 200
    tampered = [
        forged_sig,
        _server_message(customer, impostor, "12"),
        _server_message(customer, sent, "13", conversation_id="100-200"),  # the signature covers the colon form
        xt.build_message_event(
            sequence_id="14",
            message_id="another-id",
            sender_id="200",
            conversation_id="100:200",
            created_at_msec=1,
            message_create_event=sent.encrypted_content,
            signature=sent.encoded_event_signature,
        ),
    ]
    for event in tampered:
        with pytest.raises(ValueError, match="Signature verification failed"):
            brand.chat.decrypt_event(event, keys, signing)
    lenient = pytest.importorskip("chat_xdk").Chat()
    lenient.set_reject_unverified(False)
    got = lenient.decrypt_event(forged_sig, keys, signing)
    assert (got["content"]["text"], got["verified"]) == ("genuine", False)
    # Server fields outside the signature (sequence id, created_at) may differ: still verified.
    ok = _server_message(customer, sent, "999")
    assert brand.chat.decrypt_event(ok, keys, signing)["verified"] is True
