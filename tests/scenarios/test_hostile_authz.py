"""Who may act, attacked from outside: strangers in their own channels, members who are not admins,
non-agents on the App Home and in modals, forged interactivity payloads. Each through signed requests from
the Slack emulator to the running bridge; each refused privately, with nothing changed or revealed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from bridge import manifest
from bridge.sandbox.demo import KIM, MARIA, SAM
from bridge.sandbox.harness import BILLING_GROUP, CHANNEL, TEAM_CHANNEL, Sandbox, start_sandbox, wait_for
from bridge.sandbox.slack import BOT_USER
from bridge.slack.views import TEMPLATE_MODAL
from bridge.store.tables import Audit, Conversation, Outbox, Template
from bridge.toml_config import FileConfig, Route, Team

STRANGER = "U0STRANGER"
STRANGER_CHANNEL = "C0STRANGER"  # a public channel of the stranger's own, which the bot was invited to
OUTSIDER = "U0OUTSIDER"  # in the workspace, in no desk channel
ADMINS = "S0ADMINS"
VIP_CHANNEL = "C0VIP"
CUSTOMER_TEXT = "Hello, my card number ends in 4242"
DESK = FileConfig(brand="Acme", teams={"billing": Team(usergroup=BILLING_GROUP, channel=TEAM_CHANNEL)})


def start(file: FileConfig = DESK) -> Sandbox:
    box = start_sandbox(file=file)
    box.slack.add_user(STRANGER, "mallory", "Mallory Stranger")
    box.slack.add_channel(STRANGER_CHANNEL, "mallorys-corner", members=[STRANGER, BOT_USER])
    return box


def conversation(box: Sandbox, number: int = 1) -> Conversation:
    with box.bridge.ctx.db.read() as s:
        found = s.get(Conversation, number)
        assert found is not None
        return found


def new_conversation(box: Sandbox, channel: str = CHANNEL) -> str:
    box.x.customer_sends(MARIA, CUSTOMER_TEXT)
    ts = box.thread_with(CUSTOMER_TEXT, channel=channel)
    wait_for(lambda: conversation(box).thread_ts == ts, what="the conversation's thread")
    return ts


def state(box: Sandbox) -> tuple[Any, ...]:
    """Everything an attack could change: the conversation, the audit, the templates, the outbox."""
    with box.bridge.ctx.db.read() as s:
        conv = s.get(Conversation, 1)
        assert conv is not None
        return (
            (conv.status, conv.assignee, conv.team, conv.priority, conv.snoozed_until),
            [(a.actor, a.action) for a in s.exec(select(Audit).order_by(col(Audit.id))).all()],
            sorted((t.name, t.text) for t in s.exec(select(Template)).all()),
            [
                (o.kind, o.dedupe_key)
                for o in s.exec(select(Outbox).where(col(Outbox.kind).not_in(("ephemeral", "home")))).all()
            ],
        )


def revealed(text: str) -> bool:
    return any(secret in text for secret in ("Maria", "4242", "maria_l", "#1 ·"))


@pytest.fixture(scope="module")
def desk() -> Iterator[tuple[Sandbox, str]]:
    box = start()
    try:
        ts = new_conversation(box)
        assert "Saved" in box.slack.slash_command(SAM, CHANNEL, "template add thanks Thanks {first_name}!").text
        yield box, ts
    finally:
        box.close()


@dataclass(frozen=True)
class Attack:
    name: str
    text: str


SLASH_ATTACKS = [
    Attack("show the timeline", "show 1"),
    Attack("list all", "list all"),
    Attack("list unassigned", "list unassigned"),
    Attack("stats", "stats 30d"),
    Attack("sla policies", "sla"),
    Attack("template list", "template list"),
    Attack("template show", "template show thanks"),
    Attack("template add (phishing)", "template add verify Verify your account at https://acme-login.example"),
    Attack("template delete", "template delete thanks"),
    Attack("resolve", "resolve 1"),
    Attack("assign to self", f"assign 1 <@{STRANGER}|mallory>"),
    Attack("claim", "claim 1"),
    Attack("snooze", "snooze 1 2h"),
    Attack("escalate", "escalate 1 billing urgent"),
]


@pytest.mark.parametrize("attack", SLASH_ATTACKS, ids=[a.name for a in SLASH_ATTACKS])
def test_a_stranger_in_their_own_channel_is_refused(desk: tuple[Sandbox, str], attack: Attack) -> None:
    box, _ts = desk
    before = state(box)
    resp = box.slack.slash_command(STRANGER, STRANGER_CHANNEL, attack.text)
    assert resp.status_code == 200
    answer = resp.text
    assert "Only agents of this desk" in answer, answer
    assert '"in_channel"' not in answer  # answered privately
    assert not revealed(answer)
    assert state(box) == before
    assert box.slack.messages(STRANGER_CHANNEL) == []  # nothing posted where the stranger typed


def test_a_stranger_learns_nothing_about_which_conversations_exist(desk: tuple[Sandbox, str]) -> None:
    box, _ts = desk
    answers = {
        box.slack.slash_command(STRANGER, STRANGER_CHANNEL, f"{verb} {n}").text
        for verb in ("show", "resolve")
        for n in (1, 999)
    }
    assert len(answers) == 1 and "Only agents of this desk" in answers.pop()


def test_the_same_commands_still_work_for_an_agent(desk: tuple[Sandbox, str]) -> None:
    box, _ts = desk
    assert CUSTOMER_TEXT in box.slack.slash_command(SAM, CHANNEL, "show 1").text
    assert "Maria" in box.slack.slash_command(KIM, STRANGER_CHANNEL, "list all").text  # typed anywhere
    assert "thanks" in box.slack.slash_command(KIM, CHANNEL, "template list").text


def test_a_member_who_is_not_an_admin_cannot_change_templates() -> None:
    box = start(DESK.model_copy(update={"admins": ADMINS}))
    try:
        box.slack.add_usergroup(ADMINS, [SAM])
        new_conversation(box)
        assert "Saved" in box.slack.slash_command(SAM, CHANNEL, "template add thanks Thanks {first_name}!").text
        before = state(box)
        for text in (
            "template add verify Verify your account at https://acme-login.example",
            "template add thanks Your account is locked, log in at https://acme-login.example",
            "template delete thanks",
        ):
            answer = box.slack.slash_command(KIM, CHANNEL, text).text  # KIM: an agent, not an admin
            assert "Only the desk's admins" in answer, answer
        assert state(box) == before
        assert "thanks" in box.slack.slash_command(KIM, CHANNEL, "template show thanks").text  # reading is fine
        assert "Deleted" in box.slack.slash_command(SAM, CHANNEL, "template delete thanks").text
    finally:
        box.close()


@pytest.mark.parametrize("user", [STRANGER, OUTSIDER])
def test_a_non_agent_opening_the_app_home_sees_no_customer_data(desk: tuple[Sandbox, str], user: str) -> None:
    box, _ts = desk
    box.slack.open_home(user)
    view = wait_for(lambda: box.slack.home_views.get(user), what=f"the Home tab published for {user}")
    published = json.dumps(view)
    assert "not an agent of this desk" in published
    assert not revealed(published) and "Unassigned" not in published and "Escalated" not in published
    box.slack.open_home(SAM)  # an agent still sees the desk
    wait_for(lambda: "Maria" in json.dumps(box.slack.home_views.get(SAM) or {}), what="the agent's Home tab")


def _views_open(box: Sandbox) -> int:
    return len(box.slack.calls("views.open"))


def _refused(box: Sandbox, user: str) -> None:
    wait_for(
        lambda: [e for e in box.slack.ephemerals if e["user"] == user and "Only agents" in e["text"]],
        what=f"a private refusal to {user}",
    )


def _card_uses(box: Sandbox, ts: str) -> list[tuple[str, dict[str, str]]]:
    """Every way to use the card as it is shown: each button, each menu option, the assignee picker."""
    uses: list[tuple[str, dict[str, str]]] = []
    for block in box.slack.messages_by_ts(CHANNEL, ts).get("blocks") or []:
        elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
        elements += [block["accessory"]] if block.get("accessory") else []
        for element in elements:
            if element["type"] == "button":
                uses.append((element["action_id"], {}))
            elif element["type"] in ("overflow", "static_select"):
                uses += [(element["action_id"], {"option": o["value"]}) for o in element["options"]]
            elif element["type"] == "users_select":
                uses.append((element["action_id"], {"selected_user": OUTSIDER}))
    return uses


def test_a_non_agent_using_anything_on_the_card_changes_nothing_and_gets_no_form(desk: tuple[Sandbox, str]) -> None:
    box, ts = desk
    uses = _card_uses(box, ts)
    assert {"conv_claim", "conv_template", "conv_escalate", "conv_assign", "conv_more"} <= {u[0] for u in uses}
    before, opened = state(box), _views_open(box)
    for action_id, how in uses:
        refusals = len([e for e in box.slack.ephemerals if e["user"] == OUTSIDER])
        assert box.slack.click(OUTSIDER, CHANNEL, ts, action_id, **how).status_code == 200
        wait_for(
            lambda n=refusals: (
                len(
                    [
                        e
                        for e in box.slack.ephemerals  # type: ignore[misc]
                        if e["user"] == OUTSIDER and "Only agents" in e["text"]
                    ]
                )
                > n
            ),
            what=f"a private refusal of {action_id} {how}",
        )
    assert _views_open(box) == opened
    assert state(box) == before


SHORTCUTS = [s["callback_id"] for s in manifest.load()["features"]["shortcuts"]]


@pytest.mark.parametrize("callback", SHORTCUTS)
def test_a_non_agent_running_a_shortcut_gets_no_form(desk: tuple[Sandbox, str], callback: str) -> None:
    box, ts = desk
    opened = _views_open(box)
    assert box.slack.shortcut(OUTSIDER, CHANNEL, ts, callback).status_code == 200
    _refused(box, OUTSIDER)
    assert _views_open(box) == opened


def _forged_view(callback: str, metadata: str, values: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "VFORGED01",
        "type": "modal",
        "callback_id": callback,
        "private_metadata": metadata,
        "hash": "1.forged",
        "blocks": [],
        "state": {"values": values},
    }


PREVIEW = {"preview:thanks": {"text": {"type": "plain_text_input", "value": "Click https://acme-login.example"}}}
STATUS = {"action": {"value": {"type": "radio_buttons", "selected_option": {"value": "resolve"}}}}


@dataclass(frozen=True)
class Forged:
    name: str
    view: dict[str, Any]
    real: bool = False
    """Names a real conversation: refused with an error on the form."""


FORGED = [
    Forged("template without a template name", _forged_view(TEMPLATE_MODAL, '{"conv": 1}', PREVIEW), True),
    Forged("template send", _forged_view(TEMPLATE_MODAL, '{"conv": 1, "template": "thanks"}', PREVIEW), True),
    Forged("status: resolve", _forged_view("dmbridge_status_modal", '{"conv": 1}', STATUS), True),
    Forged("metadata not JSON", _forged_view("dmbridge_status_modal", "{conv: 1", STATUS)),
    Forged("metadata not an object", _forged_view("dmbridge_status_modal", "[1]", STATUS)),
    Forged("conversation not a number", _forged_view("dmbridge_status_modal", '{"conv": "one"}', STATUS)),
    Forged("conversation too large", _forged_view("dmbridge_status_modal", '{"conv": 1e400}', STATUS)),
    Forged("metadata nested deeply", _forged_view("dmbridge_status_modal", "[" * 100_000, STATUS)),
    Forged("state not an object", {**_forged_view("dmbridge_status_modal", '{"conv": 1}', STATUS), "state": [1]}),
]


def _submit(box: Sandbox, user: str, view: dict[str, Any]) -> httpx.Response:
    return box.slack.interact(
        {
            "type": "view_submission",
            "user": {"id": user, "name": user, "team_id": "T0"},
            "view": view,
            "response_urls": [],
        }
    )


@pytest.mark.parametrize("forged", FORGED, ids=[f.name for f in FORGED])
def test_a_forged_view_submission_is_refused(desk: tuple[Sandbox, str], forged: Forged) -> None:
    box, _ts = desk
    before = state(box)
    resp = _submit(box, STRANGER, forged.view)
    assert resp.status_code == 200, resp.text
    if forged.real:
        body = resp.json()
        assert body["response_action"] == "errors"
        assert any("Only agents" in e for e in body["errors"].values())
    assert state(box) == before
    assert box.x.received_by(MARIA) == []


def test_a_forged_template_pick_in_a_modal_renders_nothing(desk: tuple[Sandbox, str]) -> None:
    """block_actions from inside a view: the rendered preview would show the customer's name."""
    box, _ts = desk
    updates = len(box.slack.calls("views.update"))
    action = {
        "type": "static_select",
        "action_id": "tpl_pick",
        "block_id": "tpl_pick",
        "selected_option": {"text": {"type": "plain_text", "text": "thanks"}, "value": "thanks"},
        "action_ts": "1.0",
    }
    view = _forged_view(TEMPLATE_MODAL, '{"conv": 1, "template": null}', {})
    resp = box.slack.interact(
        {
            "type": "block_actions",
            "user": {"id": STRANGER, "name": "mallory", "team_id": "T0"},
            "container": {"type": "view", "view_id": view["id"]},
            "view": view,
            "actions": [action],
        }
    )
    assert resp.status_code == 200
    # a modal's block_actions carry no response_url, and Slack refuses an ephemeral to a non-member
    # (user_not_in_channel): the refusal is tried, and what matters is that nothing was rendered
    wait_for(
        lambda: any(c.params.get("user") == STRANGER for c in box.slack.calls("chat.postEphemeral")),
        what="the refusal tried",
    )
    assert len(box.slack.calls("views.update")) == updates


def test_a_conversation_routed_to_another_desk_channel_is_judged_in_its_own_channel() -> None:
    """SAM is an agent of the main channel, not of the VIP channel the conversation was routed to."""
    box = start(DESK.model_copy(update={"routes": [Route(connector="x", channel=VIP_CHANNEL)]}))
    try:
        box.slack.add_channel(VIP_CHANNEL, "vip-inbox", members=[KIM, BOT_USER])
        ts = new_conversation(box, channel=VIP_CHANNEL)
        before = state(box)
        answer = box.slack.slash_command(SAM, CHANNEL, "show 1").text
        assert "Only agents of the channel this conversation lives in" in answer and not revealed(answer)
        assert "Only agents" in box.slack.slash_command(SAM, CHANNEL, "resolve 1").text
        assert not revealed(box.slack.slash_command(SAM, CHANNEL, "list all").text)
        box.slack.open_home(SAM)
        home = wait_for(lambda: box.slack.home_views.get(SAM), what="SAM's Home tab")
        assert not revealed(json.dumps(home)) and "Unassigned (0)" in json.dumps(home)
        assert state(box) == before
        assert CUSTOMER_TEXT in box.slack.slash_command(KIM, CHANNEL, "show 1").text  # KIM is of the VIP channel
        assert "Maria" in box.slack.slash_command(KIM, CHANNEL, "list all").text
        box.slack.click(KIM, VIP_CHANNEL, ts, "conv_claim")
        wait_for(lambda: conversation(box).assignee == KIM, what="KIM's claim")
    finally:
        box.close()
