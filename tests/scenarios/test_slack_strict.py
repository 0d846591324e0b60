"""The Slack emulator is as strict as Slack, and the product holds up against it.

Each rule comes from Slack's Web API spec (../shared/specs/slack/web-api.openapi.json: encodings, arguments)
or its documentation (Block Kit limits, errors). Where a rule caught a product defect, the test says which.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlmodel import select

from bridge.errors import Rejected
from bridge.sandbox.harness import CHANNEL, Sandbox, wait_for
from bridge.sandbox.process import World
from bridge.sandbox.slack import BOT_USER, SlackEmulator
from bridge.slack.api import SlackApi, make_client
from bridge.slack.blocks import SlackMessage
from bridge.store.tables import Outbox
from tests.scenarios.traffic import Traffic, sandbox_with_customers

TOKEN = "xoxb-strict"
MEMBERS = ["U1", "U2", "U3", "U4", "U5", "U6", BOT_USER]


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    emulator = SlackEmulator(signing_secret="s", bot_token=TOKEN, page_size=2)
    emulator.start()
    for user in MEMBERS[:-1]:
        emulator.add_user(user, user.lower(), f"User {user}")
    emulator.add_user("U9", "out", "Outsider")
    emulator.add_channel("C1", "desk", members=list(MEMBERS))
    emulator.add_channel("C2", "public-elsewhere", members=["U1"])
    emulator.add_channel("G1", "private-elsewhere", members=["U1"], is_private=True)
    emulator.add_usergroup("S1", ["U1", "U2"])
    emulator.set_presence("U1", "away")
    try:
        yield emulator
    finally:
        emulator.stop()


def api(
    slack: SlackEmulator, method: str, *, json: dict[str, Any] | None = None, form: dict[str, str] | None = None
) -> dict[str, Any]:
    resp = httpx.post(slack.api_url + method, headers={"Authorization": f"Bearer {TOKEN}"}, json=json, data=form)
    data: dict[str, Any] = resp.json()
    return data


# ---------------------------------------------------------------------------- encodings


@pytest.mark.parametrize(
    ("method", "args", "json_answer", "form_check"),
    [
        ("conversations.members", {"channel": "C1"}, "channel_not_found", "members"),
        ("conversations.history", {"channel": "C1"}, "channel_not_found", "messages"),
        ("conversations.replies", {"channel": "C1", "ts": "1.0"}, "channel_not_found", "message_not_found"),
        ("users.info", {"user": "U1"}, "user_not_found", "user"),
        ("usergroups.users.list", {"usergroup": "S1"}, "no_such_subteam", "users"),
    ],
)
def test_a_json_body_is_not_read_by_methods_that_take_forms(
    slack: SlackEmulator, method: str, args: dict[str, str], json_answer: str, form_check: str
) -> None:
    """The defect behind issue 10 item 1: the product sent these as JSON, and Slack reads none of it."""
    assert api(slack, method, json=args) == {"ok": False, "error": json_answer}
    answer = api(slack, method, form=args)
    assert answer.get(form_check) is not None or answer.get("error") == form_check


def test_presence_without_its_argument_is_the_callers(slack: SlackEmulator) -> None:
    """Round robin saw every agent present: users.getPresence read no ``user`` and answered for the bot."""
    assert api(slack, "users.getPresence", json={"user": "U1"})["presence"] == "active"
    assert api(slack, "users.getPresence", form={"user": "U1"})["presence"] == "away"


def test_the_old_generic_json_call_is_refused_and_the_typed_one_works(slack: SlackEmulator) -> None:
    client = WebClient(token=TOKEN, base_url=slack.api_url)
    with pytest.raises(SlackApiError, match="channel_not_found"):
        client.api_call("conversations.members", json={"channel": "C1"})
    assert client.conversations_members(channel="C1", limit=10)["members"] == MEMBERS[:2]
    assert slack.calls("conversations.members")[-1].encoding == "form"  # slack_sdk sends a form body


def test_json_methods_take_both_encodings(slack: SlackEmulator) -> None:
    assert api(slack, "chat.postMessage", json={"channel": "C1", "text": "a"})["ok"]
    assert api(slack, "chat.postMessage", form={"channel": "C1", "text": "b"})["ok"]
    resp = httpx.post(slack.api_url + "chat.postMessage", json={"token": TOKEN, "channel": "C1", "text": "c"})
    assert resp.json() == {"ok": False, "error": "not_authed"}  # a JSON body's token is not read


# ---------------------------------------------------------------------------- pagination


def test_members_history_and_replies_page_with_limit_and_cursor(slack: SlackEmulator) -> None:
    first = api(slack, "conversations.members", form={"channel": "C1", "limit": "100"})
    assert first["members"] == MEMBERS[:2]  # at most page_size, whatever the limit
    cursor = first["response_metadata"]["next_cursor"]
    second = api(slack, "conversations.members", form={"channel": "C1", "cursor": cursor})
    assert second["members"] == MEMBERS[2:4]
    assert api(slack, "conversations.members", form={"channel": "C1", "cursor": "bogus"})["error"] == "invalid_cursor"
    assert api(slack, "conversations.members", form={"channel": "C1", "limit": "1001"})["error"] == "invalid_limit"
    root = api(slack, "chat.postMessage", form={"channel": "C1", "text": "root"})["ts"]
    for i in range(4):
        api(slack, "chat.postMessage", form={"channel": "C1", "text": f"r{i}", "thread_ts": root})
    page = api(slack, "conversations.replies", form={"channel": "C1", "ts": root})
    assert page["has_more"] and len(page["messages"]) == 2 and page["messages"][0]["ts"] == root
    assert api(slack, "conversations.history", form={"channel": "C1"})["messages"][0]["ts"] == root


@settings(max_examples=60, deadline=None)
@given(
    items=st.lists(st.text(max_size=3), max_size=30),
    page_size=st.integers(1, 7),
    limit=st.one_of(st.none(), st.integers(1, 1000)),
)
def test_following_the_cursors_yields_every_item_once_in_order(
    items: list[str], page_size: int, limit: int | None
) -> None:
    world = SlackEmulator(signing_secret="s", bot_token=TOKEN, page_size=page_size)
    seen: list[str] = []
    cursor = ""
    for _ in range(len(items) + 1):
        page, cursor = world._page(items, {"limit": limit, "cursor": cursor})
        assert len(page) <= min(page_size, limit or page_size)
        seen += page
        if not cursor:
            break
    assert seen == items and cursor == ""
    world.client.close()


def test_the_product_follows_next_cursor(slack: SlackEmulator) -> None:
    threads = SlackApi(make_client(TOKEN, slack.api_url))
    assert threads.channel_members("C1") == MEMBERS
    assert len(slack.calls("conversations.members")) == 4


def test_a_post_at_the_end_of_a_long_thread_is_found_before_resending(slack: SlackEmulator) -> None:
    """Caught with small pages: verification read only the first five pages, oldest first, so in a long thread
    it never reached the post it was looking for and the message was sent twice (test_faults duplicates)."""
    threads = SlackApi(make_client(TOKEN, slack.api_url))
    msg = SlackMessage(text="x", blocks=[])
    root = threads.post("C1", msg)
    for _ in range(14):
        threads.post("C1", msg, thread_ts=root)
    since = float(slack.messages("C1")[-1]["ts"])
    ts = threads.post("C1", msg, thread_ts=root, key="late-one")
    assert threads.find_delivered("C1", "late-one", thread_ts=root, since=since) == ts
    assert threads.find_delivered("C1", "late-one", thread_ts=root, since=0) == ts  # the whole thread, paged


# ---------------------------------------------------------------------------- payloads


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(**over: Any) -> dict[str, Any]:
    return {
        "type": "actions",
        "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Go"}, "action_id": "a", "value": "v"} | over
        ],
    }


def static_select(n: int) -> dict[str, Any]:
    options = [{"text": {"type": "plain_text", "text": f"o{i}"}, "value": str(i)} for i in range(n)]
    return {"type": "actions", "elements": [{"type": "static_select", "action_id": "s", "options": options}]}


@pytest.mark.parametrize(
    ("blocks", "text", "error"),
    [
        ([section("ok")], "ok", None),
        ([section("x")] * 51, "x", "invalid_blocks"),
        ([section("x" * 3001)], "x", "invalid_blocks"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "x", "invalid_blocks"),
        ([button(text={"type": "plain_text", "text": "b" * 76})], "x", "invalid_blocks"),
        ([button(value="v" * 2001)], "x", "invalid_blocks"),
        ([button(action_id="a" * 256)], "x", "invalid_blocks"),
        ([dict(section("x"), block_id="b" * 256)], "x", "invalid_blocks"),
        ([static_select(101)], "x", "invalid_blocks"),
        ([static_select(100)], "x", None),
        ([{"type": "context", "elements": [{"type": "mrkdwn", "text": "c" * 3001}]}], "x", "invalid_blocks"),
        ([{"type": "no_such_block"}], "x", "invalid_blocks"),
        ([], "t" * 40_001, "msg_too_long"),
        ([], "", "no_text"),
    ],
)
def test_messages_are_checked_like_slack(
    slack: SlackEmulator, blocks: list[dict[str, Any]], text: str, error: str | None
) -> None:
    for method, extra in (("chat.postMessage", {}), ("chat.postEphemeral", {"user": "U1"})):
        answer = api(slack, method, json={"channel": "C1", "text": text, "blocks": blocks, **extra})
        assert answer.get("error") == error, (method, answer)
    if error is None:
        return
    ts = api(slack, "chat.postMessage", json={"channel": "C1", "text": "fine"})["ts"]
    assert api(slack, "chat.update", json={"channel": "C1", "ts": ts, "text": text or "", "blocks": blocks}).get(
        "error"
    ) in (error, "no_text")


def modal(**over: Any) -> dict[str, Any]:
    return {"type": "modal", "title": {"type": "plain_text", "text": "Title"}, "blocks": [section("x")]} | over


@pytest.mark.parametrize(
    ("view", "ok"),
    [
        (modal(), True),
        (modal(title={"type": "plain_text", "text": "t" * 25}), False),
        (modal(submit={"type": "plain_text", "text": "s" * 25}), False),
        (modal(close={"type": "plain_text", "text": "c" * 25}), False),
        (modal(private_metadata="m" * 3001), False),
        (modal(blocks=[section("x")] * 101), False),
        (modal(blocks=[section("x" * 3001)]), False),
        (
            modal(
                blocks=[
                    {
                        "type": "input",
                        "label": {"type": "plain_text", "text": "L"},
                        "element": {"type": "plain_text_input", "action_id": "i", "initial_value": "v" * 3001},
                    }
                ]
            ),
            False,
        ),
    ],
)
def test_views_are_checked_like_slack(slack: SlackEmulator, view: dict[str, Any], ok: bool) -> None:
    answer = api(slack, "views.open", json={"trigger_id": slack._new_trigger(), "view": view})
    assert answer["ok"] is ok, answer
    if not ok:
        assert answer["error"] == "invalid_arguments" and answer["response_metadata"]["messages"]
    home = dict(view, type="home")
    home.pop("title", None)
    if ok:
        assert api(slack, "views.publish", json={"user_id": "U1", "view": home})["ok"]


# ---------------------------------------------------------------------------- membership and scopes


def test_posting_needs_membership_or_chat_write_public_for_public_channels(slack: SlackEmulator) -> None:
    assert api(slack, "chat.postMessage", form={"channel": "C2", "text": "hi"})["ok"]  # the manifest's scopes
    assert api(slack, "chat.postMessage", form={"channel": "G1", "text": "hi"})["error"] == "channel_not_found"
    slack.scopes.remove("chat:write.public")
    assert api(slack, "chat.postMessage", form={"channel": "C2", "text": "hi"})["error"] == "not_in_channel"
    assert (
        api(slack, "chat.postEphemeral", form={"channel": "C2", "user": "U1", "text": "hi"})["error"]
        == "not_in_channel"
    )


def test_an_ephemeral_reaches_only_a_channel_member(slack: SlackEmulator) -> None:
    assert (
        api(slack, "chat.postEphemeral", form={"channel": "C1", "user": "U9", "text": "hi"})["error"]
        == "user_not_in_channel"
    )
    threads = SlackApi(make_client(TOKEN, slack.api_url))
    with pytest.raises(Rejected, match="user_not_in_channel"):
        threads.post_ephemeral("C1", "U9", "hi")


def test_auth_test_lists_granted_scopes_and_conversations_info_the_bots_membership(slack: SlackEmulator) -> None:
    client = WebClient(token=TOKEN, base_url=slack.api_url)
    scopes = client.auth_test().headers["x-oauth-scopes"].split(",")
    assert {"chat:write", "chat:write.public", "users:read"} <= set(scopes)
    slack.scopes = ["chat:write"]
    assert client.auth_test().headers["x-oauth-scopes"] == "chat:write"
    info = client.conversations_info(channel="G1")["channel"]
    assert info["is_private"] is True and info["is_member"] is False
    info = client.conversations_info(channel="C1")["channel"]
    assert info["is_private"] is False and info["is_member"] is True


# ---------------------------------------------------------------------------- under faults

CUSTOMERS = [str(1290011223300000300 + i) for i in range(10)]


@pytest.fixture
def faulty() -> Iterator[Sandbox]:
    with sandbox_with_customers(CUSTOMERS, "strict", "Strict") as sandbox:
        yield sandbox


def test_with_a_fifth_of_slack_calls_answering_500_no_customer_message_is_lost(faulty: Sandbox) -> None:
    """Issue 10: against a Slack-faithful emulator, 13 of 150 deliveries failed for good (header cards among
    them) because verify-before-resend sent conversations.replies/history as JSON. Every Slack method fails,
    the reads too; some calls take effect and lose their answer, so the verification must find them."""
    box = faulty
    box.slack.page_size = 200  # Slack answers such a window in one page; each page here could fail
    box.slack.chaos(
        0.2,
        kinds=("500", "500", "500", "reset"),
        methods=(
            "chat.postMessage",
            "chat.update",
            "reactions.add",
            "reactions.remove",
            "conversations.replies",
            "conversations.history",
            "conversations.members",
            "users.info",
            "usergroups.users.list",
        ),
        seed=11,
    )
    traffic = Traffic(World(box.slack, box.x, CUSTOMERS), [box.events_url], rng=random.Random(8))
    for i in range(15):
        for cid in CUSTOMERS:  # the first round opens ten conversations under faults: header cards too
            traffic.customer_says(cid, f"{cid[-3:]} says {i}")
    try:
        wait_for(
            lambda: all(len(traffic.mirrored(c)) >= 15 for c in CUSTOMERS),
            timeout=240,
            what="all 150 customer messages mirrored despite the faults",
        )
    except TimeoutError as exc:
        with box.bridge.ctx.db.session() as s:
            rows = s.exec(select(Outbox).where(Outbox.state != "sent")).all()
            raise AssertionError(
                f"not sent: {[(r.id, r.kind, r.state, r.attempts, r.last_error) for r in rows]}"
            ) from exc
    box.slack.chaos(0)
    assert traffic.problems() == []
    assert len(box.slack.roots(CHANNEL)) == len(CUSTOMERS)  # one card per conversation, none twice
    kinds = {k for _m, k in box.slack.chaos_log}
    assert kinds == {"500", "reset"}
    verified = box.slack.calls("conversations.replies") + box.slack.calls("conversations.history")
    assert verified and all(c.encoding == "form" for c in verified)
    assert any(c.status == 200 for c in box.slack.calls("conversations.history"))
    with box.bridge.ctx.db.session() as s:
        failed = [(r.kind, r.last_error) for r in s.exec(select(Outbox).where(Outbox.state == "failed")).all()]
    assert failed == []
