"""A new conversation's SLA clock is booked at once, not at the next periodic sweep (issue 11, low).

The periodic sweep is set to an hour and the one at start-up has run: only
the timeline change waking the SLA runner can evaluate the new conversation.
"""

from __future__ import annotations

import pytest

from bridge.sandbox.demo import MARIA
from bridge.sandbox.harness import Sandbox, wait_for
from bridge.sandbox.server import OffsetClock
from bridge.store.tables import Conversation
from bridge.toml_config import FileConfig, SlaConfig

FILE = FileConfig(sla=[SlaConfig(name="standard", first_response="2h", warn_before="15m")])


pytestmark = pytest.mark.sandbox(file=FILE, dmbridge_sweep_seconds=3600)


def _conv(box: Sandbox) -> Conversation | None:
    with box.bridge.ctx.db.read() as s:
        return s.get(Conversation, 1)


def test_a_new_conversation_is_evaluated_without_waiting_for_the_sweep(box: Sandbox, clock: OffsetClock) -> None:
    box.x.customer_sends(MARIA, "Where is my refund?")
    box.thread_with("Where is my refund?")
    conv = wait_for(
        lambda: (c := _conv(box)) is not None and c.sla_state == "on_track" and c,
        timeout=10,
        what="the SLA evaluated on the timeline change",
    )
    assert conv.sla_policy == "standard" and conv.sla_kind == "first_response"
    assert conv.sla_due_at is not None and abs(conv.sla_due_at - (clock() + 7200)) < 60
