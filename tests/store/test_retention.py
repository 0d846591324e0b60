"""Retention and erasure on both databases: content goes, dedupe keys stay, replays store nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlmodel import col, select

from bridge.deliveries import DM, Notice
from bridge.domain import Batch, Customer, InboundMessage, Platform
from bridge.errors import ConfigError
from bridge.forget import CANCELLED, ERASED, InFlight, forget, parse_customer
from bridge.inbound import ingest
from bridge.store import desk as desk_store
from bridge.store import events, outbox
from bridge.store.db import Database
from bridge.store.migrate import upgrade
from bridge.store.retention import RetentionJob, prune
from bridge.store.tables import (
    Audit,
    Conversation,
    CsatSurvey,
    InboundEvent,
    Outbox,
    SlackEvent,
    TemplateChoice,
    TypeExample,
)
from bridge.toml_config import FileConfig, Retention

DAY = 86400.0
T0 = 1_800_000_000.0
MARIA = Customer(id="42", name="Maria López", handle="maria_l", avatar_url="https://img/m.jpg")


def fresh(url: str) -> Database:
    db = Database(url)
    upgrade(db)
    return db


def one(remote_id: str, text: str) -> Batch:
    return Batch(messages=(msg(remote_id, text),), cursor=None)


def msg(remote_id: str, text: str, conv: str = "42-7", customer: Customer = MARIA) -> InboundMessage:
    return InboundMessage(
        platform=Platform.X,
        account="acme",
        remote_id=remote_id,
        conversation=conv,
        customer=customer,
        text=text,
        sent_at=datetime(2026, 8, 20, tzinfo=UTC),
    )


def store_event(db: Database, key: str, payload: dict[str, object], now: float, processed: bool = True) -> None:
    with db.session() as s:
        assert events.record_slack_event(s, dedupe_key=key, event_id=key, kind="message", payload=payload, now=now)
        row = s.exec(select(SlackEvent).where(SlackEvent.dedupe_key == key)).one()
        if processed:
            assert row.id is not None
            events.mark_processed(s, row.id, "relayed", now)


def test_retention_prunes_old_content_keeps_keys_and_replays_store_nothing(db_url: str) -> None:
    db = fresh(db_url)
    with db.session() as s:
        ingest(s, "x", "acme", one("m1", "my card number is 4111"), lambda _a: "C1", now=T0)
    store_event(db, "msg:C1:1.0", {"event": {"text": "old reply"}}, T0)
    store_event(db, "msg:C1:2.0", {"event": {"text": "old but unprocessed"}}, T0, processed=False)
    store_event(db, "msg:C1:3.0", {"event": {"text": "recent"}}, T0 + 9 * DAY)
    with db.session() as s:
        for row in s.exec(select(Outbox)).all():  # the card (payload {}) and the mirror, sent long ago
            assert row.id is not None
            outbox.finish(s, row.id, "1.0")
        outbox.enqueue(s, Notice("pending-old", 1, "later"), T0)
        desk_store.audit(s, conversation_id=1, actor="U1", action="relay", detail="your refund", now=T0)
        desk_store.audit(s, conversation_id=1, actor="U1", action="assign", detail="U2", now=T0)

    done = prune(db, Retention(), T0 + 100 * DAY)
    assert done == {"slack_event": 2, "outbox": 1, "inbound_event": 1, "audit": 1}
    with db.session() as s:
        payloads = {e.dedupe_key: e.payload for e in s.exec(select(SlackEvent)).all()}
        assert payloads["msg:C1:1.0"] == "{}" and payloads["msg:C1:3.0"] == "{}"
        assert "unprocessed" in payloads["msg:C1:2.0"]  # still to be processed: untouched
        rows = {r.dedupe_key: r for r in s.exec(select(Outbox)).all()}
        assert rows["pending-old"].payload != "{}"  # not sent yet: untouched
        assert all(r.payload == "{}" and r.result == "1.0" for k, r in rows.items() if k != "pending-old")
        assert s.exec(select(InboundEvent.text)).one() == ""
        assert sorted(s.exec(select(Audit.detail)).all()) == ["", "U2"]  # bodies go, who did what stays
    assert prune(db, Retention(), T0 + 100 * DAY) == {k: 0 for k in done}  # idempotent

    # replays after pruning: the dedupe keys are still there
    with db.session() as s:
        assert not events.record_slack_event(
            s,
            dedupe_key="msg:C1:1.0",
            event_id="x",
            kind="message",
            payload={"event": {"text": "old reply"}},
            now=T0 + 101 * DAY,
        )
        assert ingest(s, "x", "acme", one("m1", "my card number is 4111"), lambda _a: "C1", now=T0 + 101 * DAY) == 0
        assert not outbox.enqueue(s, Notice(next(iter(rows)), 1, "again"), T0 + 101 * DAY)
        assert s.exec(select(InboundEvent.text)).all() == [""]
    db.dispose()


def test_retention_runs_in_bounded_batches_and_honours_forever(db_url: str) -> None:
    db = fresh(db_url)
    for i in range(7):
        store_event(db, f"ev:{i}", {"event": {"text": f"t{i}"}}, T0)
    policy = Retention(batch=2, outbox="forever", messages="forever")
    assert prune(db, policy, T0 + 30 * DAY, max_batches=2) == {"slack_event": 4}
    job = RetentionJob(db, policy, clock=lambda: T0 + 30 * DAY)
    assert job.run() == {"slack_event": 3}
    assert job.run() == {"slack_event": 0}
    assert prune(db, Retention(events="forever", outbox="forever", messages="forever"), T0 + 99 * DAY) == {}
    db.dispose()


def test_retention_config_is_checked_when_loaded(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "dmbridge.toml"
    path.write_text('[retention]\nevents = "2d"\noutbox = "forever"\n', encoding="utf-8")
    loaded = FileConfig.load(path).retention
    assert loaded.seconds("events") == 2 * DAY and loaded.seconds("outbox") is None
    assert loaded.seconds("messages") == 90 * DAY and loaded.seconds("every") == 3600
    for bad in ('events = "soon"', 'every = "forever"', "batch = 0", 'evnts = "7d"', 'messages = "-1d"'):
        path.write_text(f"[retention]\n{bad}\n", encoding="utf-8")
        with pytest.raises(ConfigError):
            FileConfig.load(path)


def seed_conversation(db: Database) -> Conversation:
    """Maria wrote twice; her card and mirrors were posted; an agent replied; an answer is still pending."""
    with db.session() as s:
        ingest(
            s,
            "x",
            "acme",
            Batch(messages=(msg("m1", "my address is 1 Main St"), msg("m2", "hello?")), cursor=None),
            lambda _a: "C1",
            now=T0,
        )
        ingest(
            s,
            "x",
            "acme",
            Batch(
                messages=(msg("o1", "other customer", conv="99-7", customer=Customer(id="99", name="Olga")),),
                cursor=None,
            ),
            lambda _a: "C1",
            now=T0,
        )
        conv = s.exec(select(Conversation).where(Conversation.customer_id == "42")).one()
        conv.thread_ts = "100.000001"
        s.add(conv)
        for i, row in enumerate(
            s.exec(select(Outbox).where(Outbox.conversation_id == conv.id).order_by(col(Outbox.id))).all()
        ):
            assert row.id is not None
            outbox.finish(s, row.id, "100.000001" if row.kind == "card" else f"100.00001{i}")
        [reply] = DM.relay(conv.id, "C1", "200.000001", ["We'll send it to 1 Main St"], "U1")
        outbox.enqueue(s, reply, T0)
        outbox.enqueue(s, Notice("notice:late", conv.id, "Maria López waits"), T0)
        desk_store.audit(s, conversation_id=conv.id, actor="U1", action="template", detail="Dear Maria", now=T0)
        events.record_slack_event(
            s,
            dedupe_key="msg:C1:200.000001",
            event_id="Ev1",
            kind="message",
            now=T0,
            payload={
                "event": {
                    "type": "message",
                    "channel": "C1",
                    "ts": "200.000001",
                    "thread_ts": "100.000001",
                    "user": "U1",
                    "text": "We'll send it to 1 Main St",
                }
            },
        )
        events.record_slack_event(
            s,
            dedupe_key="msg:C1:300.000001",
            event_id="Ev2",
            kind="message",
            now=T0,
            payload={
                "event": {
                    "type": "message",
                    "channel": "C1",
                    "ts": "300.000001",
                    "thread_ts": "900.000001",
                    "user": "U1",
                    "text": "Olga's",
                }
            },
        )
        return conv


def test_forget_erases_one_customer_and_queues_the_bots_slack_messages_for_deletion(db_url: str) -> None:
    db = fresh(db_url)
    conv = seed_conversation(db)
    done = forget(db, "x", "42", T0 + DAY)
    assert done.conversations == [conv.id] and done.agent_replies == 1 and done.cancelled == 2
    assert done.deletions == 3  # the card and two mirrored messages
    with db.session() as s:
        erased = s.get(Conversation, conv.id)
        assert erased is not None
        assert (erased.customer_name, erased.customer_id, erased.customer_handle, erased.customer_avatar) == (
            "(erased)",
            "erased",
            None,
            None,
        )
        assert erased.remote_id == f"erased:{conv.id}" and erased.thread_ts is None and erased.status == "resolved"
        texts = s.exec(select(InboundEvent.text).where(InboundEvent.conversation_id == conv.id)).all()
        assert texts == ["", ""]
        assert s.exec(select(InboundEvent.text).where(InboundEvent.conversation_id != conv.id)).all() == [
            "other customer"
        ]
        rows = s.exec(select(Outbox).where(Outbox.conversation_id == conv.id)).all()
        deletes = sorted(json.loads(r.payload)["ts"] for r in rows if r.kind == "delete")
        assert deletes == ["100.000001", "100.000011", "100.000012"]
        others = [r for r in rows if r.kind != "delete"]
        assert all(r.payload == "{}" for r in others)
        assert {r.dedupe_key for r in others if r.state == "failed"} == {"relay:C1:200.000001:0", "notice:late"}
        assert all(r.last_error == CANCELLED for r in others if r.state == "failed")
        audit = s.exec(select(Audit).where(Audit.conversation_id == conv.id).order_by(col(Audit.id))).all()
        assert [a.detail for a in audit] == ["", ERASED] and audit[-1].action == "erase"
        stored = {e.dedupe_key: e.payload for e in s.exec(select(SlackEvent)).all()}
        assert stored["msg:C1:200.000001"] == "{}" and "Olga" in stored["msg:C1:300.000001"]
        everything = json.dumps([list(map(str, r)) for r in s.exec(select(Outbox.payload, Outbox.last_error))])
        assert "Main St" not in everything and "Maria" not in everything
        # a replay of her old message stores nothing; a new message opens a new conversation
        assert ingest(s, "x", "acme", one("m1", "my address is 1 Main St"), lambda _a: "C1", now=T0 + 2 * DAY) == 0
        assert ingest(s, "x", "acme", one("m3", "me again"), lambda _a: "C1", now=T0 + 2 * DAY) == 1
        assert len(s.exec(select(Conversation).where(Conversation.customer_id == "42")).all()) == 1
    assert forget(db, "x", "unknown", T0).conversations == []
    db.dispose()


def test_forget_changes_nothing_while_a_delivery_is_in_flight(db_url: str) -> None:
    db = fresh(db_url)
    conv = seed_conversation(db)
    with db.session() as s:
        row = s.exec(select(Outbox).where(Outbox.dedupe_key == "notice:late")).one()
        assert row.id is not None and outbox.claim(s, row.id, T0, "someone")
    with pytest.raises(InFlight):
        forget(db, "x", "42", T0)
    with db.session() as s:
        still = s.get(Conversation, conv.id)
        assert still is not None and still.customer_name == "Maria López"
    db.dispose()


def test_parse_customer() -> None:
    assert parse_customer("x:1290011223344556677") == ("x", "1290011223344556677")
    assert parse_customer("messenger:PSID:odd") == ("messenger", "PSID:odd")
    for bad in ("x", "x:", "telegram:1", ":1"):
        with pytest.raises(ValueError):
            parse_customer(bad)


def test_each_prune_reads_through_its_partial_index(sqlite_url: str) -> None:
    """However much pruned history lies behind, a run reads only rows still holding content (SQLite's plan)."""
    from sqlalchemy.dialects import sqlite

    from bridge.store.retention import TARGETS, prunable

    db = fresh(sqlite_url)
    with db.engine.connect() as conn:
        for target in TARGETS:
            sql = str(
                prunable(target, T0, 500).compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
            )
            plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}").all())
            assert f"USING INDEX ix_{target.name}_unpruned" in plan, plan
    db.dispose()


def test_what_suggestions_learn_from_is_deleted_after_messages_and_on_erasure(db_url: str) -> None:
    db = fresh(db_url)
    with db.session() as s:
        ingest(s, "x", "acme", one("m1", "How much is the blue coat?"), lambda _a: "C1", now=T0)
    with db.session() as s:
        (conv_id,) = s.exec(select(Conversation.id)).all()
        assert conv_id is not None
        s.add(TypeExample(conversation_id=conv_id, text="How much", type="sales", confirmed_by="U1", created_at=T0))
        s.add(TemplateChoice(conversation_id=conv_id, text="How much", template="prices", created_at=T0 + 80 * DAY))
        old, new = (CsatSurvey(conversation_id=conv_id, audit_id=i, asked_at=at, score=4, comment="fast, thanks Ana",
                               answered_at=at) for i, at in ((1, T0), (2, T0 + 80 * DAY)))  # fmt: skip
        s.add(old)
        s.add(new)
    done = prune(db, Retention(messages="90d"), T0 + 91 * DAY)
    assert done.get("type_example") == 1 and "template_choice" not in done  # the newer one is kept
    assert done.get("csat") == 1
    with db.read() as s:
        assert [(c.score, c.comment) for c in s.exec(select(CsatSurvey).order_by(col(CsatSurvey.audit_id)))] == [
            (4, None),
            (4, "fast, thanks Ana"),
        ]
    forget(db, "x", "42", T0 + 92 * DAY)
    with db.read() as s:
        assert s.exec(select(TypeExample)).all() == [] and s.exec(select(TemplateChoice)).all() == []
        assert [c.comment for c in s.exec(select(CsatSurvey))] == [None, None]  # the scores stay for the figures
