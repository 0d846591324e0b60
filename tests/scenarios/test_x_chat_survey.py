"""The satisfaction survey in X Chat offers 1–5 as quick replies (chatxdk's ``quick_reply``, encrypted with the
message); the customer's app taps one and the encrypted response's metadata records the score."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlmodel import select

from bridge.playbook_config import Csat
from bridge.sandbox.demo import MARIA, SAM
from bridge.sandbox.harness import CHANNEL, Sandbox, shown, wait_for
from bridge.sandbox.x import BRAND_USERNAME
from bridge.store.tables import Conversation, CsatSurvey
from bridge.toml_config import FileConfig
from tests.scenarios.helpers import thread_with

pytestmark = pytest.mark.sandbox(
    x_webhooks=True, x_chat=True, x_reconcile_seconds=0.5, file=FileConfig(csat=Csat(accounts=[BRAND_USERNAME]))
)
STARS = ["1 ⭐", "2 ⭐⭐", "3 ⭐⭐⭐", "4 ⭐⭐⭐⭐", "5 ⭐⭐⭐⭐⭐"]


def status(box: Sandbox) -> str:
    with box.bridge.ctx.db.read() as s:
        return s.exec(select(Conversation.status)).one()


def answered_and_resolved(
    box: Sandbox, write: Callable[[str, str], object], read: Callable[[str], list[str]], question: str, answer: str
) -> str:
    """Maria writes ``question`` (by ``write``), Sam answers, she reads it (by ``read``), Sam resolves: the ts."""
    write(MARIA, question)
    ts = thread_with(box, question)
    box.slack.post_as_user(SAM, CHANNEL, answer, thread_ts=ts)
    wait_for(lambda: answer in read(MARIA), what="the answer")
    box.slack.click(SAM, CHANNEL, ts, "conv_resolve")
    return ts


def test_the_survey_offers_quick_replies_and_a_tapped_one_is_the_score(box: Sandbox) -> None:
    ts = answered_and_resolved(
        box, box.x.customer_chats, box.x.chat_received_by, "¿Dónde está mi pedido?", "Llega mañana."
    )
    offers = wait_for(lambda: box.x.chat_offers_received_by(MARIA), what="the survey with its quick replies")
    assert offers[0][0].startswith("How did we do?") and offers[0][1] == STARS
    thread = [shown(m) for m in box.slack.thread(CHANNEL, ts)]
    assert any("dmbridge sent the satisfaction survey" in t and "Buttons: 1 ⭐" in t for t in thread)
    box.x.customer_taps_chat(MARIA, "4 ⭐⭐⭐⭐")
    wait_for(lambda: "CSAT: ⭐ 4/5" in shown(box.slack.thread(CHANNEL, ts)[0]), what="the score on the card")
    with box.bridge.ctx.db.read() as s:
        assert s.exec(select(CsatSurvey.score)).all() == [4]
    assert status(box) == "resolved"  # an answer to the survey, not a new message


def test_a_legacy_dm_conversation_gets_the_question_as_text(box: Sandbox) -> None:
    ts = answered_and_resolved(box, box.x.customer_sends, box.x.received_by, "Hello by DM", "Hi!")
    wait_for(lambda: any(t.startswith("How did we do?") for t in box.x.received_by(MARIA)), what="the survey")
    thread = [shown(m) for m in box.slack.thread(CHANNEL, ts)]
    survey = [t for t in thread if "dmbridge sent the satisfaction survey" in t]
    assert survey and not any("Buttons:" in t for t in survey)  # no quick replies offered on a legacy DM
    box.x.customer_sends(MARIA, "5")
    wait_for(lambda: "CSAT: ⭐ 5/5" in shown(box.slack.thread(CHANNEL, ts)[0]), what="the typed score")
