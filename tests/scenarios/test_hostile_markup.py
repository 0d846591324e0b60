"""Hostile customer fields and oversized texts through the running bridge: what Slack receives is inert
(no live mention, no foreign link, no javascript: avatar) and within Slack's limits, so it is posted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bridge.sandbox.demo import KIM, MARIA, SAM
from bridge.sandbox.harness import BILLING_GROUP, CHANNEL, TEAM_CHANNEL, Sandbox, shown, wait_for
from bridge.sandbox.slack import BOT_USER
from bridge.text import ELLIPSIS
from bridge.toml_config import FileConfig, Team
from tests.scenarios.helpers import BoxFactory
from tests.slack_limits import check_message, check_view, foreign_markup

DESK = FileConfig(
    brand="Acme", timezone="Europe/Berlin", teams={"billing": Team(usergroup=BILLING_GROUP, channel=TEAM_CHANNEL)}
)
HOSTILE_URLS = [
    "https://shop.example/u|<!here> Verify your account",
    "<!here>",
    "javascript:alert(1)",
    "https://evil.example/a b",
    "http://plain.example/u",
    "https://shop.example/<!channel>",
]


pytestmark = pytest.mark.sandbox(generic=True, file=DESK)


def _generic(box: Sandbox, name: str, text: str, **sender: str) -> None:
    assert box.generic is not None
    payload = box.generic.message("chat-1", "visitor-1", name, text)
    payload["sender"].update(sender)
    resp = box.generic.post(payload)
    assert resp.status_code == 200, resp.text


def _thread(box: Sandbox, text: str) -> list[dict[str, Any]]:
    ts = box.thread_with(text)
    return box.slack.thread(CHANNEL, ts)


def _bot_lines(box: Sandbox, ts: str, text: str) -> list[dict[str, Any]]:
    """The bot's own lines in a thread (not mirrored customer posts, not agents' messages)."""
    return [
        m for m in box.slack.thread(CHANNEL, ts)[1:] if m.get("bot_id") and not m.get("username") and text in shown(m)
    ]


def _posted_ok(messages: list[dict[str, Any]]) -> None:
    for m in messages:
        check_message(str(m.get("text", "")), m.get("blocks") or [])
        assert not foreign_markup(m.get("blocks") or []), m


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_hostile_profile_and_avatar_urls_are_dropped(box: Sandbox, url: str) -> None:
    _generic(box, "Eve <!here>", f"hello {url}", profile_url=url, avatar_url=url, handle="eve<!here>")
    thread = _thread(box, "hello")
    card = shown(thread[0])
    assert "<!here>" not in card and "Verify your account" not in card and "<http" not in card
    mirror = wait_for(
        lambda: [m for m in box.slack.thread(CHANNEL, thread[0]["ts"]) if m.get("username")],
        what="the mirrored message",
    )[0]
    assert "icon_url" not in mirror and mirror["username"] == "Eve <!here> (Webhook)"
    _posted_ok(box.slack.thread(CHANNEL, thread[0]["ts"]))


def test_a_safe_profile_url_is_still_linked(box: Sandbox) -> None:
    _generic(box, "Ana", "hi there", profile_url="https://shop.example/u/ana", handle="ana.c")
    card = shown(_thread(box, "hi there")[0])
    assert "<https://shop.example/u/ana|@ana.c>" in card


def test_a_3000_character_name_still_gets_its_card(box: Sandbox) -> None:
    name = ("Ana&<>👩‍👩‍👧‍👦e\u0301 " * 300)[:3000]
    _generic(box, name, "long name here")
    thread = _thread(box, "long name here")
    assert ELLIPSIS in shown(thread[0])
    _posted_ok(thread)
    wait_for(lambda: [m for m in box.slack.thread(CHANNEL, thread[0]["ts"]) if m.get("username")], what="mirror")
    mirror = next(m for m in box.slack.thread(CHANNEL, thread[0]["ts"]) if m.get("username"))
    assert len(mirror["username"]) <= 80 and mirror["username"].endswith("(Webhook)")
    timeline = box.slack.slash_command(SAM, CHANNEL, "show 1").text
    assert "Ana&amp;&lt;&gt;" in timeline and len(timeline) > 1000  # the long name is there in full detail


def test_a_forged_x_handle_is_never_linked(box: Sandbox) -> None:
    box.x.add_user("1290011223340000001", "x|<!here>", "Eve", profile_image_url="javascript:alert(1)")
    box.x.customer_sends("1290011223340000001", "forged handle here")
    thread = _thread(box, "forged handle here")
    card = shown(thread[0])
    assert "x.com" not in card and "<!here>" not in card
    mirror = wait_for(
        lambda: [m for m in box.slack.thread(CHANNEL, thread[0]["ts"]) if m.get("username")], what="mirror"
    )[0]
    assert "icon_url" not in mirror and mirror["username"] == "Eve (X)"


def test_a_long_escalation_reason_keeps_card_thread_and_team_notice_postable(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "please escalate")
    ts = box.thread_with("please escalate")
    reason = ("chargeback <!channel> & <@U0LEAD> 👍🏽 " * 200)[:7000]
    box.slack.post_as_user(SAM, CHANNEL, f"<@{BOT_USER}> escalate billing urgent {reason}", thread_ts=ts)
    wait_for(lambda: "Escalated to" in shown(box.slack.messages_by_ts(CHANNEL, ts)), what="card shows it")
    card = box.slack.messages_by_ts(CHANNEL, ts)
    assert ELLIPSIS in shown(card) and "/dm show 1" in shown(card)
    lines = wait_for(lambda: _bot_lines(box, ts, "chargeback"), what="escalation line")
    _posted_ok([card, *lines])
    notice = wait_for(lambda: box.slack.messages(TEAM_CHANNEL), what="team notice")
    _posted_ok(notice)
    whole = "".join(shown(m) for m in lines)
    assert whole.count("chargeback") >= reason.count("chargeback") - 1  # the thread has the whole reason


def test_a_10000_character_template_is_posted_in_parts_and_sent_whole(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "template me")
    ts = box.thread_with("template me")
    body = ("&<>" * 3400)[:9_990]
    box.slack.slash_command(SAM, CHANNEL, "template add big " + body)
    box.slack.post_as_user(SAM, CHANNEL, f"<@{BOT_USER}> template big", thread_ts=ts)
    wait_for(lambda: box.x.received_by(MARIA) == [body], what="the whole template sent")

    def all_parts() -> list[dict[str, Any]] | None:
        posts = [
            m
            for m in box.slack.thread(CHANNEL, ts)[1:]
            if m.get("bot_id") and not m.get("username") and "&amp;" in shown(m)
        ]
        return posts if "".join(shown(m) for m in posts).count("&amp;") == body.count("&") else None

    posts = wait_for(all_parts, what="every part of the template post, nothing cut")
    assert len(posts) > 1
    _posted_ok(posts)


def test_a_template_too_long_for_a_text_box_opens_read_only_and_sends(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "modal please")
    ts = box.thread_with("modal please")
    body = "Dear customer, " + "we &amp; <you> " * 400
    box.slack.slash_command(SAM, CHANNEL, "template add long " + body)
    box.slack.click(KIM, CHANNEL, ts, "conv_template")
    (view_id,) = box.slack.views
    view = box.slack.views[view_id]
    check_view(
        {
            k: v
            for k, v in view.items()
            if k in ("type", "title", "submit", "close", "blocks", "private_metadata", "callback_id")
        }
    )
    assert json.loads(view["private_metadata"])["whole"] is True
    confirm = next(b["block_id"] for b in view["blocks"] if b["type"] == "input")
    resp = box.slack.submit_view(
        KIM, view_id, {confirm: {"text": {"type": "checkboxes", "selected_options": [{"value": "whole"}]}}}
    )
    assert resp.status_code == 200 and "errors" not in resp.text
    wait_for(lambda: box.x.received_by(MARIA) == [body.strip()], what="the long template sent")


def test_more_than_100_teams_are_typed_in_and_checked(make_box: BoxFactory) -> None:
    teams = {f"team{i:03d}": Team(usergroup=BILLING_GROUP, channel=TEAM_CHANNEL) for i in range(120)}
    sandbox = make_box(file=FileConfig(brand="Acme", teams=teams))
    sandbox.x.customer_sends(MARIA, "many teams")
    ts = sandbox.thread_with("many teams")
    sandbox.slack.click(SAM, CHANNEL, ts, "conv_escalate")
    (view_id,) = sandbox.slack.views
    view = sandbox.slack.views[view_id]
    assert view["blocks"][0]["element"]["type"] == "plain_text_input"
    typed = {
        "team": {"value": {"type": "plain_text_input", "value": "nosuch"}},
        "priority": {"value": {"type": "static_select", "selected_option": {"value": "high"}}},
    }
    refused = sandbox.slack.submit_view(SAM, view_id, typed)
    assert "errors" in refused.text and "no team" in refused.text
    typed["team"]["value"]["value"] = "team117"
    assert "errors" not in sandbox.slack.submit_view(SAM, view_id, typed).text
    wait_for(
        lambda: "Escalated to *team117*" in shown(sandbox.slack.messages_by_ts(CHANNEL, ts)),
        what="escalated to the typed team",
    )
