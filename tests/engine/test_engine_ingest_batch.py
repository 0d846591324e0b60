"""A batch's ingest reads once what every message needs: the messages stored already, the batch's
conversations, the template index. Each message then costs its own writes only (on both databases)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from sqlmodel import select

from bridge.domain import Batch, Customer, InboundMessage, Platform
from bridge.inbound import ingest
from bridge.store import events
from bridge.store.tables import Conversation, InboundEvent, Outbox
from tests.engine.fakes import CHANNEL, make_ctx, statements


def _msg(i: int, conversation: str, account: str = "acme", name: str = "Maria") -> InboundMessage:
    return InboundMessage(
        platform=Platform.X,
        account=account,
        remote_id=f"m{i}",
        conversation=conversation,
        customer=Customer(id=f"cust-{conversation}", name=name),
        text=f"hello {i}",
        sent_at=datetime.fromtimestamp(1_800_000_000 + i, UTC),
    )


def test_a_batch_reads_its_messages_and_conversations_once(db_url: str) -> None:
    _ctx, clock, db, _slack, _x = make_ctx(db_url)
    with db.session() as s:  # an earlier poll: conversation c0 exists, m0 is stored
        ingest(s, "x", "acme", Batch((_msg(0, "c0"),), "1"), lambda _: CHANNEL, clock())
    batch = (*(_msg(i, f"c{i % 4}") for i in range(40)), _msg(7, "c3"))  # m0 again, m7 twice
    with statements(db.engine) as seen, db.session() as s:
        new = ingest(s, "x", "acme", Batch(batch, "2"), lambda _: CHANNEL, clock())
    assert new == 39
    assert seen["SELECT inbound_event"] == 1  # was one per message
    assert seen["SELECT conversation"] == 1 + 3  # the batch's, then each new one once after its insert
    assert seen["INSERT conversation"] == 3 and seen["INSERT inbound_event"] == 39  # m0 and the second m7 not tried
    with db.read() as s:
        assert len(s.exec(select(InboundEvent)).all()) == 40
        assert len(s.exec(select(Conversation)).all()) == 4
        mirrors = s.exec(select(Outbox.dedupe_key).where(Outbox.kind == "mirror")).all()
    assert len(mirrors) == 40 and len(set(mirrors)) == 40  # m7 mirrored once


def test_a_loaded_conversation_still_takes_the_customers_new_name(db_url: str) -> None:
    _ctx, clock, db, _slack, _x = make_ctx(db_url)
    with db.session() as s:
        ingest(s, "x", "acme", Batch((_msg(0, "c0", name="cust-c0"),), "1"), lambda _: CHANNEL, clock())
    with db.session() as s:
        ingest(s, "x", "acme", Batch((_msg(1, "c0", name="Maria López"),), "2"), lambda _: CHANNEL, clock())
    with db.read() as s:
        [conv] = s.exec(select(Conversation)).all()
    assert conv.customer_name == "Maria López"


def test_a_webhook_batch_of_two_accounts_finds_each_accounts_conversations(db_url: str) -> None:
    _ctx, clock, db, _slack, _x = make_ctx(db_url)
    first = (_msg(0, "c0", account="acme"), _msg(1, "c0", account="acme-support"))
    with db.session() as s:
        assert ingest(s, "x", "", Batch(first, None), lambda _: CHANNEL, clock()) == 2
    again = (_msg(0, "c0", account="acme"), _msg(2, "c0", account="acme"), _msg(3, "c0", account="acme-support"))
    with statements(db.engine) as seen, db.session() as s:
        assert ingest(s, "x", "", Batch(again, None), lambda _: CHANNEL, clock()) == 2
    assert seen["SELECT conversation"] == 1 and seen["INSERT conversation"] == 0
    assert seen["SELECT inbound_event"] == 2  # one per account
    with db.read() as s:
        convs = s.exec(select(Conversation.account, Conversation.remote_id)).all()
    assert sorted(convs) == [("acme", "c0"), ("acme-support", "c0")]


def test_our_own_sends_coming_back_are_found_in_one_read(db_url: str) -> None:
    """A poll returns the DMs we sent as the brand's messages: one read finds which are ours (not mirrored); a
    message the brand wrote in X's own app is mirrored with its label."""
    _ctx, clock, db, _slack, _x = make_ctx(db_url)
    with db.session() as s:
        ingest(s, "x", "acme", Batch((_msg(0, "c0"),), "1"), lambda _: CHANNEL, clock())
        conv_id = s.exec(select(Conversation.id)).one()
        for i in range(1, 21):
            events.record_sent(
                s,
                platform="x",
                account="acme",
                remote_id=f"out{i}",
                conversation_id=conv_id,
                slack_channel=CHANNEL,
                slack_ts=None,
                now=clock(),
            )
    echoes = tuple(replace(_msg(i, "c0"), remote_id=f"out{i}", from_brand=True) for i in range(1, 21))
    native = replace(_msg(99, "c0"), remote_id="app1", from_brand=True, text="sent from the X app")
    with statements(db.engine) as seen, db.session() as s:
        assert ingest(s, "x", "acme", Batch((*echoes, native), "2"), lambda _: CHANNEL, clock()) == 1
    assert seen["SELECT sent_message"] == 2  # the batch's one read, and the native message's own re-check
    with db.read() as s:
        mirrors = s.exec(select(Outbox.payload).where(Outbox.kind == "mirror")).all()
    assert len(mirrors) == 2 and "outside Slack" in mirrors[-1]  # labelled as the brand's own
