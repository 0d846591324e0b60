"""Hostile input against the engine (issue 11, items 4 and 5), end to end through signed Slack requests.

``@dmbridge snooze 9999999d`` raised OverflowError in the event processor;
the batch rolled back and was retried forever, so later replies in other
conversations never went out. ``/dm snooze 1 9999999d`` answered 500.
"""

from __future__ import annotations

from bridge.sandbox.demo import MARIA, SAM
from bridge.sandbox.harness import CHANNEL, Sandbox, wait_for
from bridge.sandbox.slack import BOT_USER


def _thread(box: Sandbox, customer: str, text: str) -> str:
    box.x.customer_sends(customer, text)
    return box.thread_with(text)


def test_an_absurd_snooze_in_a_thread_is_refused_and_later_replies_still_go_out(box: Sandbox) -> None:
    ts = _thread(box, MARIA, "Hello, I need help")
    box.slack.post_as_user(SAM, CHANNEL, f"<@{BOT_USER}> snooze 9999999d", thread_ts=ts)
    wait_for(
        lambda: [e for e in box.slack.ephemerals if e["user"] == SAM and "at most 365 days" in e["text"]],
        what="a private refusal with the maximum",
    )
    box.slack.post_as_user(SAM, CHANNEL, "Thanks, looking into it", thread_ts=ts)
    wait_for(lambda: "Thanks, looking into it" in box.x.received_by(MARIA), what="the next reply relayed")


def test_an_absurd_snooze_slash_command_answers_not_500(box: Sandbox) -> None:
    _thread(box, MARIA, "Hello again")
    resp = box.slack.slash_command(SAM, CHANNEL, "snooze 1 9999999d")
    assert resp.status_code == 200, resp.text
    wait_for(lambda: any("at most 365 days" in str(r) for r in _answers(box, resp)), what="the refusal")


def _answers(box: Sandbox, resp: object) -> list[object]:
    """The command's answer: in the acknowledgement body, or posted to its response_url, or ephemeral."""
    found: list[object] = [getattr(resp, "text", "")]
    found += [e["text"] for e in box.slack.ephemerals]
    found += list(getattr(box.slack, "responses", []) or [])
    return found
