"""One bad Slack event is failed alone: the rest of its batch, and every later event, are processed."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from sqlmodel import select

from bridge import metrics
from bridge.processor import EventProcessor
from bridge.store.tables import SlackEvent
from tests.engine.fakes import BOT, conversation, make_ctx, rows, slack_event


def test_an_event_that_raises_is_failed_alone_and_its_author_told(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx, _clock, _db, _slack, _x = make_ctx(db_url)
    registry = CollectorRegistry()
    ctx.failed_event = metrics.register(registry, ctx.db, ctx.clock, {})
    a, b = conversation(ctx, "41"), conversation(ctx, "42")
    assert a.thread_ts and b.thread_ts
    slack_event(ctx, "1800000001.000001", "first reply", a.thread_ts)
    slack_event(ctx, "1800000001.000002", f"<@{BOT}> claim", a.thread_ts)
    slack_event(ctx, "1800000001.000003", "reply in another conversation", b.thread_ts)

    def broken(*args: object, **kwargs: object) -> str:  # an unforeseen bug in one command
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(ctx.desk, "thread_command", broken)
    EventProcessor(ctx).step()
    with ctx.db.read() as s:
        stored = list(s.exec(select(SlackEvent).order_by(SlackEvent.id)).all())  # type: ignore[arg-type]
    assert [e.outcome for e in stored][1] == "failed"
    assert all(e.processed_at is not None for e in stored)
    assert (stored[1].error or "").startswith("ZeroDivisionError")
    relays = sorted(r.kind for r in rows(ctx) if r.target == "platform")
    assert relays == ["dm", "dm"]  # both replies went on, before and after the bad event
    told = [r for r in rows(ctx) if r.kind == "ephemeral"]
    assert len(told) == 1 and "could not handle that" in told[0].payload
    assert registry.get_sample_value("dmbridge_slack_events_failed_total") == 1.0


def test_a_database_error_is_not_the_events_fault(db_url: str) -> None:
    ctx, _clock, db, _slack, _x = make_ctx(db_url)
    conv = conversation(ctx)
    assert conv.thread_ts
    slack_event(ctx, "1800000001.000001", "a reply", conv.thread_ts)
    db.fail_writes = 1
    with pytest.raises(Exception, match="injected"):
        EventProcessor(ctx).step()
    EventProcessor(ctx).step()  # tried again whole, and now it works
    with ctx.db.read() as s:
        [event] = s.exec(select(SlackEvent)).all()
    assert event.outcome != "failed" and event.error is None
    assert [r.kind for r in rows(ctx) if r.target == "platform"] == ["dm"]


def test_events_waiting_for_a_card_do_not_hide_the_ones_behind_them_while_requests_come_in(db_url: str) -> None:
    from bridge.inbound import ingest_message
    from tests.engine.fakes import CHANNEL, message

    ctx, _clock, _db, _slack, _x = make_ctx(db_url)
    known = conversation(ctx, "41")
    assert known.thread_ts
    with ctx.db.session() as s:  # a new conversation whose header card is not posted yet
        ingest_message(s, message(ctx, "43", name="Ana"), CHANNEL, ctx.clock())
    for i in range(6):  # replies in a thread we do not know yet: they wait for the card
        slack_event(ctx, f"1800000001.00000{i}", f"early {i}", "1800000000.999999")
    slack_event(ctx, "1800000002.000001", "a reply in a known thread", known.thread_ts)
    processor = EventProcessor(ctx)
    with ctx.edge.request():  # requests keep coming in: small batches
        processor.step()  # the first five only: all deferred
        processor.step()  # nothing got through: a full batch this time
    assert [r.kind for r in rows(ctx) if r.target == "platform"] == ["dm"]
