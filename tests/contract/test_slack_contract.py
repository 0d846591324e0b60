"""Every Slack Web API method the bridge calls exists in Slack's published spec, is sent with an encoding the spec
lists for it, and only with arguments it documents.

Three sources must agree: the static list ``SLACK_METHODS`` beside ``SlackApi``; the typed WebClient methods
the code under ``bridge/`` references (scanned, so a new call cannot slip past the list); and the calls the
emulator records while the product runs (every ``SlackApi`` method, and a representative scenario).
The 2021 spec predates a few things; only those are allowed without it (README of ../shared/specs).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from slack_sdk import WebClient

from bridge import doctor
from bridge.sandbox.demo import MARIA, SAM
from bridge.sandbox.harness import CHANNEL, Sandbox, wait_for
from bridge.sandbox.slack import SlackEmulator
from bridge.sandbox.slack_state import Call
from bridge.slack.api import SLACK_METHODS, SlackApi, make_client
from bridge.slack.blocks import SlackMessage
from tests.contract.slack_specs import ROOT, spec

NOT_IN_2021_SPEC = {"files.getUploadURLExternal", "files.completeUploadExternal", "apps.connections.open"}
# message metadata (2022) is missing from the 2021 spec: the argument and the flag that reads it back
METADATA_ARGS = {
    "chat.postMessage": {"metadata"},
    "chat.update": {"metadata"},
    "conversations.history": {"include_all_metadata"},
    "conversations.replies": {"include_all_metadata"},
}
# slack_bolt's authorization middleware calls auth.test through a per-request client carrying the team's id,
# which slack_sdk adds to the arguments; the product's own calls never do
BOLT_ARGS = {"auth.test": {"team_id"}}
MIME = {
    "json": "application/json",
    "form": "application/x-www-form-urlencoded",
    "query": "application/x-www-form-urlencoded",
}  # query arguments are read like form fields


def _operation(method: str) -> dict[str, Any] | None:
    path = spec("slack/web-api.openapi.json")["paths"].get("/" + method)
    if not path:
        return None
    op: dict[str, Any] = next(iter(path.values()))
    return op


def _check(calls: list[Call]) -> list[str]:
    problems = []
    for call in calls:
        if call.method in NOT_IN_2021_SPEC:
            continue
        op = _operation(call.method)
        if op is None:
            problems.append(f"{call.method} is not in Slack's Web API spec")
            continue
        if MIME[call.encoding] not in op.get("consumes", []):
            problems.append(f"{call.method} sent as {call.encoding}; the spec takes {op.get('consumes')}")
        documented = (
            {p["name"] for p in op.get("parameters", [])}
            | METADATA_ARGS.get(call.method, set())
            | BOLT_ARGS.get(call.method, set())
        )
        unknown = set(call.sent) - documented - {"token"}
        if unknown:
            problems.append(f"{call.method} sent undocumented arguments {sorted(unknown)}")
    return problems


def _referenced_methods() -> set[str]:
    """Typed WebClient methods referenced anywhere in the product (``client.chat_postMessage`` …)."""
    names = {n for n in dir(WebClient) if not n.startswith("_") and "_" in n}
    found: set[str] = set()
    for path in (ROOT / "bridge").rglob("*.py"):
        if "sandbox" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        assert "api_call(" not in text, f"{path}: generic api_call; use the typed WebClient method"
        found |= {m.replace("_", ".") for m in re.findall(r"client\.(\w+)", text) if m in names}
    return found


def test_the_static_list_names_every_method_the_code_calls_and_each_is_in_the_spec() -> None:
    assert _referenced_methods() == set(SLACK_METHODS)
    missing = [m for m in sorted(SLACK_METHODS) if m not in NOT_IN_2021_SPEC and _operation(m) is None]
    assert missing == []


def test_a_method_missing_from_the_spec_is_caught() -> None:
    """The check is live: a made-up method and a JSON body on a read method both fail it."""
    assert _check([Call("chat.postMessagez", {}, 200, encoding="json")])
    assert _check([Call("conversations.replies", {}, 200, encoding="json", sent=("channel", "ts"))])
    assert _check([Call("users.info", {}, 200, encoding="query", sent=("user", "fields"))])


@pytest.fixture
def emulator() -> Iterator[SlackEmulator]:
    slack = SlackEmulator(signing_secret="s", bot_token="xoxb-contract", page_size=1)
    slack.start()
    slack.add_user("U1", "sam", "Sam")
    slack.add_channel("C1", "desk", members=["U1", "U0BOT"])
    slack.add_usergroup("S1", ["U1"])
    try:
        yield slack
    finally:
        slack.stop()


def test_every_slack_threads_method_calls_slack_as_the_spec_says(emulator: SlackEmulator) -> None:
    slack = SlackApi(make_client("xoxb-contract", emulator.api_url))
    message = SlackMessage(text="hello", blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "hello"}}])
    slack.bot_identity()
    ts = slack.post("C1", message, key="k1")
    reply = slack.post("C1", message, thread_ts=ts, username="Maria", icon_url="https://img.example/a.png", key="k2")
    slack.update("C1", ts, message)
    slack.react("C1", reply, "eyes")
    slack.unreact("C1", reply, "eyes")
    assert slack.find_delivered("C1", "k2", thread_ts=ts, since=0) == reply
    assert slack.find_delivered("C1", "k1", thread_ts=None, since=0) == ts
    slack.post_ephemeral("C1", "U1", "psst", thread_ts=ts, blocks=message.blocks)
    home = {"type": "home", "blocks": message.blocks}
    slack.publish_home("U1", home)
    slack.open_view(
        emulator._new_trigger(),
        {"type": "modal", "title": {"type": "plain_text", "text": "T"}, "blocks": message.blocks},
    )
    view_id = next(iter(emulator.views))
    slack.update_view(
        view_id,
        {"type": "modal", "title": {"type": "plain_text", "text": "T2"}, "blocks": message.blocks},
        emulator.views[view_id]["hash"],
    )
    assert slack.usergroup_members("S1") == ["U1"]
    assert slack.channel_members("C1") == ["U1", "U0BOT"]
    assert slack.user_info("U1")["id"] == "U1"
    assert slack.presence("U1") == "active"
    upload_url, file_id = slack.upload_url("photo.jpg", 5, "a photo from Maria")  # the external upload flow
    assert httpx.post(upload_url, content=b"bytes").status_code == 200
    slack.complete_upload(file_id, "photo.jpg", "C1", ts, "Maria sent a photo: photo.jpg")
    assert slack.find_file("C1", ts, "photo.jpg", since=0, known=set()) == file_id
    assert emulator.file_bytes(file_id) == b"bytes"
    assert slack.file_info(file_id)["size"] == 5  # an agent's file, before it goes to the customer
    assert slack.delete("C1", reply) == "deleted"
    assert doctor.slack_channel(slack.client, "C1", "desk", None).ok  # the doctor's one call of its own
    calls = emulator.calls()
    assert [c for c in calls if c.status != 200] == []
    assert {c.method for c in calls} == set(SLACK_METHODS)
    assert _check(calls) == []
    assert len(emulator.calls("conversations.members")) == 2  # one member a page: the cursor was followed


@pytest.mark.sandbox(dmbridge_http_timeout=1.0)  # an uncertain post is verified after 1 s
def test_a_representative_scenario_calls_only_listed_methods_as_the_spec_says(box: Sandbox) -> None:
    box.slack.fail_next("chat.postMessage", status=500)  # the card's post fails: verify-before-resend reads
    box.x.customer_sends(MARIA, "Hi, my order never arrived")
    ts = box.thread_with("never arrived")
    box.slack.post_as_user(SAM, CHANNEL, "Looking into it.", thread_ts=ts)
    wait_for(
        lambda: (
            "white_check_mark" in box.slack.reactions(CHANNEL, box.slack.thread(CHANNEL, ts)[-1]["ts"])
            or box.x.received_by(MARIA)
        ),
        what="the reply relayed",
    )
    box.slack.slash_command(SAM, CHANNEL, "list")
    box.slack.open_home(SAM)
    wait_for(lambda: SAM in box.slack.home_views, what="App Home published")
    calls = box.slack.calls()
    assert {c.method for c in calls} - NOT_IN_2021_SPEC <= set(SLACK_METHODS)
    assert {"conversations.history", "conversations.members", "chat.postMessage", "views.publish"} <= {
        c.method for c in calls
    }
    assert _check(calls) == []
