"""Hostile input at the HTTP edge and in message text: each case with its outcome, nothing stored or sent.

Plus a hypothesis run over ``POST /slack/events``: no 5xx, the process keeps
serving, and the database holds no partial rows.
"""

from __future__ import annotations

import json
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import select

from bridge.sandbox.demo import JDOE, MARIA, SAM
from bridge.sandbox.harness import CHANNEL, Sandbox, shown, wait_for
from bridge.store.tables import Conversation, InboundEvent, Outbox, SlackEvent
from tests.scenarios.helpers import customer_posts, loops_ran, thread_with


def _counts(box: Sandbox) -> tuple[int, int, int]:
    with box.bridge.ctx.db.read() as s:
        return (
            s.exec(select(func.count()).select_from(SlackEvent)).one(),
            s.exec(select(func.count()).select_from(Outbox)).one(),
            s.exec(select(func.count()).select_from(InboundEvent)).one(),
        )


def _envelope(event: dict[str, Any], event_id: str = "EvHOSTILE1") -> dict[str, Any]:
    return {
        "type": "event_callback",
        "team_id": "T0SANDBOX",
        "api_app_id": "A0BRIDGE",
        "event_id": event_id,
        "event_time": int(time.time()),
        "event": event,
    }


def _reply(ts: str, text: str = "hi") -> dict[str, Any]:
    return {
        "type": "message",
        "user": SAM,
        "text": text,
        "ts": "1999999999.000100",
        "thread_ts": ts,
        "channel": CHANNEL,
    }


@dataclass(frozen=True)
class Case:
    name: str
    send: Callable[[Sandbox, str], httpx.Response]
    status: int
    stored: bool = False  # a well-signed message is stored before the ack (durable first), then goes nowhere


def _signed_raw(box: Sandbox, body: bytes, content_type: str = "application/json") -> httpx.Response:
    return box.slack.send_raw(body, box.slack.sign(body), content_type)


CASES = [
    Case("forged signature", lambda b, ts: b.slack.send_envelope(_envelope(_reply(ts)), secret="guess"), 401),
    Case(
        "stale timestamp (10 min)",
        lambda b, ts: b.slack.send_envelope(_envelope(_reply(ts)), timestamp=int(time.time()) - 600),
        401,
    ),
    Case(
        "timestamp from the future",
        lambda b, ts: b.slack.send_envelope(_envelope(_reply(ts)), timestamp=int(time.time()) + 600),
        401,
    ),
    Case("no signature headers", lambda b, ts: b.slack.send_raw(json.dumps(_envelope(_reply(ts))).encode(), {}), 401),
    Case(
        "signature of another body",
        lambda b, ts: b.slack.send_raw(json.dumps(_envelope(_reply(ts))).encode(), b.slack.sign(b"{}")),
        401,
    ),
    Case("invalid JSON, signed", lambda b, ts: _signed_raw(b, b'{"type": "event_callback", "event": {'), 400),
    Case("JSON that is not an object, signed", lambda b, ts: _signed_raw(b, b'["event_callback"]'), 400),
    Case("body over 1 MB", lambda b, ts: _signed_raw(b, b'{"pad": "' + b"x" * (1024 * 1024 + 10) + b'"}'), 413),
    Case(
        "unknown event type: acknowledged, ignored",
        lambda b, ts: b.slack.send_envelope(
            _envelope(
                {
                    "type": "reaction_added",
                    "user": SAM,
                    "reaction": "eyes",
                    "item": {"type": "message", "channel": CHANNEL, "ts": ts},
                }
            )
        ),
        200,
    ),
    Case(
        "unknown envelope type: acknowledged, ignored",
        lambda b, ts: b.slack.send_envelope(
            {"type": "app_rate_limited", "team_id": "T0SANDBOX", "minute_rate_limited": 1}
        ),
        200,
    ),
    Case(
        "message with no user",
        lambda b, ts: b.slack.send_envelope(_envelope({k: v for k, v in _reply(ts).items() if k != "user"})),
        200,
        stored=True,
    ),
    Case(
        "message with no ts",
        lambda b, ts: b.slack.send_envelope(_envelope({k: v for k, v in _reply(ts).items() if k != "ts"})),
        200,
        stored=True,
    ),
    Case("event with no type", lambda b, ts: b.slack.send_envelope(_envelope({"text": "no type"})), 200),
    Case(
        "reply in a thread that is not a conversation",
        lambda b, ts: b.slack.send_envelope(_envelope(_reply("1111111111.000001"))),
        200,
        stored=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_request(box: Sandbox, case: Case) -> None:
    box.x.customer_sends(MARIA, "hello")
    ts = thread_with(box, "hello")
    wait_for(lambda: customer_posts(box, ts), what="the mirrored message")
    events_before, outbox_before, inbound_before = _counts(box)
    posts_before = len(box.slack.calls("chat.postMessage"))
    response = case.send(box, ts)
    assert response.status_code == case.status
    loops_ran(box, "slack-events", "slack-delivery", "platform-delivery")
    events_after, outbox_after, inbound_after = _counts(box)
    assert events_after == events_before + case.stored
    assert (outbox_after, inbound_after) == (outbox_before, inbound_before)
    assert len(box.slack.calls("chat.postMessage")) == posts_before
    assert box.x.received_by(MARIA) == []


TRICKY = {
    "rtl override": "refund \u202eLIVE\u202c please",
    "zero-width joiners": "family \U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 here",
    "combining marks": "Zalgo: Z\u0351\u0358a\u0353\u0354l\u0325g\u030do\u0346",
    "mrkdwn and mentions": "*bold* _it_ ~s~ `code` <!channel> <@U0AGENT1> <#C0INBOX> <!subteam^S1|@t> <mailto:a|b>",
}


@pytest.mark.parametrize("name", list(TRICKY))
def test_tricky_customer_text_arrives_intact_and_inert(box: Sandbox, name: str) -> None:
    text = TRICKY[name]
    box.x.customer_sends(MARIA, text)
    ts = wait_for(lambda: next((r["ts"] for r in box.slack.roots(CHANNEL)), None), what="thread")
    (post,) = wait_for(lambda: customer_posts(box, ts), what="the mirrored message")
    seen = shown(post)
    assert "<" not in seen and ">" not in seen  # nothing Slack would turn into a mention or a link
    unescaped = seen.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert unescaped == text


def test_emoji_at_the_split_boundaries_are_never_cut(box: Sandbox) -> None:
    box.x.customer_sends(JDOE, "long one please")
    ts = thread_with(box, "long one please")
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one grapheme, 5 code points
    long = "a" * 9_998 + family + "b" * 3_000 + "\U0001f600" * 10
    reply_ts, _ = box.slack.post_as_user(SAM, CHANNEL, long, thread_ts=ts)
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, reply_ts), what="✅")
    parts = box.x.received_by(JDOE)
    assert "".join(parts) == long
    assert all(len(p) <= 10_000 for p in parts) and len(parts) == 2
    assert family in parts[0] or family in parts[1]  # the grapheme was not split across DMs
    assert all(not unicodedata.combining(p[0]) and p[0] != "\u200d" for p in parts)


_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30))
_events = st.fixed_dictionaries(
    {"type": st.sampled_from(["message", "app_mention", "app_home_opened", "x", ""])},
    optional={
        "user": st.text(max_size=12),
        "text": st.text(max_size=60),
        "ts": st.text(max_size=20),
        "thread_ts": st.text(max_size=20),
        "channel": st.sampled_from([CHANNEL, "", "C0OTHER"]),
        "subtype": st.sampled_from(["bot_message", "message_changed", "x"]),
        "bot_id": st.text(max_size=5),
        "message": st.dictionaries(st.text(max_size=8), _json_leaf, max_size=3),
    },
)
_bodies = st.one_of(
    st.builds(lambda e, i: json.dumps(_envelope(e, i)).encode(), _events, st.text(min_size=0, max_size=12)),
    st.binary(max_size=300),
    st.recursive(
        _json_leaf,
        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
        max_leaves=8,
    ).map(lambda v: json.dumps(v).encode()),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=_bodies,
    signed=st.booleans(),
    content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain"]),
)
def test_fuzzed_event_requests_never_crash_or_leave_partial_rows(
    box: Sandbox, body: bytes, signed: bool, content_type: str
) -> None:
    headers = box.slack.sign(body) if signed else {}
    response = box.slack.send_raw(body, headers, content_type)
    assert response.status_code < 500, (response.status_code, body[:200])
    assert httpx.get(box.http.url + "/healthz").status_code in (200, 503)
    assert all(loop.is_alive() for loop in box.bridge.loops)
    with box.bridge.ctx.db.read() as s:
        for row in s.exec(select(SlackEvent)).all():
            assert isinstance(json.loads(row.payload), dict) and row.dedupe_key and row.kind
        convs = {c.id for c in s.exec(select(Conversation)).all()}
        assert all(o.conversation_id in convs for o in s.exec(select(Outbox)).all() if o.conversation_id)
