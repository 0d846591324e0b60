"""The event processor and the outcome writes read each conversation once per transaction: the locking read
loads the rows, and what it loaded answers the later look-ups, unless the row changed since."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import col, select

from bridge import thread_messages
from bridge.processor import EventProcessor
from bridge.store import conversations
from bridge.store.tables import Conversation, SlackEvent
from tests.engine.fakes import CHANNEL, conversation, make_ctx, platform_runner, rows, slack_event, statements


def test_a_batch_of_replies_reads_its_conversations_once(db_url: str) -> None:
    ctx, _clock, db, _slack, _x = make_ctx(db_url)
    threads = [conversation(ctx, str(40 + i)).thread_ts for i in range(4)]
    for i in range(20):
        slack_event(ctx, f"1800000001.{i:06d}", f"reply {i}", str(threads[i % 4]))
    with statements(db.engine) as seen:
        EventProcessor(ctx).step()
    assert seen["SELECT conversation"] == 1  # was two per reply
    assert sorted(r.kind for r in rows(ctx)).count("dm") == 20


def test_sent_replies_find_their_conversations_without_asking_again(db_url: str) -> None:
    ctx, _clock, db, _slack, x = make_ctx(db_url)
    threads = [conversation(ctx, str(40 + i)).thread_ts for i in range(4)]
    for i in range(8):
        slack_event(ctx, f"1800000001.{i:06d}", f"reply {i}", str(threads[i % 4]))
    EventProcessor(ctx).step()
    with statements(db.engine) as seen:
        platform_runner(ctx).step()
    assert len(x.sent) == 4  # the head of each conversation's lane
    # the due rows' channels (for pacing), the claim's read, the outcome write's locking read: none per reply
    assert seen["SELECT conversation"] == 3
    assert seen["SELECT outbox"] <= 3  # due, claim; no look-up of an ⏳ that a one-part reply never showed


def test_what_lock_threads_read_is_not_trusted_once_the_row_changed(db_url: str) -> None:
    ctx, _clock, db, _slack, _x = make_ctx(db_url)
    a, b = conversation(ctx, "41"), conversation(ctx, "42")
    assert a.thread_ts and b.thread_ts
    with db.session() as s:
        conversations.lock_threads(s, [(CHANNEL, a.thread_ts), (CHANNEL, b.thread_ts)])
        moved = conversations.by_thread(s, CHANNEL, a.thread_ts)
        assert moved is not None and moved.id == a.id
        moved.thread_ts = "1799999999.999999"  # changed in this transaction: the old key no longer finds it
        s.add(moved)
        assert conversations.by_thread(s, CHANNEL, a.thread_ts) is None
        assert conversations.by_thread(s, CHANNEL, "1799999999.999999") is moved
        other = conversations.by_thread(s, CHANNEL, b.thread_ts)
        assert other is not None
        other.channel = "C0ELSEWHERE"  # moved to another channel in this transaction
        s.add(other)
        assert conversations.by_thread(s, CHANNEL, b.thread_ts) is None
        assert conversations.by_thread(s, "C0ELSEWHERE", b.thread_ts) is other
        s.rollback()
    with db.read() as s:
        assert len(s.exec(select(Conversation)).all()) == 2


def test_a_batch_that_raises_nothing_takes_no_savepoint_and_one_that_does_is_isolated(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, _clock, db, _slack, _x = make_ctx(db_url)
    thread = str(conversation(ctx, "41").thread_ts)
    for i in range(5):
        slack_event(ctx, f"1800000001.{i:06d}", f"reply {i}", thread)
    with statements(db.engine) as seen:
        EventProcessor(ctx).step()
    assert seen["SAVEPOINT"] == 0 and seen["INSERT outbox"] == 5
    for i in range(5, 8):
        slack_event(ctx, f"1800000001.{i:06d}", f"reply {i}", thread)
    real = thread_messages.apply

    def sometimes(s: Any, action: Any, *args: Any, **kwargs: Any) -> str:
        if getattr(action, "text", "") == "reply 6":
            raise ZeroDivisionError("a bug")
        return real(s, action, *args, **kwargs)

    monkeypatch.setattr(thread_messages, "apply", sometimes)
    with statements(db.engine) as seen:
        EventProcessor(ctx).step()
    assert seen["SAVEPOINT"] >= 2  # tried without, rolled back, then each event in its own (as it needs one)
    with ctx.db.read() as s:
        outcomes = [e.outcome for e in s.exec(select(SlackEvent).order_by(col(SlackEvent.id))).all()]
    assert outcomes[5:] == ["relayed in 1 part(s)", "failed", "relayed in 1 part(s)"]
    assert [r.kind for r in rows(ctx)].count("dm") == 7  # the first try's rows are gone, none twice


def test_without_sla_policies_the_sla_loop_asks_the_database_nothing(db_url: str) -> None:
    """The SLA loop runs after every stored batch; with no policy configured nothing is ever due."""
    from bridge.sla_runner import SlaRunner

    ctx, clock, db, _slack, _x = make_ctx(db_url)
    conversation(ctx, "41")
    runner = SlaRunner(db, ctx.desk, [], clock)
    with statements(db.engine) as seen:
        assert runner.sweep() == 0 and runner.next_at() is None
    assert sum(seen.values()) == 0
