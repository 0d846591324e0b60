from typing import Any

import pytest

from bridge.domain import Limits
from bridge.slack.markup import slack_to_plain
from bridge.thread_messages import Changed, Command, Ignore, Note, Relay, classify, platform_parts

BOT = "U0BOT"
PREFIXES = ("//", "note:")


def reply(**kw: Any) -> dict[str, Any]:
    event = {
        "type": "message",
        "user": "U0AGENT",
        "text": "hello",
        "ts": "2.0",
        "thread_ts": "1.0",
        "channel": "C1",
        "parent_user_id": BOT,
    }
    event.update(kw)
    return event


def test_a_human_thread_reply_is_relayed() -> None:
    assert classify(reply(), BOT, PREFIXES) == Relay("C1", "1.0", "2.0", "U0AGENT", "hello")
    assert isinstance(classify(reply(subtype="thread_broadcast"), BOT, PREFIXES), Relay)


@pytest.mark.parametrize("text", ["// internal", "note: vip", "  NOTE: caps", "//"])
def test_notes_stay_in_slack(text: str) -> None:
    assert isinstance(classify(reply(text=text), BOT, PREFIXES), Note)


def test_mentioning_the_bot_is_a_command() -> None:
    assert isinstance(classify(reply(text="<@U0BOT> help"), BOT, PREFIXES), Command)
    assert isinstance(classify(reply(type="app_mention", text="hey"), BOT, PREFIXES), Command)


@pytest.mark.parametrize(
    "event",
    [
        reply(bot_id="B1"),
        reply(app_id="A1"),
        reply(subtype="bot_message"),
        reply(subtype="channel_join"),
        reply(thread_ts=None),
        reply(thread_ts="2.0"),  # a root with replies
        reply(user=""),
    ],
)
def test_ignored(event: dict[str, Any]) -> None:
    assert isinstance(classify(event, BOT, PREFIXES), Ignore)


def test_edits_and_deletions_are_recognised() -> None:
    changed = {
        "type": "message",
        "subtype": "message_changed",
        "channel": "C1",
        "ts": "9.0",
        "message": {"user": "U0AGENT", "text": "new", "ts": "2.0", "thread_ts": "1.0"},
        "previous_message": {"user": "U0AGENT", "text": "old", "ts": "2.0", "thread_ts": "1.0"},
    }
    assert classify(changed, BOT, PREFIXES) == Changed("C1", "1.0", "2.0", deleted=False)
    deleted = {
        "type": "message",
        "subtype": "message_deleted",
        "channel": "C1",
        "ts": "9.1",
        "deleted_ts": "2.0",
        "previous_message": {"user": "U0AGENT", "text": "x", "ts": "2.0", "thread_ts": "1.0"},
    }
    assert classify(deleted, BOT, PREFIXES) == Changed("C1", "1.0", "2.0", deleted=True)
    reply_count_bump = dict(changed, message={"bot_id": "B0", "ts": "1.0", "thread_ts": "1.0"})
    assert isinstance(classify(reply_count_bump, BOT, PREFIXES), Ignore)


def test_slack_markup_becomes_plain_text() -> None:
    assert (
        slack_to_plain("see <https://acme.example/t/1|tracking> &amp; <https://acme.example>")
        == "see tracking (https://acme.example/t/1) & https://acme.example"
    )
    assert slack_to_plain("ask <@U1|kim> or <!subteam^S1|@billing> in <#C1|help>") == "ask @kim or @billing in #help"
    assert slack_to_plain("1 &lt; 2 &gt; 0") == "1 < 2 > 0"


def test_long_replies_split_to_the_platform_limit() -> None:
    text = ("word " * 2400).strip()  # 11,999 characters
    parts = platform_parts(text, Limits(max_chars=10_000))
    assert len(parts) == 2 and all(len(p) <= 10_000 for p in parts)
    assert "".join(parts).replace(" ", "") == text.replace(" ", "")
    assert platform_parts("   ", Limits(max_chars=10)) == []
