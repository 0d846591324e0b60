"""PostgreSQL row-lock order: a transaction takes its conversation rows first, ascending by id.

Two writers that each hold one conversation row and want the other's
deadlock. The poller's ingest used to lock conversations in the order of the
batch's messages while the event processor, deliveries and the SLA sweep held
them in theirs; now every one of them locks its conversations by id first.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from sqlalchemy import text
from sqlmodel import col, select

from bridge.domain import Batch, Customer, InboundMessage, Platform
from bridge.inbound import store_batch
from bridge.store import desk as desk_store
from bridge.store.db import Database
from bridge.store.migrate import upgrade
from bridge.store.tables import Conversation, InboundEvent

NOW = 1_800_000_000.0


def message(customer: str, mid: str) -> InboundMessage:
    return InboundMessage(
        platform=Platform.X,
        account="brand",
        remote_id=mid,
        conversation=f"dm-{customer}",
        customer=Customer(id=customer, name=customer),
        text=mid,
        sent_at=datetime.fromtimestamp(NOW, UTC),
    )


def waiting_on_a_lock(db: Database, other_than: int) -> bool:
    with db.engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> :me "
                    "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
                ),
                {"me": other_than},
            ).scalar()
        )


def test_ingest_waits_for_its_first_conversation_holding_none(pg_url: str) -> None:
    db = Database(pg_url)
    upgrade(db)
    store_batch(db, "x", Batch(messages=(message("a", "m1"), message("b", "m2")), cursor=None), lambda _a: "C1", NOW)
    with db.session() as s:
        ids = {c.customer_id: c.id for c in s.exec(select(Conversation)).all()}
    first, second = ids["a"], ids["b"]
    assert first is not None and second is not None and first < second

    errors: list[BaseException] = []

    def ingest_later_conversation_first() -> None:
        try:  # the batch names the conversation with the higher id first
            store_batch(
                db, "x", Batch(messages=(message("b", "m3"), message("a", "m4")), cursor=None), lambda _a: "C1", NOW + 1
            )
        except BaseException as exc:
            errors.append(exc)

    with db.session() as s:  # another writer (the SLA sweep, say) holds the first conversation …
        s.execute(text("SELECT id FROM conversation WHERE id = :id FOR NO KEY UPDATE"), {"id": first})
        me = int(s.execute(text("SELECT pg_backend_pid()")).scalar_one())
        ingest = threading.Thread(target=ingest_later_conversation_first)
        ingest.start()
        deadline = time.monotonic() + 10
        while not waiting_on_a_lock(db, me):
            assert time.monotonic() < deadline, "the ingest never waited for the held conversation"
            time.sleep(0.05)
        # … and now writes the second: the waiting ingest must not be holding it (that was a deadlock)
        conv = s.get(Conversation, second)
        assert conv is not None
        desk_store.sla_touch(conv, NOW + 2)
        s.add(conv)
        s.flush()
    ingest.join(timeout=30)
    assert not ingest.is_alive()
    assert errors == []
    with db.session() as s:
        stored = s.exec(select(InboundEvent.remote_id).order_by(col(InboundEvent.remote_id))).all()
        touched = s.get(Conversation, first)
    assert list(stored) == ["m1", "m2", "m3", "m4"]
    assert touched is not None and touched.sla_next_at == NOW + 1
    db.dispose()
