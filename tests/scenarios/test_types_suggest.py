"""Inquiry types and suggested replies through serve: the suggestion on the card, Confirm and the select,
``@dmbridge type`` and ``/dm type``, the type's SLA policy, and a suggested reply clicked and sent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import select

from bridge.sandbox.demo import MARIA, SAM
from bridge.sandbox.harness import CHANNEL, Sandbox, shown, start_sandbox, wait_for
from bridge.sandbox.server import OffsetClock
from bridge.sandbox.slack import BOT_USER
from bridge.store.tables import Conversation, TemplateChoice, TypeExample
from bridge.toml_config import FileConfig, SlaConfig

FILE = FileConfig(
    brand="Acme",
    sla=[
        SlaConfig(name="service", first_response="2h", types=["service"]),
        SlaConfig(name="sales", first_response="24h", types=["sales"]),
    ],
)
OUTSIDER = "U0OUTSIDER"


@pytest.fixture
def box(clock: OffsetClock) -> Iterator[Sandbox]:
    sandbox = start_sandbox(file=FILE, clock=clock, dmbridge_sweep_seconds=0.1)
    try:
        yield sandbox
    finally:
        sandbox.close()


def conv(box: Sandbox, number: int = 1) -> Conversation:
    with box.bridge.ctx.db.session() as s:
        found = s.get(Conversation, number)
        assert found is not None
        return found


def card(box: Sandbox, ts: str) -> str:
    return shown(box.slack.messages_by_ts(CHANNEL, ts))


def start(box: Sandbox, text: str) -> str:
    box.x.customer_sends(MARIA, text)
    ts = box.thread_with(text)
    wait_for(lambda: conv(box).thread_ts == ts, what="the conversation's thread")
    return ts


def test_first_message_suggests_a_type_and_confirm_applies_its_sla(box: Sandbox) -> None:
    ts = start(box, "What is the price of the blue jacket?")
    assert conv(box).suggested_type == "sales" and conv(box).inquiry_type is None
    wait_for(lambda: "sales?" in card(box, ts), what="the suggestion on the card")
    box.slack.click(SAM, CHANNEL, ts, "conv_type_confirm")
    assert conv(box).inquiry_type == "sales"
    wait_for(lambda: conv(box).sla_policy == "sales", what="the sales SLA policy")
    wait_for(lambda: "Type: :moneybag: *sales*" in card(box, ts), what="the confirmed type on the card")
    with box.bridge.ctx.db.session() as s:
        (example,) = s.exec(select(TypeExample)).all()
    assert example.type == "sales" and "blue jacket" in example.text and example.confirmed_by == SAM


def test_type_by_select_thread_command_and_slash_command(box: Sandbox) -> None:
    ts = start(box, "hello there")
    assert conv(box).suggested_type is None  # no keyword, no examples: abstains
    box.slack.click(SAM, CHANNEL, ts, "conv_type_pick", option="complaint")
    assert conv(box).inquiry_type == "complaint" and conv(box).priority == "high"  # the type's priority
    box.slack.post_as_user(SAM, CHANNEL, f"<@{BOT_USER}> type service", thread_ts=ts)
    wait_for(lambda: conv(box).inquiry_type == "service", what="type by thread command")
    wait_for(lambda: conv(box).sla_policy == "service", what="the service SLA policy")
    resp = box.slack.slash_command(SAM, CHANNEL, "type 1 sales")
    assert "now of type sales" in resp.text and conv(box).inquiry_type == "sales"


def test_hostile_type_requests_change_nothing(box: Sandbox) -> None:
    start(box, "hello there")
    refusal = box.slack.slash_command(SAM, CHANNEL, "type 1 <!channel>*bold*").text
    assert "There is no type" in refusal and "`service`" in refusal and "<!channel>" not in refusal
    assert "not a conversation number" in box.slack.slash_command(SAM, CHANNEL, "type 99999999999 sales").text
    assert conv(box).inquiry_type is None
    stranger = box.slack.slash_command(OUTSIDER, CHANNEL, "type 1 sales").text
    assert conv(box).inquiry_type is None, stranger


def test_suggested_reply_opens_the_modal_and_sending_delivers_it(box: Sandbox) -> None:
    box.slack.slash_command(SAM, CHANNEL, "template add refund Sorry {first_name}, your refund is on its way.")
    box.slack.slash_command(SAM, CHANNEL, "template add hours We are open 9 to 5, Monday to Friday.")
    ts = start(box, "I want a refund please")
    post = wait_for(
        lambda: [m for m in box.slack.thread(CHANNEL, ts)[1:] if "sugg_tpl" in str(m.get("blocks"))],
        what="suggested replies under the customer's message",
    )[0]
    assert "Reply: refund" in str(post["blocks"])
    box.slack.click(SAM, CHANNEL, post["ts"], "sugg_tpl_0")
    (view_id,) = box.slack.views
    assert "Sorry Maria, your refund is on its way." in str(box.slack.views[view_id]["blocks"])
    preview = next(b["block_id"] for b in box.slack.views[view_id]["blocks"] if b["type"] == "input")
    text = "Sorry Maria, your refund is on its way."
    resp = box.slack.submit_view(SAM, view_id, {preview: {"text": {"type": "plain_text_input", "value": text}}})
    assert resp.status_code == 200 and "errors" not in resp.text
    wait_for(lambda: box.x.received_by(MARIA) == ["Sorry Maria, your refund is on its way."], what="sent")
    with box.bridge.ctx.db.session() as s:
        (choice,) = s.exec(select(TemplateChoice)).all()
    assert choice.template == "refund" and choice.text == "I want a refund please"


def test_no_templates_no_suggestion_buttons(box: Sandbox) -> None:
    ts = start(box, "I want a refund please")
    posts = box.slack.thread(CHANNEL, ts)[1:]
    assert posts and all("sugg_tpl" not in str(m.get("blocks")) for m in posts)
