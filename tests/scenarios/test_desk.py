"""The desk end to end: each entry point (card buttons, shortcuts and modals, thread mentions, /dm),
through signed requests from the Slack emulator, checking the database, the card, the thread and X."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import select

from bridge.sandbox.demo import JDOE, KIM, MARIA, SAM
from bridge.sandbox.harness import (
    AGENTS_GROUP,
    BILLING_GROUP,
    CHANNEL,
    TEAM_CHANNEL,
    Sandbox,
    shown,
    start_sandbox,
    wait_for,
)
from bridge.sandbox.server import OffsetClock
from bridge.sandbox.slack import BOT_USER
from bridge.store.tables import Audit, Conversation
from bridge.toml_config import Assignment, FileConfig, Team
from tests.scenarios.helpers import BoxFactory

OUTSIDER = "U0OUTSIDER"
DESK = FileConfig(
    brand="Acme", timezone="Europe/Berlin", teams={"billing": Team(usergroup=BILLING_GROUP, channel=TEAM_CHANNEL)}
)


@pytest.fixture
def desk(clock: OffsetClock) -> Iterator[Sandbox]:
    box = start_sandbox(file=DESK, clock=clock, dmbridge_sweep_seconds=0.2)
    try:
        yield box
    finally:
        box.close()


def conv(box: Sandbox, number: int = 1) -> Conversation:
    with box.bridge.ctx.db.session() as s:
        found = s.get(Conversation, number)
        assert found is not None
        return found


def actions(box: Sandbox) -> list[tuple[str, str, str]]:
    with box.bridge.ctx.db.session() as s:
        return [(a.actor, a.action, a.detail) for a in s.exec(select(Audit).order_by(Audit.id)).all()]


def card(box: Sandbox, ts: str) -> str:
    return shown(box.slack.messages_by_ts(CHANNEL, ts))


def line(box: Sandbox, ts: str, text: str) -> dict[str, Any]:
    found = wait_for(
        lambda: [m for m in box.slack.thread(CHANNEL, ts)[1:] if text in shown(m)],
        what=f"a line {text!r} in the thread",
    )
    return found[0]


def ephemeral_to(box: Sandbox, user: str, text: str) -> dict[str, Any]:
    return wait_for(
        lambda: [e for e in box.slack.ephemerals if e["user"] == user and text in e["text"]],
        what=f"a private answer to {user} containing {text!r}",
    )[0]


def new_conversation(box: Sandbox, customer: str = MARIA, text: str = "Hello, I need help") -> str:
    box.x.customer_sends(customer, text)
    ts = box.thread_with(text)
    wait_for(lambda: conv(box).thread_ts == ts, what="the conversation's thread")
    return ts


def test_assign_to_me_button_updates_db_card_and_thread(desk: Sandbox) -> None:
    ts = new_conversation(desk)
    resp = desk.slack.click(SAM, CHANNEL, ts, "conv_claim")
    assert resp.status_code == 200
    assert conv(desk).assignee == SAM
    line(desk, ts, f"Assigned to <@{SAM}> by <@{SAM}>")
    wait_for(lambda: f"Assignee: <@{SAM}>" in card(desk, ts), what="the card redrawn in place")
    assert desk.slack.calls("chat.update")
    assert ("U0AGENT1", "assign", SAM) in actions(desk)


def test_assignee_picker_on_the_card(desk: Sandbox) -> None:
    ts = new_conversation(desk)
    desk.slack.click(SAM, CHANNEL, ts, "conv_assign", selected_user=KIM)
    assert conv(desk).assignee == KIM
    line(desk, ts, f"Assigned to <@{KIM}> by <@{SAM}>")


def test_thread_mention_commands_act_and_are_never_relayed(desk: Sandbox) -> None:
    ts = new_conversation(desk)
    desk.slack.post_as_user(SAM, CHANNEL, f"<@{BOT_USER}> assign <@{KIM}>", thread_ts=ts)
    wait_for(lambda: conv(desk).assignee == KIM, what="assignment from the thread")
    desk.slack.post_as_user(KIM, CHANNEL, f"<@{BOT_USER}> resolve", thread_ts=ts)
    wait_for(lambda: conv(desk).status == "resolved", what="resolve from the thread")
    line(desk, ts, f"Resolved by <@{KIM}>")
    wait_for(lambda: "resolved" in card(desk, ts), what="card shows resolved")
    desk.slack.post_as_user(KIM, CHANNEL, f"<@{BOT_USER}> frobnicate", thread_ts=ts)
    ephemeral_to(desk, KIM, "I don't know `frobnicate`")
    assert desk.x.received_by(MARIA) == []


def test_slash_commands_in_the_channel(desk: Sandbox) -> None:
    ts = new_conversation(desk)
    resp = desk.slack.slash_command(SAM, CHANNEL, f"assign #1 <@{KIM}|kim>")
    assert resp.status_code == 200 and f"assigned to <@{KIM}>" in resp.text
    assert conv(desk).assignee == KIM
    line(desk, ts, f"Assigned to <@{KIM}> by <@{SAM}>")
    listing = desk.slack.slash_command(KIM, CHANNEL, "list mine").text
    assert "#1" in listing and "Maria López" in listing and "waiting on us" in listing
    assert "none" in desk.slack.slash_command(SAM, CHANNEL, "list mine").text
    assert "usage" in desk.slack.slash_command(SAM, CHANNEL, "list everything").text.lower()
    desk.slack.post_as_user(KIM, CHANNEL, "We are on it!", thread_ts=ts)
    wait_for(lambda: desk.x.received_by(MARIA), what="the relay")
    timeline = desk.slack.slash_command(SAM, CHANNEL, "show 1").text
    assert "Hello, I need help" in timeline and "We are on it!" in timeline and "assign" in timeline


def test_escalation_from_a_shortcut_and_modal(desk: Sandbox) -> None:
    ts = new_conversation(desk)
    customer_msg = next(m for m in desk.slack.thread(CHANNEL, ts) if "Hello, I need help" in shown(m))
    assert desk.slack.shortcut(SAM, CHANNEL, customer_msg["ts"], "dmbridge_escalate").status_code == 200
    (view_id,) = desk.slack.views
    desk.slack.submit_view(
        SAM,
        view_id,
        {
            "team": {"value": {"type": "static_select", "selected_option": {"value": "billing"}}},
            "priority": {"value": {"type": "static_select", "selected_option": {"value": "urgent"}}},
            "reason": {"value": {"type": "plain_text_input", "value": "chargeback <!channel> threatened"}},
        },
    )
    c = conv(desk)
    assert (c.team, c.priority, c.escalation_reason) == ("billing", "urgent", "chargeback <!channel> threatened")
    ping = line(desk, ts, "escalated to *billing*")
    assert f"<!subteam^{BILLING_GROUP}>" in shown(ping) and "&lt;!channel&gt;" in shown(ping)
    notice = wait_for(lambda: desk.slack.messages(TEAM_CHANNEL), what="notice in the team channel")[0]
    assert "#1" in shown(notice) and "/archives/C0INBOX/p" in shown(notice)
    wait_for(lambda: "Escalated to *billing*" in card(desk, ts), what="card shows the escalation")
    desk.slack.click(SAM, CHANNEL, ts, "conv_more", option="deescalate")
    assert conv(desk).team is None and conv(desk).priority == "normal"


def test_unknown_team_is_refused_in_the_modal(desk: Sandbox) -> None:
    new_conversation(desk)
    resp = desk.slack.slash_command(SAM, CHANNEL, "escalate 1 legal")
    assert "no team `legal`" in resp.text and "billing" in resp.text
    assert conv(desk).team is None


def test_templates_managed_in_the_channel_and_sent_from_the_thread(desk: Sandbox) -> None:
    ts = new_conversation(desk)
    bad = desk.slack.slash_command(SAM, CHANNEL, "template add greet Hi {firstname}!").text
    assert "not saved" in bad and "{first_name}" in bad and "{agent_first_name}" in bad
    ok = desk.slack.slash_command(
        SAM,
        CHANNEL,
        "template add greet Hi {first_name}, {agent_first_name} from "
        "{brand} here (ticket {conversation} on {platform}).",
    )
    assert "Saved template `greet`" in ok.text
    assert "greet" in desk.slack.slash_command(SAM, CHANNEL, "template list").text
    _cmd_ts, _ = desk.slack.post_as_user(SAM, CHANNEL, f"<@{BOT_USER}> template greet", thread_ts=ts)
    expected = "Hi Maria, Sam from Acme here (ticket 1 on X)."
    wait_for(lambda: desk.x.received_by(MARIA) == [expected], what="the rendered template on X")
    post = line(desk, ts, "sent the template *greet*")
    wait_for(lambda: "white_check_mark" in desk.slack.reactions(CHANNEL, post["ts"]), what="✅ on the post")
    assert ("U0AGENT1", "template", expected) in actions(desk)
    assert "Deleted" in desk.slack.slash_command(SAM, CHANNEL, "template delete greet").text
    desk.slack.post_as_user(SAM, CHANNEL, f"<@{BOT_USER}> template greet", thread_ts=ts)
    ephemeral_to(desk, SAM, "There is no template `greet`")


def test_template_modal_with_picker_and_editable_preview(desk: Sandbox) -> None:
    ts = new_conversation(desk)
    desk.slack.slash_command(SAM, CHANNEL, "template add apology Sorry {first_name}!")
    desk.slack.slash_command(SAM, CHANNEL, "template add bye Bye {name}, from {agent_name}.")
    desk.slack.click(KIM, CHANNEL, ts, "conv_template")
    (view_id,) = desk.slack.views
    first = desk.slack.views[view_id]
    assert "Sorry Maria!" in str(first["blocks"])
    desk.slack.select_in_view(KIM, view_id, "tpl_pick", "bye")
    wait_for(lambda: "Bye Maria López, from Kim Chen." in str(desk.slack.views[view_id]["blocks"]), what="preview")
    preview_block = next(b["block_id"] for b in desk.slack.views[view_id]["blocks"] if b["type"] == "input")
    resp = desk.slack.submit_view(
        KIM, view_id, {preview_block: {"text": {"type": "plain_text_input", "value": "Bye Maria, from Kim. Edited!"}}}
    )
    assert resp.status_code == 200 and "errors" not in resp.text
    wait_for(lambda: desk.x.received_by(MARIA) == ["Bye Maria, from Kim. Edited!"], what="edited template sent")


def test_a_rendered_template_over_the_limit_is_refused_with_its_length(desk: Sandbox) -> None:
    ts = new_conversation(desk)
    desk.slack.slash_command(SAM, CHANNEL, "template add long " + "x" * 9_990 + " {name}")
    desk.slack.post_as_user(SAM, CHANNEL, f"<@{BOT_USER}> template long", thread_ts=ts)
    refusal = ephemeral_to(desk, SAM, "characters")
    assert "10,002 characters" in refusal["text"] and "10,000" in refusal["text"]
    assert desk.x.received_by(MARIA) == []


def test_resolved_conversation_reopens_when_the_customer_writes(desk: Sandbox) -> None:
    ts = new_conversation(desk)
    desk.slack.click(SAM, CHANNEL, ts, "conv_resolve")
    assert conv(desk).status == "resolved"
    wait_for(
        lambda: any(
            e["action_id"] == "conv_reopen"
            for b in desk.slack.messages_by_ts(CHANNEL, ts)["blocks"]
            if b["type"] == "actions"
            for e in b["elements"]
        ),
        what="Reopen button",
    )
    desk.x.customer_sends(MARIA, "Actually, one more thing")
    assert desk.thread_with("Actually, one more thing") == ts
    wait_for(lambda: conv(desk).status == "open", what="reopened")
    line(desk, ts, "is open again")
    wait_for(lambda: "Reopened: the customer wrote again" in card(desk, ts), what="card says reopened")


def test_snooze_wakes_up_once_and_reminds_the_assignee(desk: Sandbox, clock: OffsetClock) -> None:
    ts = new_conversation(desk)
    desk.slack.click(SAM, CHANNEL, ts, "conv_claim")
    desk.slack.click(SAM, CHANNEL, ts, "conv_more", option="snooze:2h")
    c = conv(desk)
    assert c.status == "snoozed" and c.snoozed_until is not None
    wait_for(lambda: "snoozed" in card(desk, ts), what="card shows snoozed")
    clock.offset = 2 * 3600 + 5
    reminder = line(desk, ts, "the snooze is over")
    assert f"<@{SAM}>" in shown(reminder)
    assert conv(desk).status == "open"
    clock.offset += 60
    wait_for(lambda: len([a for a in actions(desk) if a[1] == "reopen"]) == 1, what="one wake-up")
    assert len([m for m in desk.slack.thread(CHANNEL, ts) if "snooze is over" in shown(m)]) == 1


def test_status_shortcut_modal_resolves_and_bad_snooze_is_refused(desk: Sandbox) -> None:
    ts = new_conversation(desk)
    desk.slack.shortcut(KIM, CHANNEL, ts, "dmbridge_status")
    (view_id,) = desk.slack.views
    resp = desk.slack.submit_view(
        KIM,
        view_id,
        {
            "action": {"value": {"type": "radio_buttons", "selected_option": {"value": "snooze"}}},
            "when": {"value": {"type": "plain_text_input", "value": "someday"}},
        },
    )
    assert resp.status_code == 200 and "errors" in resp.json().get("response_action", "")
    assert conv(desk).status == "open"
    desk.slack.submit_view(
        KIM, view_id, {"action": {"value": {"type": "radio_buttons", "selected_option": {"value": "resolve"}}}}
    )
    assert conv(desk).status == "resolved"


def test_assign_shortcut_opens_a_picker(desk: Sandbox) -> None:
    ts = new_conversation(desk)
    desk.slack.shortcut(SAM, CHANNEL, ts, "dmbridge_assign")
    (view_id,) = desk.slack.views
    desk.slack.submit_view(SAM, view_id, {"assignee": {"user": {"type": "users_select", "selected_user": KIM}}})
    assert conv(desk).assignee == KIM


@pytest.fixture
def gated_desk(clock: OffsetClock) -> Iterator[Sandbox]:
    """The outsider is in the channel (Slack lets only members post there, and delivers an ephemeral only to a
    member) but not in the agents group."""
    box = start_sandbox(file=DESK.model_copy(update={"agents": AGENTS_GROUP}), clock=clock, dmbridge_sweep_seconds=0.2)
    box.slack.join_channel(OUTSIDER, CHANNEL)
    try:
        yield box
    finally:
        box.close()


def test_non_agents_are_refused_everywhere_and_change_nothing(gated_desk: Sandbox) -> None:
    desk = gated_desk
    ts = new_conversation(desk)
    desk.slack.click(OUTSIDER, CHANNEL, ts, "conv_claim")
    ephemeral_to(desk, OUTSIDER, "Only agents")
    assert conv(desk).assignee is None
    assert "Only agents" in desk.slack.slash_command(OUTSIDER, CHANNEL, "list all").text
    desk.slack.post_as_user(OUTSIDER, CHANNEL, "I am not staff but here is an answer", thread_ts=ts)
    ephemeral_to(desk, OUTSIDER, "not sent to the customer")
    desk.slack.post_as_user(OUTSIDER, CHANNEL, f"<@{BOT_USER}> resolve", thread_ts=ts)
    wait_for(lambda: len([e for e in desk.slack.ephemerals if e["user"] == OUTSIDER]) >= 3, what="refusals")
    assert conv(desk).status == "open"
    assert desk.x.received_by(MARIA) == []
    assert not [a for a in actions(desk) if a[0] == OUTSIDER]


def test_app_home_lists_my_unassigned_and_escalated_conversations(desk: Sandbox) -> None:
    ts = new_conversation(desk)
    new_conversation_jdoe = "Second customer here"
    desk.x.customer_sends(JDOE, new_conversation_jdoe)
    desk.thread_with(new_conversation_jdoe)
    desk.slack.click(SAM, CHANNEL, ts, "conv_claim")
    desk.slack.open_home(SAM)

    def home() -> str:
        return str(desk.slack.home_views.get(SAM, {}).get("blocks", ""))

    wait_for(lambda: "Assigned to you (1)" in home() and "Unassigned (1)" in home(), what="the Home tab")
    assert "#1" in home() and "#2" in home() and "open: *2*" in home()
    desk.slack.slash_command(SAM, CHANNEL, "escalate 1 billing")
    wait_for(lambda: "Escalated (1)" in home(), what="Home refreshed after a change")


def test_round_robin_skips_away_agents_and_respects_capacity(clock: OffsetClock, make_box: BoxFactory) -> None:
    file = FileConfig(assignment=Assignment(mode="round_robin", usergroup="S0AGENTS", capacity=1))
    box = make_box(file=file, clock=clock)
    box.slack.set_presence(KIM, "away")
    box.x.customer_sends(MARIA, "first customer")
    ts1 = box.thread_with("first customer")
    wait_for(lambda: conv(box, 1).assignee == SAM, what="auto-assigned to the present agent")
    line(box, ts1, f"Assigned to <@{SAM}> (round robin)")
    box.x.customer_sends(JDOE, "second customer")
    ts2 = box.thread_with("second customer")
    line(box, ts2, "Nobody is free")
    assert conv(box, 2).assignee is None
