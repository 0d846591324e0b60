"""SLA reminders end to end with an injected clock: the warning, then the breach and its actions, each once."""

from __future__ import annotations

import pytest

from bridge.app import build
from bridge.sandbox.demo import JDOE, MARIA, SAM
from bridge.sandbox.harness import BILLING_GROUP, CHANNEL, TEAM_CHANNEL, Sandbox, shown, start_sandbox, wait_for
from bridge.sandbox.server import OffsetClock
from bridge.store.tables import Conversation
from bridge.toml_config import FileConfig, SlaConfig, Team
from tests.scenarios.helpers import loops_ran

STANDARD = SlaConfig(
    name="standard",
    first_response="2h",
    next_response="1h",
    warn_before="15m",
    on_breach=["remind", "escalate:billing"],
)
FILE = FileConfig(teams={"billing": Team(usergroup=BILLING_GROUP, channel=TEAM_CHANNEL)}, sla=[STANDARD])


pytestmark = pytest.mark.sandbox(file=FILE, dmbridge_sweep_seconds=0.1)


def conv(box: Sandbox, number: int = 1) -> Conversation:
    with box.bridge.ctx.db.session() as s:
        found = s.get(Conversation, number)
        assert found is not None
        return found


def lines(box: Sandbox, ts: str, text: str) -> list[str]:
    return [shown(m) for m in box.slack.thread(CHANNEL, ts) if text in shown(m)]


def card(box: Sandbox, ts: str) -> str:
    return shown(box.slack.messages_by_ts(CHANNEL, ts))


def test_warning_then_breach_then_escalation_exactly_once(box: Sandbox, clock: OffsetClock) -> None:
    box.x.customer_sends(MARIA, "Where is my refund?")
    ts = box.thread_with("Where is my refund?")
    box.slack.click(SAM, CHANNEL, ts, "conv_claim")
    wait_for(
        lambda: "SLA *standard*: :large_green_circle: on track · first response due" in card(box, ts),
        what="the card's SLA line",
    )
    assert "<!date^" in card(box, ts)

    clock.offset = 106 * 60  # 1 h 46 min: inside the 15-minute warning
    warning = wait_for(lambda: lines(box, ts, "is due"), what="the warning")[0]
    assert f"<@{SAM}>" in warning and "first response" in warning and "standard" in warning
    wait_for(lambda: "due soon" in card(box, ts), what="card shows due soon")

    clock.offset = 2 * 3600 + 60  # breached a minute ago
    breach = wait_for(lambda: lines(box, ts, "was breached"), what="the breach")[0]
    assert f"<@{SAM}>" in breach
    escalated = wait_for(lambda: lines(box, ts, "escalated to *billing*"), what="escalation on breach")[0]
    assert f"<!subteam^{BILLING_GROUP}>" in escalated and "by dmbridge" in escalated
    assert conv(box).team == "billing" and conv(box).priority == "urgent"
    wait_for(lambda: box.slack.messages(TEAM_CHANNEL), what="the team channel notice")
    wait_for(lambda: "breached" in card(box, ts), what="card shows breached")

    clock.offset += 3600  # more sweeps: nothing is repeated
    loops_ran(box, "sla", "slack-delivery")
    assert len(lines(box, ts, "is due")) == 1
    assert len(lines(box, ts, "was breached")) == 1
    assert len(lines(box, ts, "escalated to *billing*")) == 1


def test_a_reply_stops_the_clock_and_a_new_message_starts_next_response(box: Sandbox, clock: OffsetClock) -> None:
    box.x.customer_sends(JDOE, "Hello?")
    ts = box.thread_with("Hello?")
    wait_for(lambda: conv(box).sla_state == "on_track", what="first response running")
    box.slack.post_as_user(SAM, CHANNEL, "Hi! How can we help?", thread_ts=ts)
    wait_for(lambda: box.x.received_by(JDOE), what="the reply delivered")
    wait_for(lambda: conv(box).sla_state == "paused", what="clock stopped by the reply")
    clock.offset = 5 * 3600  # long after: no warning, no breach while waiting on the customer
    loops_ran(box, "sla", "slack-delivery")
    assert not lines(box, ts, "is due") and not lines(box, ts, "was breached")
    clock.offset = 0  # back in step with the emulator, which stamps the customer's next message in real time
    box.x.customer_sends(JDOE, "My parcel is late")
    wait_for(
        lambda: conv(box).sla_kind == "next_response" and conv(box).sla_state == "on_track",
        what="next response running",
    )
    due = conv(box).sla_due_at
    assert due is not None and abs(due - (clock() + 3600)) < 30


def test_snoozed_conversations_do_not_breach(box: Sandbox, clock: OffsetClock) -> None:
    box.x.customer_sends(MARIA, "Call me next week")
    ts = box.thread_with("Call me next week")
    box.slack.click(SAM, CHANNEL, ts, "conv_more", option="snooze:tomorrow 9:00")
    wait_for(lambda: conv(box).sla_state == "paused", what="paused by the snooze")
    clock.offset = 3 * 3600
    loops_ran(box, "sla", "slack-delivery")
    assert not lines(box, ts, "was breached")


def test_two_processes_on_postgresql_send_each_reminder_once(pg_url: str, clock: OffsetClock) -> None:
    box = start_sandbox(database_url=pg_url, file=FILE, clock=clock, dmbridge_sweep_seconds=0.05)
    other = build(box.settings, FILE, clock=clock)
    other.start()
    try:
        box.x.customer_sends(MARIA, "Anyone there?")
        ts = box.thread_with("Anyone there?")
        clock.offset = 2 * 3600 + 60
        wait_for(lambda: lines(box, ts, "was breached"), what="the breach")
        wait_for(lambda: lines(box, ts, "escalated to *billing*"), what="the escalation")
        loops_ran([box.bridge, other], "sla", "slack-delivery")  # both processes sweep again
        assert len(lines(box, ts, "is due")) <= 1  # the warning may be skipped when both are due at once
        assert len(lines(box, ts, "was breached")) == 1
        assert len(lines(box, ts, "escalated to *billing*")) == 1
        assert len(box.slack.messages(TEAM_CHANNEL)) == 1
    finally:
        other.stop()
        box.close()


def test_sla_policies_are_listed_in_the_channel(box: Sandbox) -> None:
    text = box.slack.slash_command(SAM, CHANNEL, "sla").text
    assert "*standard*" in text and "first response 2h" in text and "warn 15m before" in text
    assert "escalate:billing" in text


def test_stats_in_the_channel_on_the_command_line_and_in_the_home_tab(box: Sandbox, tmp_path: object) -> None:
    box.x.customer_sends(MARIA, "Quick question")
    ts = box.thread_with("Quick question")
    box.slack.post_as_user(SAM, CHANNEL, "Quick answer", thread_ts=ts)
    wait_for(lambda: box.x.received_by(MARIA), what="the reply")
    box.slack.click(SAM, CHANNEL, ts, "conv_resolve")
    text = wait_for(
        lambda: (t := box.slack.slash_command(SAM, CHANNEL, "stats 7d").text) and "Resolution: median" in t and t,
        what="stats with the resolution",
    )
    assert "Messages in: *1*" in text and "out: *1*" in text and "First response: median 0m" in text
    assert "standard 100% of 1" in text
    assert "Usage" in box.slack.slash_command(SAM, CHANNEL, "stats forever").text
    box.slack.open_home(SAM)
    wait_for(lambda: "Last 7 days" in str(box.slack.home_views.get(SAM, {})), what="stats on the Home tab")
