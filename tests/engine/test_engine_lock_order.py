"""Outcome writes and the event processor take their conversations by id first (PostgreSQL).

A batch's delivered replies touch each one's conversation (SLA clocks), a
batch of Slack replies each one's (``last_outbound_at``). Taken in claim or
event order, a writer holding one conversation and waiting for another
deadlocked with any writer holding the other and wanting the first (the
poller's ingest, the SLA sweep, each other): the loser's transaction was
rolled back and retried, and under load the outcome write gave its claims back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from bridge import processor, thread_messages
from bridge.context import Context
from bridge.deliveries import DM, Card
from bridge.processor import EventProcessor
from bridge.store import outbox
from bridge.store.tables import Conversation, Outbox
from tests.engine.fakes import conversation, make_ctx, platform_runner, reply, rows, slack_event
from tests.store.test_lock_order import waiting_on_a_lock

not_known_yet = processor._thread_not_known_yet


def _while_the_lower_conversation_is_held(ctx: Context, lower: int, higher: int, step: Callable[[], object]) -> None:
    """Hold conversation ``lower`` and run ``step`` until it waits on a lock; then write ``higher`` (which
    ``step`` must not hold while it waits: that was the deadlock) and let ``step`` finish."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            step()
        except BaseException as exc:
            errors.append(exc)

    with ctx.db.session() as s:
        s.execute(text("SELECT id FROM conversation WHERE id = :id FOR NO KEY UPDATE"), {"id": lower})
        me = int(s.execute(text("SELECT pg_backend_pid()")).scalar_one())
        worker = threading.Thread(target=run)
        worker.start()
        deadline = time.monotonic() + 10
        while not waiting_on_a_lock(ctx.db, me):
            assert time.monotonic() < deadline, "the step never waited for the held conversation"
            time.sleep(0.05)
        held = s.get(Conversation, higher)
        assert held is not None
        held.priority = "urgent"
        s.add(held)
        s.flush()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert errors == []


def test_outcome_writes_wait_for_their_first_conversation_holding_none(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    ctx, clock, _db, _slack, x = make_ctx(pg_url)
    first, second = conversation(ctx, "41"), conversation(ctx, "42")
    assert first.id is not None and second.id is not None and first.id < second.id
    reply(ctx, second, "to the second", "1800000001.000001")  # claimed first: the lower outbox id
    reply(ctx, first, "to the first", "1800000001.000002")
    caplog.set_level(logging.WARNING, logger="bridge.claims")
    clock.advance(1)  # so each delivered reply moves its conversation's SLA time: an update of the row
    _while_the_lower_conversation_is_held(ctx, first.id, second.id, platform_runner(ctx).step)
    assert x.sent == ["to the second", "to the first"]
    assert [r.getMessage() for r in caplog.records if "delivery outcomes failed" in r.getMessage()] == []
    assert {r.state for r in rows(ctx) if r.target == "platform"} == {"sent"}


def test_the_event_processor_waits_for_its_first_conversation_holding_none(pg_url: str) -> None:
    ctx, _clock, _db, _slack, _x = make_ctx(pg_url)
    first, second = conversation(ctx, "41"), conversation(ctx, "42")
    assert first.id is not None and second.id is not None and first.thread_ts and second.thread_ts
    slack_event(ctx, "1800000001.000001", "to the second", second.thread_ts)  # the earlier event
    slack_event(ctx, "1800000001.000002", "to the first", first.thread_ts)
    _while_the_lower_conversation_is_held(ctx, first.id, second.id, EventProcessor(ctx).step)
    relayed = [(r.conversation_id, r.kind) for r in rows(ctx) if r.target == "platform"]
    assert relayed == [(second.id, "dm"), (first.id, "dm")]


def test_a_thread_deferred_for_its_card_keeps_its_later_events_back(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The card's outcome (its thread_ts) can land between two events of its thread in one batch."""
    ctx, _clock, _db, _slack, _x = make_ctx(pg_url)
    conv = conversation(ctx, "41")
    thread = conv.thread_ts
    assert conv.id is not None and thread
    with ctx.db.session() as s:  # the card is posted, its outcome not written yet
        fresh = s.get(Conversation, conv.id)
        assert fresh is not None
        fresh.thread_ts = None
        s.add(fresh)
        outbox.enqueue(s, Card.of(conv.id), ctx.clock())
    slack_event(ctx, "1800000001.000001", "first", thread)
    slack_event(ctx, "1800000001.000002", "second", thread)
    checks: list[bool] = []

    def outcome_lands_after_the_first_check(s: Session, action: thread_messages.Action) -> bool:
        unknown = not_known_yet(s, action)
        if not checks:  # the card's outcome commits now, from another process's transaction
            with ctx.db.session() as other:
                card = other.exec(select(Outbox).where(Outbox.kind == "card")).one()
                outbox.finish(other, card.id or 0, thread)
                landed = other.get(Conversation, conv.id)
                assert landed is not None
                landed.thread_ts = thread
                other.add(landed)
        checks.append(unknown)
        return unknown

    monkeypatch.setattr(processor, "_thread_not_known_yet", outcome_lands_after_the_first_check)
    EventProcessor(ctx).step()
    EventProcessor(ctx).step()
    assert checks[0] is True  # the first event was deferred
    relayed = [d.text for r in rows(ctx) if isinstance(d := outbox.delivery(r), DM)]
    assert relayed == ["first", "second"]
