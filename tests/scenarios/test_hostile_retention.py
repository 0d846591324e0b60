"""Hostile and careless input against what is stored: Slack's verification token, other channels' talk."""

from __future__ import annotations

import json

from sqlmodel import select

from bridge.sandbox.demo import KIM, MARIA, SAM
from bridge.sandbox.harness import CHANNEL, TEAM_CHANNEL, Sandbox, wait_for
from bridge.store.tables import SlackEvent


def stored(box: Sandbox, channel: str, ts: str) -> str:
    with box.bridge.ctx.db.read() as s:
        return s.exec(select(SlackEvent.payload).where(SlackEvent.dedupe_key == f"msg:{channel}:{ts}")).one()


def test_slacks_verification_token_and_envelope_are_never_stored(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "hello")
    ts = box.thread_with("hello")
    reply_ts, _ = box.slack.post_as_user(SAM, CHANNEL, "Hi!", thread_ts=ts)
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, reply_ts), what="✅")
    payload = json.loads(stored(box, CHANNEL, reply_ts))
    assert "verification-token" not in json.dumps(payload)
    assert set(payload) == {"event"} and payload["event"]["text"] == "Hi!"


def test_talk_in_other_channels_the_bot_is_in_keeps_only_its_dedupe_key(box: Sandbox) -> None:
    root, _ = box.slack.post_as_user(KIM, TEAM_CHANNEL, "salary review: Kim 85k")
    reply, _ = box.slack.post_as_user(KIM, TEAM_CHANNEL, "and Sam 80k", thread_ts=root)
    top, _ = box.slack.post_as_user(KIM, CHANNEL, "lunch anyone?")  # the desk channel, but not in a thread
    assert json.loads(stored(box, TEAM_CHANNEL, root)) == {"ignored": "not a thread reply"}
    assert json.loads(stored(box, TEAM_CHANNEL, reply)) == {"ignored": "outside the desk channels"}
    assert json.loads(stored(box, CHANNEL, top)) == {"ignored": "not a thread reply"}
    # a retry of one of them still stores nothing: the key is kept
    assert box.slack.deliver(
        {"type": "message", "channel": TEAM_CHANNEL, "user": KIM, "text": "and Sam 80k", "ts": reply, "thread_ts": root}
    ) == [200]
    with box.bridge.ctx.db.read() as s:
        assert len(s.exec(select(SlackEvent).where(SlackEvent.dedupe_key == f"msg:{TEAM_CHANNEL}:{reply}")).all()) == 1
