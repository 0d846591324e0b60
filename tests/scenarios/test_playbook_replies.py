"""Automatic replies, CSAT and opt-out end to end: Meta's signed webhooks in, the Send API out, on the test's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from bridge.playbook_config import AutoReply, Csat
from bridge.sandbox.demo import SAM
from bridge.sandbox.harness import CHANNEL, MESSENGER_CUSTOMER, PAGE_ID, Sandbox, shown, wait_for
from bridge.sandbox.meta import MetaEmulator
from bridge.sandbox.server import OffsetClock
from bridge.sla import WEEKDAYS
from bridge.store.tables import Audit, Conversation, CsatSurvey
from bridge.toml_config import BusinessHoursConfig, FileConfig, SlaConfig
from tests.scenarios.helpers import loops_ran, thread_with

HOUR = 3600
# business hours only on the weekday three days from now (UTC): now is always outside them
AWAY_DAY = (datetime.now(UTC) + timedelta(days=3)).date()
CLOSED = BusinessHoursConfig(**{WEEKDAYS[AWAY_DAY.weekday()]: ["09:00-17:00"]})
ALWAYS = BusinessHoursConfig(**{day: ["00:00-24:00"] for day in WEEKDAYS})
RULES = [
    AutoReply(kind="away", template="away"),
    AutoReply(kind="welcome", template="welcome", after_silence="1h", cooldown="24h"),
]


def file(hours: BusinessHoursConfig, **more: object) -> FileConfig:
    sla = SlaConfig(name="service", first_response="2h", business_hours=hours)
    return FileConfig(sla=[sla], auto_replies=RULES, csat=Csat(accounts=[PAGE_ID]), **more)  # type: ignore[arg-type]


pytestmark = pytest.mark.sandbox(meta=True, file=file(ALWAYS))


def meta(box: Sandbox) -> MetaEmulator:
    assert box.meta is not None
    return box.meta


def templates(box: Sandbox) -> None:
    box.slack.slash_command(SAM, CHANNEL, "template add welcome Hi {first_name}, thanks for writing to {brand}!")
    box.slack.slash_command(SAM, CHANNEL, "template add away We're closed. We're back {next_open}.")


def conv(box: Sandbox) -> Conversation:
    with box.bridge.ctx.db.session() as s:
        found = s.get(Conversation, 1)
        assert found is not None
        return found


def received(box: Sandbox) -> list[str]:
    return meta(box).received_by(MESSENGER_CUSTOMER)


def settled(box: Sandbox) -> None:
    """Every queued delivery had its turn (a platform step, then a Slack step)."""
    loops_ran(box, "platform-delivery", "slack-delivery", "platform-delivery", "slack-delivery")


def says(box: Sandbox, ts: str, text: str) -> bool:
    return any(text in shown(m) for m in box.slack.thread(CHANNEL, ts))


def card(box: Sandbox, ts: str) -> str:
    return shown(box.slack.messages_by_ts(CHANNEL, ts))


def test_welcome_once_within_the_cooldown_and_again_after_a_silence(box: Sandbox, clock: OffsetClock) -> None:
    templates(box)
    meta(box).customer_sends(MESSENGER_CUSTOMER, "Hello, do you ship to Austria?")
    ts = thread_with(box, "do you ship to Austria")
    wait_for(lambda: len(received(box)) == 1, what="the welcome")
    assert received(box)[0] == "Hi Lena, thanks for writing to our team!"  # sent once the profile named her
    wait_for(lambda: says(box, ts, "dmbridge sent the automatic *welcome* reply"), what="the thread's record")
    # two hours later (a silence, but within the 24 h cooldown): no second welcome
    clock.offset = 2 * HOUR
    meta(box).customer_sends(MESSENGER_CUSTOMER, "Anyone there?")
    wait_for(lambda: says(box, ts, "Anyone there?"), what="the second message")
    settled(box)
    assert len(received(box)) == 1
    # a day later: greeted again
    clock.offset = 26 * HOUR
    meta(box).customer_sends(MESSENGER_CUSTOMER, "Hello again")
    wait_for(lambda: len(received(box)) == 2, what="a welcome after the silence")


def test_welcomes_do_not_stop_the_first_response_clock(box: Sandbox) -> None:
    templates(box)
    meta(box).customer_sends(MESSENGER_CUSTOMER, "Where is my parcel?")
    thread_with(box, "Where is my parcel?")
    wait_for(lambda: len(received(box)) == 1, what="the welcome")
    from bridge.store.tables import AutoReplySent

    def recorded() -> bool:  # a fresh read each time: one transaction would keep seeing its first snapshot
        with box.bridge.ctx.db.read() as s:
            return s.exec(select(AutoReplySent.remote_id)).first() is not None

    wait_for(recorded, what="its platform id")
    loops_ran(box, "sla")
    assert conv(box).sla_state == "on_track" and conv(box).sla_kind == "first_response"


@pytest.mark.sandbox(meta=True, file=file(CLOSED))
def test_away_message_outside_business_hours_names_the_next_opening(box: Sandbox) -> None:
    templates(box)
    meta(box).customer_sends(MESSENGER_CUSTOMER, "Are you open?")
    wait_for(lambda: len(received(box)) == 1, what="the away message")
    assert received(box) == [f"We're closed. We're back {AWAY_DAY:%A} at 09:00."]


def test_no_away_message_during_business_hours(box: Sandbox) -> None:
    templates(box)
    meta(box).customer_sends(MESSENGER_CUSTOMER, "Are you open?")
    wait_for(lambda: len(received(box)) == 1, what="the welcome")
    assert not any("closed" in text for text in received(box))


@pytest.mark.sandbox(meta=True, file=file(ALWAYS))
def test_a_missing_template_is_said_in_the_thread(box: Sandbox) -> None:
    meta(box).customer_sends(MESSENGER_CUSTOMER, "Hi")
    ts = thread_with(box, "Hi")
    wait_for(lambda: says(box, ts, "there is no template `welcome`"), what="the notice")
    assert received(box) == []


def test_no_automatic_reply_after_an_agent_answered(box: Sandbox) -> None:
    meta(box).customer_sends(MESSENGER_CUSTOMER, "First question")  # no templates yet: no welcome
    ts = thread_with(box, "First question")
    box.slack.post_as_user(SAM, CHANNEL, "Hi, Sam here", thread_ts=ts)
    wait_for(lambda: received(box) == ["Hi, Sam here"], what="the agent's reply")
    templates(box)
    meta(box).customer_sends(MESSENGER_CUSTOMER, "Second question")
    wait_for(lambda: says(box, ts, "Second question"), what="the mirror")
    settled(box)
    assert received(box) == ["Hi, Sam here"]


# ---------------------------------------------------------------------------------------------------------- CSAT


def resolve(box: Sandbox, ts: str) -> None:
    box.slack.click(SAM, CHANNEL, ts, "conv_resolve")
    wait_for(lambda: conv(box).status == "resolved", what="resolved")


def surveyed(box: Sandbox) -> str:
    """Open a conversation, answer it, resolve it and wait for the survey with its quick replies."""
    meta(box).customer_sends(MESSENGER_CUSTOMER, "My order is late")
    ts = thread_with(box, "My order is late")
    box.slack.post_as_user(SAM, CHANNEL, "It ships today", thread_ts=ts)
    wait_for(lambda: "It ships today" in received(box), what="the answer")
    resolve(box, ts)
    wait_for(lambda: any(m.get("quick_replies") for m in meta(box).log(MESSENGER_CUSTOMER)), what="the survey")
    return ts


def test_a_quick_reply_score_is_recorded_and_does_not_reopen(box: Sandbox) -> None:
    ts = surveyed(box)
    offered = next(m for m in meta(box).log(MESSENGER_CUSTOMER) if m.get("quick_replies"))
    assert offered["text"].startswith("How did we do?")
    assert [q["title"] for q in offered["quick_replies"]] == [
        "1 ⭐",
        "2 ⭐⭐",
        "3 ⭐⭐⭐",
        "4 ⭐⭐⭐⭐",
        "5 ⭐⭐⭐⭐⭐",
    ]
    meta(box).customer_taps(MESSENGER_CUSTOMER, "4 ⭐⭐⭐⭐")
    wait_for(lambda: says(box, ts, "rated this conversation ⭐ 4/5"), what="the score in the thread")
    wait_for(lambda: "CSAT: ⭐ 4/5" in card(box, ts), what="the score on the card")
    assert conv(box).status == "resolved"


def test_a_typed_score_with_a_comment_counts_and_anything_else_reopens(box: Sandbox) -> None:
    ts = surveyed(box)
    meta(box).customer_sends(MESSENGER_CUSTOMER, "5. Lovely service!")
    wait_for(lambda: says(box, ts, "⭐ 5/5: “Lovely service!”"), what="the score and comment")
    assert conv(box).status == "resolved"
    meta(box).customer_sends(MESSENGER_CUSTOMER, "5")  # the survey is answered: now it is a message
    wait_for(lambda: conv(box).status == "open", what="reopened")


def test_a_non_score_answer_reopens(box: Sandbox) -> None:
    surveyed(box)
    meta(box).customer_sends(MESSENGER_CUSTOMER, "Actually, it still has not arrived")
    wait_for(lambda: conv(box).status == "open", what="reopened")
    with box.bridge.ctx.db.session() as s:
        assert s.exec(select(CsatSurvey.score)).all() == [None]


def test_one_survey_per_resolution(box: Sandbox) -> None:
    ts = surveyed(box)
    box.slack.click(SAM, CHANNEL, ts, "conv_reopen")
    wait_for(lambda: conv(box).status == "open", what="reopened")
    wait_for(lambda: "open" in card(box, ts) and "resolved" not in card(box, ts), what="the card redrawn")
    resolve(box, ts)
    wait_for(lambda: sum(1 for m in meta(box).log(MESSENGER_CUSTOMER) if m.get("quick_replies")) == 2, what="two")
    settled(box)
    assert sum(1 for m in meta(box).log(MESSENGER_CUSTOMER) if m.get("quick_replies")) == 2


# ------------------------------------------------------------------------------------------------------- opt-out


def test_an_opted_out_customer_gets_no_welcome_and_no_survey(box: Sandbox) -> None:
    meta(box).customer_sends(MESSENGER_CUSTOMER, "STOP!")
    ts = thread_with(box, "STOP!")
    wait_for(lambda: conv(box).opted_out_at is not None, what="opted out")
    wait_for(lambda: "opted out of automatic messages" in card(box, ts), what="the card says so")
    with box.bridge.ctx.db.session() as s:
        assert s.exec(select(Audit.actor).where(Audit.action == "opt_out")).all() == ["customer"]
    templates(box)
    box.slack.post_as_user(SAM, CHANNEL, "Sorry to see you go", thread_ts=ts)  # agents can still answer
    wait_for(lambda: received(box) == ["Sorry to see you go"], what="the agent's reply")
    resolve(box, ts)
    settled(box)
    assert received(box) == ["Sorry to see you go"]
    with box.bridge.ctx.db.session() as s:
        assert s.exec(select(CsatSurvey)).all() == []


# ------------------------------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize(("text", "payload"), [("999", None), ("hello", "CSAT:1:999"), ("hello", "CSAT:2:5")])
def test_hostile_a_score_of_999_or_a_forged_payload_reopens(box: Sandbox, text: str, payload: str | None) -> None:
    surveyed(box)
    if payload is None:
        meta(box).customer_sends(MESSENGER_CUSTOMER, text)
    else:  # a payload we never offered (no such score, another survey's)
        meta(box).customer_taps(MESSENGER_CUSTOMER, text, payload=payload)
    wait_for(lambda: conv(box).status == "open", what="reopened")
    with box.bridge.ctx.db.session() as s:
        assert s.exec(select(CsatSurvey.score)).all() == [None]


def test_hostile_a_score_after_the_window_is_a_message(box: Sandbox, clock: OffsetClock) -> None:
    surveyed(box)
    clock.offset = 4 * 24 * HOUR  # the default window is 3 days
    meta(box).customer_sends(MESSENGER_CUSTOMER, "5")
    wait_for(lambda: conv(box).status == "open", what="reopened")
    with box.bridge.ctx.db.session() as s:
        assert s.exec(select(CsatSurvey.score)).all() == [None]


def test_hostile_a_10000_character_opt_out_attempt_is_a_message(box: Sandbox) -> None:
    meta(box).customer_sends(MESSENGER_CUSTOMER, "stop " * 2000)
    thread_with(box, "stop stop")
    settled(box)
    assert conv(box).opted_out_at is None
