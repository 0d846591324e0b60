"""End to end: the real bridge against the Slack and X emulators, checking both sides and the database."""

from __future__ import annotations

import json
import time

from sqlmodel import select

from bridge.sandbox.demo import JDOE, KIM, MARIA, SAM
from bridge.sandbox.harness import CHANNEL, Sandbox, shown, wait_for
from bridge.store.tables import Conversation, Outbox, SlackEvent
from tests.scenarios.helpers import BoxFactory, customer_posts, loops_ran, polls_ran, thread_with, wait_settled


def conversations(box: Sandbox) -> list[Conversation]:
    with box.bridge.ctx.db.session() as s:
        return list(s.exec(select(Conversation).order_by(Conversation.id)).all())


def test_new_conversation_gets_a_card_and_the_message_under_the_customers_name(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "Hi, my order #5512 never arrived")
    ts = thread_with(box, "never arrived")
    card = box.slack.thread(CHANNEL, ts)[0]
    card_text = shown(card)
    assert "#1" in card_text and "X" in card_text and "Maria López" in card_text and "@maria_l" in card_text
    assert "open" in card_text
    post = wait_for(lambda: customer_posts(box, ts), what="mirrored message")[0]
    assert post["username"] == "Maria López (X)"
    assert post["icon_url"] == "https://pbs.twimg.example/maria_normal.jpg"
    call = next(c for c in box.slack.calls("chat.postMessage") if c.params.get("thread_ts") == ts)
    assert call.params["link_names"] in (False, "false", 0) and call.params["unfurl_links"] in (False, "false", 0)
    (conv,) = conversations(box)
    assert conv.thread_ts == ts and conv.channel == CHANNEL and conv.customer_handle == "maria_l"


def test_same_customer_same_thread_two_customers_two_threads(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "first from maria")
    ts_m = thread_with(box, "first from maria")
    box.x.customer_sends(JDOE, "hello from jdoe")
    box.x.customer_sends(MARIA, "second from maria")
    assert thread_with(box, "second from maria") == ts_m
    assert thread_with(box, "hello from jdoe") != ts_m
    assert len(box.slack.roots(CHANNEL)) == 2
    wait_for(lambda: len(customer_posts(box, ts_m)) == 2, what="both of Maria's messages")
    assert [shown(m) for m in customer_posts(box, ts_m)] == ["first from maria", "second from maria"]


def test_agent_reply_is_delivered_once_even_when_slack_delivers_the_event_four_times(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "where is my parcel?")
    ts = thread_with(box, "where is my parcel")
    reply_ts, statuses = box.slack.post_as_user(
        SAM, CHANNEL, "It left the warehouse today.", thread_ts=ts, deliveries=4
    )
    assert statuses == [200, 200, 200, 200]
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, reply_ts), what="✅")
    assert box.x.received_by(MARIA) == ["It left the warehouse today."]
    with box.bridge.ctx.db.session() as s:
        assert len(s.exec(select(SlackEvent).where(SlackEvent.dedupe_key == f"msg:{CHANNEL}:{reply_ts}")).all()) == 1
        assert len(s.exec(select(Outbox).where(Outbox.target == "platform")).all()) == 1


def test_notes_commands_and_bot_messages_are_not_relayed(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "question")
    ts = thread_with(box, "question")
    box.slack.post_as_user(KIM, CHANNEL, "// she is a VIP", thread_ts=ts)
    box.slack.post_as_user(KIM, CHANNEL, "note: refund approved", thread_ts=ts)
    cmd_ts, _ = box.slack.post_as_user(KIM, CHANNEL, "<@U0BOT> help", thread_ts=ts)
    envelope = {
        "type": "event_callback",
        "team_id": "T0SANDBOX",
        "api_app_id": "A0OTHER",
        "event_id": "EvOTHERBOT",
        "event_time": int(time.time()),
        "event": {
            "type": "message",
            "subtype": "bot_message",
            "bot_id": "B0OTHER",
            "username": "other bot",
            "text": "automated hello",
            "ts": "1999999999.000100",
            "thread_ts": ts,
            "channel": CHANNEL,
        },
    }
    assert box.slack.send_envelope(envelope).status_code == 200
    real_ts, _ = box.slack.post_as_user(SAM, CHANNEL, "Here is the answer.", thread_ts=ts)
    wait_for(lambda: box.x.received_by(MARIA), what="the real reply")
    wait_for(
        lambda: any(
            "@dmbridge claim" in e["text"] and e["user"] == KIM and e["thread_ts"] == ts for e in box.slack.ephemerals
        ),
        what="help, privately, in the thread",
    )
    assert box.x.received_by(MARIA) == ["Here is the answer."]
    with box.bridge.ctx.db.session() as s:
        outcomes = {e.dedupe_key: e.outcome for e in s.exec(select(SlackEvent)).all()}
    assert outcomes[f"msg:{CHANNEL}:{cmd_ts}"] == "command: help"
    assert outcomes[f"msg:{CHANNEL}:1999999999.000100"] == "ignored: bot message"
    assert outcomes[f"msg:{CHANNEL}:{real_ts}"].startswith("relayed")


def test_forged_and_stale_signatures_are_refused_and_store_nothing(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "hello")
    ts = thread_with(box, "hello")
    event = {
        "type": "event_callback",
        "team_id": "T0SANDBOX",
        "api_app_id": "A0BRIDGE",
        "event_id": "EvFORGED",
        "event_time": int(time.time()),
        "event": {
            "type": "message",
            "user": SAM,
            "text": "send me your password",
            "ts": "1999999999.000200",
            "thread_ts": ts,
            "channel": CHANNEL,
        },
    }
    assert box.slack.send_envelope(event, secret="not-the-secret").status_code == 401
    assert box.slack.send_envelope(dict(event, event_id="EvSTALE"), timestamp=int(time.time()) - 600).status_code == 401
    body = json.dumps(event).encode()
    headers = box.slack.sign(body)
    assert box.slack.send_raw(body + b" ", headers).status_code == 401  # body changed after signing
    with box.bridge.ctx.db.session() as s:
        assert not s.exec(select(SlackEvent).where(SlackEvent.event_id.in_(["EvFORGED", "EvSTALE"]))).all()  # type: ignore[union-attr]
    loops_ran(box, "slack-events", "platform-delivery")
    assert box.x.received_by(MARIA) == []


def test_mention_injection_from_a_customer_is_inert(box: Sandbox) -> None:
    hostile = "<!channel> <!here> <@U0AGENT1> <!subteam^S0BILLING> <https://evil.example|click here> & more"
    box.x.customer_sends(MARIA, hostile)
    ts = thread_with(box, "more")
    post = customer_posts(box, ts)[0]
    text = shown(post)
    assert "<" not in text and ">" not in text
    assert "&lt;!channel&gt;" in text and "&amp; more" in text


def test_a_12000_character_reply_goes_out_as_two_dms_in_order(box: Sandbox) -> None:
    box.x.customer_sends(JDOE, "tell me everything")
    ts = thread_with(box, "tell me everything")
    long = " ".join(f"w{i:05d}" for i in range(1715))  # 12,004 characters
    reply_ts, _ = box.slack.post_as_user(SAM, CHANNEL, long, thread_ts=ts)
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, reply_ts), what="✅")
    got = box.x.received_by(JDOE)
    assert len(got) == 2 and all(len(p) <= 10_000 for p in got)
    assert " ".join(p.strip() for p in got) == long


def test_restart_keeps_the_mapping(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "before restart")
    ts = thread_with(box, "before restart")
    box.restart()
    box.x.customer_sends(MARIA, "after restart")
    assert thread_with(box, "after restart") == ts
    assert len(box.slack.roots(CHANNEL)) == 1
    _reply_ts, _ = box.slack.post_as_user(SAM, CHANNEL, "still here", thread_ts=ts)
    wait_for(lambda: box.x.received_by(MARIA) == ["still here"], what="relay after restart")
    # the messages polled before the restart were not mirrored twice
    assert [shown(m) for m in customer_posts(box, ts)] == ["before restart", "after restart"]


def test_slack_429_is_honoured_and_the_post_lands_once(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "first")
    ts = thread_with(box, "first")
    box.slack.fail_next("chat.postMessage", status=429, retry_after=1)
    start = time.monotonic()
    box.x.customer_sends(MARIA, "after a rate limit")
    wait_for(lambda: any("after a rate limit" in shown(m) for m in customer_posts(box, ts)), what="post after 429")
    assert time.monotonic() - start >= 0.9
    assert [shown(m) for m in customer_posts(box, ts)].count("after a rate limit") == 1
    assert box.slack.count_429() == 1


def test_x_rate_limit_shows_waiting_then_delivered(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "hello?")
    ts = thread_with(box, "hello?")
    box.x.fail_next("send", status=429, reset_in=2)
    reply_ts, _ = box.slack.post_as_user(SAM, CHANNEL, "Hi Maria!", thread_ts=ts)
    wait_for(lambda: "hourglass_flowing_sand" in box.slack.reactions(CHANNEL, reply_ts), what="⏳")
    assert box.x.received_by(MARIA) == []
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, reply_ts), timeout=10, what="✅")
    assert box.x.received_by(MARIA) == ["Hi Maria!"]
    wait_for(lambda: "hourglass_flowing_sand" not in box.slack.reactions(CHANNEL, reply_ts), what="⏳ removed")


def test_x_refusal_shows_a_warning_with_the_reason(box: Sandbox) -> None:
    box.x.add_user("1290011223340000001", "closed_dms", "Closed DMs", accepts_dms=False)
    box.x.customer_sends("1290011223340000001", "can you see this?")
    ts = thread_with(box, "can you see this")
    reply_ts, _ = box.slack.post_as_user(SAM, CHANNEL, "Yes we can", thread_ts=ts)
    wait_for(lambda: "warning" in box.slack.reactions(CHANNEL, reply_ts), what="⚠️")
    explanation = wait_for(
        lambda: [m for m in box.slack.thread(CHANNEL, ts) if "Not delivered" in shown(m)], what="explanation"
    )
    assert "does not accept your DMs" in shown(explanation[0])
    with box.bridge.ctx.db.session() as s:
        row = s.exec(select(Outbox).where(Outbox.target == "platform")).one()
        assert row.state == "failed" and "does not accept" in (row.last_error or "")


def test_own_echoes_are_dropped_and_outside_sends_are_labelled(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "ping")
    ts = thread_with(box, "ping")
    box.slack.post_as_user(SAM, CHANNEL, "pong from Slack", thread_ts=ts)
    wait_for(lambda: box.x.received_by(MARIA), what="relay")
    box.x.brand_sends_from_app(MARIA, "typed in the X app")
    post = wait_for(
        lambda: [m for m in box.slack.thread(CHANNEL, ts) if "typed in the X app" in shown(m)],
        what="outside send mirrored",
    )[0]
    assert "outside Slack" in shown(post)
    polls_ran(box.x)  # more polls, and every row they made delivered: the echo of our own send must not appear
    wait_settled(box.bridge.ctx.db)
    assert not any("pong from Slack" in shown(m) for m in box.slack.thread(CHANNEL, ts) if m.get("bot_id"))


def test_edits_after_delivery_are_explained_once(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "hi")
    ts = thread_with(box, "hi")
    reply_ts, _ = box.slack.post_as_user(SAM, CHANNEL, "Helo", thread_ts=ts)
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, reply_ts), what="✅")
    box.slack.edit_as_user(SAM, CHANNEL, reply_ts, "Hello")
    box.slack.edit_as_user(SAM, CHANNEL, reply_ts, "Hello!")
    wait_for(lambda: [m for m in box.slack.thread(CHANNEL, ts) if "does not change" in shown(m)], what="notice")
    loops_ran(box, "slack-events", "slack-delivery")
    assert len([m for m in box.slack.thread(CHANNEL, ts) if "does not change" in shown(m)]) == 1
    assert box.x.received_by(MARIA) == ["Helo"]


def test_url_verification_and_unhandled_subtypes_are_acknowledged(box: Sandbox) -> None:
    resp = box.slack.send_envelope({"token": "t", "challenge": "abc123", "type": "url_verification"})
    assert resp.status_code == 200 and "abc123" in resp.text
    assert box.slack.join_channel("U0AGENT1", CHANNEL) == [200]


def test_core_loop_on_postgresql(pg_url: str, make_box: BoxFactory) -> None:
    box = make_box(database_url=pg_url)
    box.x.customer_sends(MARIA, "hello from postgres")
    ts = thread_with(box, "hello from postgres")
    reply_ts, _ = box.slack.post_as_user(SAM, CHANNEL, "hi back", thread_ts=ts, deliveries=2)
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, reply_ts), what="✅")
    assert box.x.received_by(MARIA) == ["hi back"]
    box.restart()
    box.x.customer_sends(MARIA, "again")
    assert thread_with(box, "again") == ts


def test_oauth2_user_token_instead_of_oauth1_keys(make_box: BoxFactory) -> None:
    box = make_box(
        x_consumer_key="",
        x_consumer_secret="",
        x_access_token="",
        x_access_token_secret="",
        x_user_bearer_token="sandbox-user-bearer",
    )
    box.x.customer_sends(MARIA, "hello over OAuth 2")
    ts = thread_with(box, "hello over OAuth 2")
    box.slack.post_as_user(SAM, CHANNEL, "answered over OAuth 2", thread_ts=ts)
    wait_for(lambda: box.x.received_by(MARIA) == ["answered over OAuth 2"], what="send with the bearer token")
    assert all(status != 401 for _, _, status in box.x.requests)


def test_a_wrong_x_credential_is_refused_by_the_emulator_and_reported(make_box: BoxFactory) -> None:
    box = make_box(x_access_token_secret="not-the-secret", x_poll_seconds=0.1)
    wait_for(lambda: "refused" in str(box.bridge.health()["checks"].get("x", "")), what="x health")
    assert box.x.requests and all(status == 401 for _, _, status in box.x.requests)


def test_socket_mode_carries_events_commands_and_buttons(make_box: BoxFactory) -> None:
    """With SLACK_APP_TOKEN the bridge opens Slack's WebSocket (apps.connections.open) instead of HTTP."""
    box = make_box(slack_app_token="xapp-sandbox", slack_signing_secret="")
    wait_for(box.slack.socket.connected, what="the Socket Mode connection")
    assert box.slack.calls("apps.connections.open")
    box.x.customer_sends(MARIA, "hello over a socket")
    ts = thread_with(box, "hello over a socket")
    reply_ts, statuses = box.slack.post_as_user(SAM, CHANNEL, "answer over a socket", thread_ts=ts, deliveries=2)
    assert statuses == [200, 200]
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, reply_ts), what="✅")
    assert box.x.received_by(MARIA) == ["answer over a socket"]
    assert "In the channel" in box.slack.slash_command(SAM, CHANNEL, "help").text
    assert box.slack.click(SAM, CHANNEL, ts, "conv_claim").status_code == 200
    wait_for(lambda: f"Assigned to <@{SAM}>" in str(box.slack.thread(CHANNEL, ts)), what="claimed")
