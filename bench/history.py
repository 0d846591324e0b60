"""Per-message database cost with an empty outbox vs 1,000,000 old (sent) rows, in the same run.

``python -m bench.history [--rows 1000000] [--messages 300] [--no-pg]``

One "message" is the engine's database work for a DM in and a reply out:
ingest the DM (conversation, inbound event, card row), the event
processor's checks for the agent's reply (is a card unsettled?, the relay
rows), the poller's echo check (``attempted_with_text``), the platform
loop's due/claim/outcome, the idle check, recovery's claim owners and the
engine's /metrics queries. The history is rows in ``sent`` spread over 1,000
older conversations, both targets; the indexes must keep the cost flat.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime

from sqlalchemy import insert
from sqlmodel import select

from bench.core import scratch_db
from bridge import metrics, thread_messages
from bridge.domain import Customer, InboundMessage, Limits, Platform
from bridge.inbound import ingest_message
from bridge.processor import _thread_not_known_yet
from bridge.store import outbox
from bridge.store.db import Database
from bridge.store.migrate import upgrade
from bridge.store.tables import Conversation, Outbox

CHANNEL = "C0INBOX"
LIMITS = {"x": Limits(max_chars=10_000)}
CHUNK = 50_000


def populate(db: Database, rows: int, now: float) -> None:
    """``rows`` sent outbox rows over 1,000 old conversations (both targets), inserted in chunks."""
    with db.session() as s:
        s.execute(
            insert(Conversation),
            [
                dict(
                    platform="x",
                    account="acme",
                    remote_id=f"old-{i}",
                    customer_id=f"old{i}",
                    customer_name="Old",
                    channel=CHANNEL,
                    thread_ts=f"1700000000.{i:06d}",
                    created_at=now - 86400 * 30,
                    status="resolved",
                )
                for i in range(1000)
            ],
        )
        first = s.exec(select(Conversation.id).order_by(Conversation.id)).first()
    assert first is not None
    payload = json.dumps({"text": "an old reply", "slack_channel": CHANNEL, "slack_ts": "1.2", "part": 0, "parts": 1})
    for start in range(0, rows, CHUNK):
        batch = []
        for i in range(start, min(rows, start + CHUNK)):
            conv, platform = first + i % 1000, i % 2 == 0
            batch.append(
                dict(
                    dedupe_key=f"old:{i}",
                    target="platform" if platform else "slack",
                    lane=f"p:{conv}" if platform else f"s:{conv}",
                    kind="dm" if platform else "mirror",
                    conversation_id=conv,
                    payload=payload,
                    state="sent",
                    attempts=1,
                    next_attempt_at=now - 86400,
                    created_at=now - 86400 * 30 + i * 0.001,
                    waiting_shown=False,
                    uncertain=False,
                    result=f"r{i}",
                )
            )
        with db.session() as s:
            s.execute(insert(Outbox), batch)


def one_message(db: Database, i: int, now: float) -> None:
    customer = Customer(id=f"c{i}", name="Maria")
    msg = InboundMessage(
        platform=Platform.X,
        account="acme",
        remote_id=f"in-{i}",
        conversation=f"conv-{i}",
        customer=customer,
        text="hello",
        sent_at=datetime.fromtimestamp(now, UTC),
    )
    with db.session() as s:  # the poller or webhook stores the DM
        ingest_message(s, msg, CHANNEL, now)
        conv = s.exec(select(Conversation).where(Conversation.remote_id == f"conv-{i}")).one()
        conv.thread_ts = f"1800000000.{i:06d}"
        s.add(conv)
    relay = thread_messages.Relay(CHANNEL, f"1800000000.{i:06d}", f"1800000001.{i:06d}", "UAGENT", f"reply {i}")
    with db.session() as s:  # the event processor
        _thread_not_known_yet(s, relay)
        thread_messages.apply(s, relay, LIMITS, now)
    with db.read() as s:  # the poller's echo check, the platform loop's due rows
        outbox.attempted_with_text(s, platform="x", account="acme", remote_conversation=f"conv-{i}", text="x")
        due = outbox.due(s, "platform", now + 1, limit=20)
    with db.session() as s:
        for row in outbox.claim_many(s, [r.id for r in due if r.id is not None], now, "bench"):
            assert row.id is not None
            outbox.finish(s, row.id, f"dm-{i}")
    with db.session() as s:  # the Slack side: card and anything else of this conversation
        slack = outbox.due(s, "slack", now + 1, limit=50)
        outbox.finish_many(s, [(r.id, "ts") for r in slack if r.id is not None])
    with db.read() as s:  # idle check, recovery, /metrics
        outbox.next_due_at(s, "platform")
        outbox.claim_owners(s)
        metrics.oldest_pending(s)


def per_message_ms(db: Database, messages: int, offset: int, now: float) -> float:
    for i in range(offset, offset + 20):  # warm caches and the statement cache
        one_message(db, i, now)
    start = time.perf_counter()
    for i in range(offset + 20, offset + 20 + messages):
        one_message(db, i, now)
    return (time.perf_counter() - start) * 1000 / messages


def run(empty_url: str, full_url: str, rows: int, messages: int, rounds: int = 5) -> tuple[float, float, float]:
    """(ms per message on an empty outbox, seconds to add the history, ms per message with it).

    Two databases side by side, one with the history; rounds alternate between them and the median round
    counts, so a change in the machine's load during the run hits both alike.
    """
    empty, full = Database(empty_url), Database(full_url)
    now = time.time()
    for db in (empty, full):
        upgrade(db)
    start = time.perf_counter()
    populate(full, rows, now)
    filled = time.perf_counter() - start
    for db in (empty, full):  # what a long-running install has: statistics on its tables
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    per_round = max(1, messages // rounds)
    times: dict[str, list[float]] = {"empty": [], "full": []}
    for r in range(rounds):
        for name, db in (("empty", empty), ("full", full)) if r % 2 == 0 else (("full", full), ("empty", empty)):
            times[name].append(per_message_ms(db, per_round, 1_000_000 + r * 10_000, now))
    for db in (empty, full):
        db.dispose()
    return statistics.median(times["empty"]), filled, statistics.median(times["full"])


def report(rows: int, messages: int, pg_admin: str | None) -> list[str]:
    lines = []
    for kind in ("sqlite", "postgresql") if pg_admin else ("sqlite",):
        with scratch_db(kind, pg_admin) as empty_url, scratch_db(kind, pg_admin) as full_url:
            empty, filled, full = run(empty_url, full_url, rows, messages)
        lines.append(
            f"history {kind}: per message {empty:.2f} ms with an empty outbox, {full:.2f} ms with "
            f"{rows:,} sent rows ({full / empty:.2f}x, median of 5 alternating rounds; history "
            f"inserted in {filled:.0f} s)"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    for line in report(args.rows, args.messages, None if args.no_pg else args.pg):
        print(line, flush=True)


if __name__ == "__main__":
    main()
