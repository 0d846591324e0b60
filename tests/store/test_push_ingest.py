"""What webhook batches add to ingest: profile rows ahead of the card, the window's clock, echo grace."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlmodel import col, select

from bridge.domain import Batch, Customer, InboundMessage, Platform
from bridge.inbound import ECHO_GRACE_SECONDS, store_batch
from bridge.store.db import Database
from bridge.store.migrate import upgrade
from bridge.store.tables import Conversation, Outbox

PSID = "7361522908877213"
DAY = 86_400.0
NOW = 1_800_000_000.0


def message(mid: str, sent_at: float, from_brand: bool = False) -> InboundMessage:
    return InboundMessage(
        platform=Platform.MESSENGER,
        account="104729",
        remote_id=mid,
        conversation=PSID,
        customer=Customer(id=PSID, name=PSID),
        text=mid,
        from_brand=from_brand,
        sent_at=datetime.fromtimestamp(sent_at, UTC),
        needs_profile=not from_brand,
    )


def rows(db: Database) -> list[Outbox]:
    with db.session() as s:
        return list(s.exec(select(Outbox).order_by(col(Outbox.id))).all())


def test_profile_row_precedes_the_card_and_runs_at_most_daily(db_url: str) -> None:
    db = Database(db_url)
    upgrade(db)
    channel = {"104729": "C1"}.__getitem__
    assert store_batch(db, "meta", Batch(messages=(message("m1", NOW - 3 * DAY),), cursor=None), channel, NOW) == 1
    assert [(r.kind, r.target, r.lane) for r in rows(db)] == [
        ("profile", "platform", "s:1"),
        ("card", "slack", "s:1"),
        ("mirror", "slack", "s:1"),
    ]
    store_batch(db, "meta", Batch(messages=(message("m2", NOW - 10),), cursor=None), channel, NOW + 60)
    store_batch(db, "meta", Batch(messages=(message("m3", NOW + DAY),), cursor=None), channel, NOW + DAY)
    assert [r.dedupe_key for r in rows(db) if r.kind == "profile"] == [
        f"profile:1:{int(NOW // DAY)}",
        f"profile:1:{int(NOW // DAY) + 1}",
    ]
    with db.session() as s:
        conv = s.exec(select(Conversation)).one()
    # the window counts from the customer's own message time, never from the future
    assert conv.last_inbound_at == NOW + DAY


def test_brand_messages_wait_for_the_echo_check_and_do_not_move_the_window(db_url: str) -> None:
    db = Database(db_url)
    upgrade(db)
    store_batch(db, "meta", Batch(messages=(message("m1", NOW - 5 * DAY),), cursor=None), lambda _a: "C1", NOW)
    store_batch(
        db, "meta", Batch(messages=(message("echo1", NOW, from_brand=True),), cursor=None), lambda _a: "C1", NOW
    )
    mirror = next(r for r in rows(db) if r.dedupe_key.startswith("mirror:messenger:104729:echo1"))
    assert mirror.next_attempt_at == NOW + ECHO_GRACE_SECONDS
    assert json.loads(mirror.payload)["echo_of"] == ["messenger", "104729", "echo1"]
    assert [r.kind for r in rows(db)].count("profile") == 1
    with db.session() as s:
        assert s.exec(select(Conversation)).one().last_inbound_at == NOW - 5 * DAY
