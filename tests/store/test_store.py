"""The store's idempotency and ordering rules, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select

from bridge.deliveries import ChannelNotice
from bridge.domain import Batch, Customer, InboundMessage, Platform
from bridge.inbound import ingest
from bridge.store import events, outbox
from bridge.store.db import Database
from bridge.store.migrate import upgrade
from bridge.store.tables import Conversation, InboundEvent, Outbox

MARIA = Customer(id="42", name="Maria", handle="maria_l", avatar_url="https://img/m.jpg")


def fresh(url: str) -> Database:
    db = Database(url)
    upgrade(db)
    upgrade(db)  # migrations are idempotent
    return db


def msg(remote_id: str, text: str = "hi", conv: str = "42-7", from_brand: bool = False) -> InboundMessage:
    return InboundMessage(
        platform=Platform.X,
        account="acme",
        remote_id=remote_id,
        conversation=conv,
        customer=MARIA,
        text=text,
        sent_at=datetime(2026, 8, 20, tzinfo=UTC),
        from_brand=from_brand,
    )


def test_ingest_is_idempotent_and_stores_cursor_with_events(db_url: str) -> None:
    db = fresh(db_url)
    batch = Batch(messages=(msg("100"), msg("101", "again")), cursor="101")
    with db.session() as s:
        assert ingest(s, "x", "acme", batch, lambda _a: "C1", now=1.0) == 2
    with db.session() as s:
        assert ingest(s, "x", "acme", batch, lambda _a: "C1", now=2.0) == 0
        assert events.get_cursor(s, "x", "acme") == "101"
        convs = s.exec(select(Conversation)).all()
        assert len(convs) == 1 and convs[0].customer_name == "Maria"
        assert len(s.exec(select(InboundEvent)).all()) == 2
        kinds = [r.kind for r in s.exec(select(Outbox).order_by(Outbox.id)).all()]
        assert kinds == ["card", "mirror", "mirror"]
    db.dispose()


def test_our_own_sends_are_not_mirrored_but_outside_sends_are(db_url: str) -> None:
    db = fresh(db_url)
    with db.session() as s:
        ingest(s, "x", "acme", Batch((msg("100"),), "100"), lambda _a: "C1", now=1.0)
        conv = s.exec(select(Conversation)).one()
        assert conv.id is not None
        events.record_sent(
            s,
            platform="x",
            account="acme",
            remote_id="200",
            conversation_id=conv.id,
            slack_channel="C1",
            slack_ts="5.0",
            now=1.0,
        )
    with db.session() as s:
        n = ingest(
            s,
            "x",
            "acme",
            Batch((msg("200", "our reply", from_brand=True), msg("201", "typed in the X app", from_brand=True)), "201"),
            lambda _a: "C1",
            now=2.0,
        )
        assert n == 1
        mirrors = s.exec(select(Outbox).where(Outbox.kind == "mirror")).all()
        assert len(mirrors) == 2 and "outside Slack" in mirrors[-1].payload
    db.dispose()


def test_outbox_keeps_lane_order_and_claims_once(db_url: str) -> None:
    db = fresh(db_url)
    with db.session() as s:
        for i in range(3):
            assert outbox.enqueue(s, ChannelNotice(f"k{i}", None, "C1", f"line {i}"), 0.0)
        assert not outbox.enqueue(s, ChannelNotice("k0", None, "C1", "again"), 0.0)
        outbox.enqueue(s, ChannelNotice("other", None, "C2", "other"), 0.0)
    with db.session() as s:
        due = outbox.due(s, "slack", now=1.0)
        assert [r.dedupe_key for r in due] == ["k0", "other"]  # one head per lane
        head = due[0].id
        assert head is not None
        assert outbox.claim(s, head, 1.0)
        assert not outbox.claim(s, head, 1.0)
    with db.session() as s:
        assert [r.dedupe_key for r in outbox.due(s, "slack", now=1.0)] == ["other"]  # k1 waits behind k0
        outbox.retry_at(s, head, 50.0, "429")
    with db.session() as s:
        assert [r.dedupe_key for r in outbox.due(s, "slack", now=10.0)] == ["other"]  # still blocked: order kept
        assert outbox.claim(s, head, 60.0)
        outbox.finish(s, head, "ts")
    with db.session() as s:
        assert [r.dedupe_key for r in outbox.due(s, "slack", now=60.0)] == ["k1", "other"]
    db.dispose()


def test_stale_claims_are_recovered(db_url: str) -> None:
    db = fresh(db_url)
    with db.session() as s:
        outbox.enqueue(s, ChannelNotice("k", None, "C1", "text"), 0.0)
        row = outbox.due(s, "slack", 0.0)[0]
        assert row.id is not None and outbox.claim(s, row.id, 1.0)
    with db.session() as s:
        assert outbox.recover_stale(s, older_than=0.5) == 0
        assert outbox.recover_stale(s, older_than=2.0) == 1
        assert len(outbox.due(s, "slack", 3.0)) == 1
    db.dispose()


def test_slack_events_store_once(db_url: str) -> None:
    db = fresh(db_url)
    with db.session() as s:
        assert events.record_slack_event(
            s, dedupe_key="msg:C1:1.0", event_id="Ev1", kind="message", payload={"a": 1}, now=0.0
        )
        assert not events.record_slack_event(
            s, dedupe_key="msg:C1:1.0", event_id="Ev2", kind="app_mention", payload={"a": 2}, now=0.0
        )
    with db.session() as s:
        rows = events.unprocessed_slack_events(s)
        assert len(rows) == 1 and rows[0].id is not None
        assert events.mark_processed(s, rows[0].id, "done", 1.0)
        assert not events.mark_processed(s, rows[0].id, "again", 1.0)
    db.dispose()


def test_migrations_match_the_models(db_url: str) -> None:
    """alembic's schema is exactly what the SQLModel tables declare (no drift either way)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    db = Database(db_url)
    upgrade(db)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    db.dispose()
    assert diff == []
