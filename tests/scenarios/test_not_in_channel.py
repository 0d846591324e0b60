"""A post Slack refuses with not_in_channel: the team is told once, where they look, how to fix it."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bridge.sandbox.demo import JDOE, MARIA, SAM
from bridge.sandbox.harness import BILLING_GROUP, CHANNEL, Sandbox, shown, wait_for
from bridge.store import outbox
from bridge.store.tables import Outbox
from bridge.toml_config import FileConfig, Route, Team

LEGAL = "C0LEGAL"
ROUTED = "C0VIP"
HINT = "dmbridge could not post in <#{}>: it is not a member"


FILE = FileConfig(
    teams={"legal": Team(usergroup=BILLING_GROUP, channel=LEGAL)}, routes=[Route(connector="x", channel=ROUTED)]
)
pytestmark = pytest.mark.sandbox(file=FILE, x_webhooks=False)


@pytest.fixture(autouse=True)
def private_channels(box: Sandbox) -> None:
    box.slack.add_channel(LEGAL, "legal", members=["U0AGENT2"], is_private=True)
    # private: chat:write.public does not reach it, and Slack answers channel_not_found to a bot outside it
    box.slack.add_channel(ROUTED, "vip-inbox", members=["U0AGENT1"], is_private=True)


def failed_rows(box: Sandbox, kind: str) -> int:
    with box.bridge.ctx.db.read() as s:
        return len(s.exec(select(Outbox).where(Outbox.kind == kind, Outbox.state == outbox.FAILED)).all())


def hints(messages: list[dict[str, object]], channel: str) -> list[dict[str, object]]:
    return [m for m in messages if HINT.format(channel) in shown(m)]


def test_escalation_to_a_channel_without_the_bot_is_explained_once_in_the_thread(box: Sandbox) -> None:
    box.slack.add_channel(ROUTED, "vip-inbox", members=["U0AGENT1", "U0BOT"])  # only the team channel lacks it
    box.x.customer_sends(MARIA, "Please delete my data")
    ts = box.thread_with("Please delete my data", channel=ROUTED)
    box.slack.slash_command(SAM, ROUTED, "escalate 1 legal")
    found = wait_for(lambda: hints(box.slack.thread(ROUTED, ts), LEGAL) or None, what="the invite hint")
    assert "`/invite @dmbridge` in <#C0LEGAL>" in shown(found[0])
    box.slack.slash_command(SAM, ROUTED, "escalate 1 legal urgent again")
    wait_for(lambda: failed_rows(box, "channel_notice") == 2 or None, what="the second refused escalation")
    wait_for(lambda: not _pending(box) or None, what="the outbox drained")  # a second hint would be out by now
    assert len(hints(box.slack.thread(ROUTED, ts), LEGAL)) == 1
    assert box.slack.roots(LEGAL) == []


def test_routed_channel_without_the_bot_is_explained_once_in_the_inbox(box: Sandbox) -> None:
    box.x.customer_sends(MARIA, "Hello from a VIP")
    found = wait_for(lambda: hints(box.slack.roots(CHANNEL), ROUTED) or None, what="the inbox hint")
    assert "`/invite @dmbridge` in <#C0VIP>" in shown(found[0])
    box.x.customer_sends(JDOE, "Another VIP")
    wait_for(lambda: failed_rows(box, "card") == 2 or None, what="the second refused card")
    wait_for(lambda: not _pending(box) or None, what="the outbox drained")  # a second hint would be out by now
    assert len(hints(box.slack.roots(CHANNEL), ROUTED)) == 1


def _pending(box: Sandbox) -> bool:
    with box.bridge.ctx.db.read() as s:
        return bool(
            s.exec(
                select(Outbox).where(Outbox.target == "slack", Outbox.state.in_((outbox.PENDING, outbox.SENDING)))
            ).all()
        )
