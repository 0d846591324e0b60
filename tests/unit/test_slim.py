"""slim(envelope): only what the processor reads is stored, and processing it decides exactly as the full one."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge import thread_messages
from bridge.slack.slim import slim

BOT = "U0BOT"
PREFIXES = ("//", "note:")
DESK = frozenset({"C0DESK"})
TOKEN = "Jhj5dZrVaK7ZwHHjRyZWjbDl"  # Slack's verification token, in every envelope

texts = st.one_of(
    st.none(), st.sampled_from(["hi", "// note", "note: x", f"<@{BOT}> assign", "", "same"]), st.text(max_size=12)
)
tss = st.sampled_from(["1700000000.000100", "1700000000.000200", "", None])
junk = st.dictionaries(
    st.sampled_from(
        [
            "blocks",
            "files",
            "team",
            "client_msg_id",
            "attachments",
            "edited",
            "user_profile",
            "event_ts",
            "channel_type",
        ]
    ),
    st.text(max_size=8),
    max_size=4,
)


def message(with_text: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    fields: dict[str, Any] = {
        "ts": tss,
        "thread_ts": tss,
        "bot_id": st.sampled_from(["B0X", ""]),
        "app_id": st.sampled_from(["A0X", ""]),
        "user": st.sampled_from(["U0AGENT1", ""]),
    }
    if with_text:
        fields["text"] = texts
    return st.fixed_dictionaries({}, optional=fields).flatmap(lambda d: junk.map(lambda j: {**j, **d}))


events = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["message", "app_mention"])},
        optional={
            "subtype": st.sampled_from([None, "thread_broadcast", "file_share", "bot_message", "channel_join"]),
            "channel": st.sampled_from(["C0DESK", "C0ELSEWHERE"]),
            "ts": tss,
            "thread_ts": tss,
            "text": texts,
            "user": st.sampled_from(["U0AGENT1", "U0OUTSIDER", ""]),
            "bot_id": st.sampled_from([None, "B0X"]),
            "app_id": st.sampled_from([None, "A0X"]),
        },
    ).flatmap(lambda d: junk.map(lambda j: {**j, **d})),
    st.fixed_dictionaries(
        {
            "type": st.just("message"),
            "subtype": st.sampled_from(["message_changed", "message_deleted"]),
            "channel": st.sampled_from(["C0DESK", "C0ELSEWHERE"]),
        },
        optional={"message": message(), "previous_message": message()},
    ),
    st.fixed_dictionaries(
        {"type": st.just("app_home_opened"), "user": st.just("U0AGENT1")},
        optional={"tab": st.sampled_from(["home", "messages"]), "view": st.just({"id": "V1"})},
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["reaction_added", "member_joined_channel"]), "user": st.just("U0AGENT1")}
    ),
)


def envelope_of(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "token": TOKEN,
        "team_id": "T0SANDBOX",
        "api_app_id": "A0DMB",
        "type": "event_callback",
        "event_id": "Ev0123",
        "event_time": 1700000000,
        "event_context": "4-eyJldCI6...",
        "authorizations": [{"team_id": "T0SANDBOX", "user_id": BOT, "is_bot": True}],
        "event": event,
    }


def processed(stored: dict[str, Any]) -> tuple[thread_messages.Action, tuple[object, ...]]:
    """What the processor reads of a stored payload (bridge/processor.py): the classification, and for
    app_home_opened the user and tab."""
    event = stored.get("event", stored)
    home = (event.get("type"), event.get("user"), event.get("tab", "home"))
    return thread_messages.classify(event, BOT, PREFIXES), home if event.get("type") == "app_home_opened" else ()


@settings(max_examples=400, deadline=None)
@given(events)
def test_processing_a_slimmed_envelope_decides_as_the_full_one(event: dict[str, Any]) -> None:
    full = envelope_of(event)
    kept = slim(full, DESK)
    assert json.loads(json.dumps(kept)) == kept
    action, home = processed(full)
    slim_action, slim_home = processed(kept)
    if event["type"] not in ("message", "app_mention", "app_home_opened"):  # no listener stores these anyway
        assert kept == {"ignored": "event type not used"} and isinstance(slim_action, thread_messages.Ignore)
    elif "event" in kept or isinstance(action, thread_messages.Ignore):
        assert (slim_action, slim_home) == (action, home)  # the same decision, the same stored outcome
    else:  # a message outside the desk channels: no conversation lives there, so it would do nothing either
        assert kept == {"ignored": "outside the desk channels"}
        assert getattr(action, "channel", None) not in DESK and isinstance(slim_action, thread_messages.Ignore)


@settings(max_examples=200, deadline=None)
@given(events)
def test_the_token_and_unrelated_fields_are_gone(event: dict[str, Any]) -> None:
    kept = slim(envelope_of(event), DESK)
    assert set(kept) in ({"event"}, {"ignored"})
    assert TOKEN not in json.dumps(kept)
    inner = kept.get("event", {})
    assert set(inner) <= {
        "type",
        "subtype",
        "channel",
        "ts",
        "thread_ts",
        "user",
        "text",
        "bot_id",
        "app_id",
        "message",
        "previous_message",
        "tab",
    }
    for key in ("message", "previous_message"):
        if isinstance(inner.get(key), dict):
            assert set(inner[key]) <= {"ts", "thread_ts", "bot_id", "app_id", "text"}
            if "text" in inner[key]:
                assert inner[key]["text"].startswith("sha256:")  # an edit's texts are compared, never kept


def test_a_reply_in_a_desk_thread_keeps_what_is_relayed() -> None:
    event = {
        "type": "message",
        "channel": "C0DESK",
        "user": "U0AGENT1",
        "text": "On its way!",
        "ts": "2.0",
        "thread_ts": "1.0",
        "blocks": [{"type": "rich_text"}],
        "client_msg_id": "abc",
        "team": "T0SANDBOX",
    }
    assert slim(envelope_of(event), DESK) == {
        "event": {
            "type": "message",
            "channel": "C0DESK",
            "user": "U0AGENT1",
            "text": "On its way!",
            "ts": "2.0",
            "thread_ts": "1.0",
        }
    }


def test_other_channels_top_level_messages_and_home_keep_only_what_is_needed() -> None:
    reply = {"type": "message", "channel": "C0RANDOM", "user": "U1", "text": "gossip", "ts": "2.0", "thread_ts": "1.0"}
    assert slim(envelope_of(reply), DESK) == {"ignored": "outside the desk channels"}
    assert slim(envelope_of(reply), None) != {}  # no desk channels known: kept
    top = {"type": "message", "channel": "C0DESK", "user": "U1", "text": "lunch?", "ts": "2.0"}
    assert slim(envelope_of(top), DESK) == {"ignored": "not a thread reply"}
    home = {"type": "app_home_opened", "user": "U1", "tab": "home", "view": {"blocks": ["big"]}, "event_ts": "1"}
    assert slim(envelope_of(home), DESK) == {"event": {"type": "app_home_opened", "user": "U1", "tab": "home"}}
    assert slim({"token": TOKEN}, DESK) == {"ignored": "not an event"}
    assert thread_messages.classify({}, BOT, PREFIXES) == thread_messages.Ignore("no content")  # pruned by retention
