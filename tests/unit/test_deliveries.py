"""Typed deliveries: every kind survives the payload column, keys come only from the types, bad rows are refused."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.deliveries import (
    DM,
    KINDS,
    AutoAssign,
    Card,
    CardUpdate,
    ChannelNotice,
    Delete,
    Delivery,
    Ephemeral,
    Home,
    Mirror,
    Notice,
    Profile,
    Reaction,
    TemplatePost,
    Unreaction,
    Upload,
)
from bridge.deliveries_playbook import AutoReplyDue, CrmPost, TranscriptUpload
from bridge.store.outbox import decode, encode

EXAMPLES: list[Delivery] = [
    Card.of(7),
    CardUpdate.after_audit(7, 12, reopened=True),
    AutoAssign.again(7, "U1", 1800000000.5),
    Mirror.part(7, ("x", "acme", "m1"), 0, "hi", [{"type": "section"}], from_brand=True),
    Mirror.part(7, ("x", "acme", "m2"), 1, "hi", [], from_brand=False),
    *Notice.parts(7, ("line", 3), ["one", "two"]),
    *TemplatePost.parts(7, ("tpl", 4), ["template"]),
    Reaction.on(7, "C1", "1.2", "white_check_mark"),
    Unreaction.on(7, "C1", "1.2", "hourglass_flowing_sand"),
    ChannelNotice.escalation(7, 9, "C0LEGAL", "escalated"),
    ChannelNotice.credential("x", 100.0, False, "C0INBOX", "refused"),
    Ephemeral.to("C1", "U1", "only you", "1.2"),
    Home.refresh("U1", ("opened", 5)),
    Delete.message(7, "C1", "1.2"),
    *DM.relay(7, "C1", "5.6", ["part one", "part two"], "U1"),
    DM.template(7, TemplatePost.parts(7, ("tpl", 4), ["t"])[0], "Dear customer", "U1", "C1"),
    Profile.daily(7, "42", 1800000000.0),
    Upload.of(7, ("instagram", "1784", "mid.1"), "mid.1:0", "https://cdn.example/p.jpg", "p.jpg", file_kind="image"),
    CrmPost.after_audit(7, 12, "qualified", 120000, "EUR", "U1", 1800000000.0),
    TranscriptUpload.asked(7, 13, "U1"),
    AutoReplyDue.after_profile(7, "messenger:m_1", "welcome", "welcome", {"next_open": "Monday at 09:00"}, 1.8e9),
]


def test_the_examples_cover_every_kind() -> None:
    assert {type(d) for d in EXAMPLES} == set(KINDS.values())


def _id(delivery: Delivery) -> str:
    """The same on every run (an ephemeral's key is random), so parallel workers collect the same tests."""
    return delivery.kind if delivery.kind == "ephemeral" else f"{delivery.kind}:{delivery.key}"


@pytest.mark.parametrize("delivery", EXAMPLES, ids=_id)
def test_every_kind_round_trips_through_its_row(delivery: Delivery) -> None:
    again = decode(delivery.kind, delivery.key, delivery.conversation_id, encode(delivery))
    assert again == delivery and type(again) is type(delivery)
    assert delivery.target == ("platform" if isinstance(delivery, DM | Profile | CrmPost) else "slack")


def test_lanes_keep_each_side_of_a_conversation_in_order() -> None:
    assert Card.of(7).lane == Profile.daily(7, "42", 0).lane == "s:7"  # the profile goes before the card
    assert {d.lane for d in DM.relay(7, "C1", "5.6", ["a", "b"], "U1")} == {"p:7"}
    assert ChannelNotice.credential("x", 1, True, "C0INBOX", "ok").lane == "c:C0INBOX"
    assert Ephemeral.to("C1", "U1", "t").lane == "e:U1" and Home.refresh("U1", (1,)).lane == "h:U1"
    assert Delete.message(7, "C1", "1.2").lane == "d:7"


def test_keys_are_stable_where_dedupe_depends_on_them() -> None:
    """A second enqueue of the same cause must produce the same key (outbox dedupe), across releases too."""
    assert Card.of(7).key == "card:7"
    assert Mirror.part(7, ("x", "acme", "m1"), 2, "t", [], False).key == "mirror:x:acme:m1:2"
    assert [d.key for d in DM.relay(7, "C1", "5.6", ["a", "b"], "U1")] == ["relay:C1:5.6:0", "relay:C1:5.6:1"]
    assert DM.first_relay_key("C1", "5.6") == "relay:C1:5.6:0"
    assert [n.key for n in Notice.parts(7, ("line", 3), ["a", "b", "c"])] == ["line:3", "line:3:part2", "line:3:part3"]
    assert Reaction.on(7, "C1", "1.2", "warning").key == "react:warning:C1:1.2"
    assert Unreaction.on(7, "C1", "1.2", "warning").key == "unreact:warning:C1:1.2"
    assert Ephemeral.to("C1", "U1", "t").key != Ephemeral.to("C1", "U1", "t").key  # each answer is its own


def test_a_reply_knows_its_later_parts_and_a_template_has_none() -> None:
    first, second, third = DM.relay(7, "C1", "5.6", ["a", "b", "c"], "U1")
    assert first.later_parts() == [second.key, third.key] and third.later_parts() == []
    [post] = TemplatePost.parts(7, ("tpl", 4), ["t"])
    template = DM.template(7, post, "Dear customer", "U1", "C1")
    assert template.receipt_key == post.key and template.later_parts() == [] and template.relayed_message is None
    assert first.relayed_message == ("C1", "5.6")
    assert first.receipt("5.6", "white_check_mark") == Reaction.on(7, "C1", "5.6", "white_check_mark")
    assert template.receipt(None, "warning") is None


def test_rows_written_before_the_types_still_decode() -> None:
    """Payloads as an older release stored them (no receipt_key on relays, no echo_of on customer mirrors)."""
    old_dm = json.dumps({"text": "hi", "part": 0, "parts": 1, "slack_channel": "C1", "slack_ts": "5.6", "author": "U1"})
    assert decode("dm", "relay:C1:5.6:0", 7, old_dm) == DM.relay(7, "C1", "5.6", ["hi"], "U1")[0]
    assert decode("card", "card:7", 7, "{}") == Card.of(7)
    assert decode("card_update", "card_update:7:1", 7, "{}") == CardUpdate.after_audit(7, 1)


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("bogus", "{}"),  # an unknown kind
        ("notice", "{}"),  # a required field missing (an erased row's emptied payload)
        ("notice", '{"text": "t", "extra": 1}'),  # a field the type does not have
        ("dm", '{"text": "t", "part": "zero", "parts": 1, "slack_channel": "C1", "slack_ts": null, "author": "U"}'),
        ("home", "[]"),  # not an object
        ("mirror", '{"text": "t", "blocks": "not a list"}'),
    ],
)
def test_malformed_rows_are_refused_with_a_value_error(kind: str, payload: str) -> None:
    with pytest.raises(ValueError):
        decode(kind, "k", 7, payload)


def test_a_wrong_field_type_fails_at_enqueue_not_at_send() -> None:
    with pytest.raises(ValueError):
        encode(Notice("k", 7, 12345))  # type: ignore[arg-type]


@given(
    text=st.text(max_size=200),
    channel=st.from_regex(r"C[A-Z0-9]{1,10}", fullmatch=True),
    ts=st.from_regex(r"\d{1,10}\.\d{6}", fullmatch=True),
    conv=st.integers(1, 2**31),
)
def test_any_text_and_ids_round_trip(text: str, channel: str, ts: str, conv: int) -> None:
    for delivery in (
        *DM.relay(conv, channel, ts, [text or "x"], "U1"),
        ChannelNotice(f"k:{ts}", None, channel, text),
        Ephemeral.to(channel, "U1", text, ts),
        *Notice.parts(conv, ("line", ts), [text]),
    ):
        assert decode(delivery.kind, delivery.key, delivery.conversation_id, encode(delivery)) == delivery


def test_payload_never_holds_the_key_or_conversation() -> None:
    for delivery in EXAMPLES:
        data = json.loads(encode(delivery))
        assert "key" not in data and "conversation_id" not in data
        assert set(data) <= {f.name for f in fields(delivery)}
