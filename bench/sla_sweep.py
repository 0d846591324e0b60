"""The SLA sweep over many open conversations: the due-set query and a whole sweep, SQLite and PostgreSQL.

``python -m bench.sla_sweep [--conversations 100000] [--due 200] [--no-pg]``

Every conversation is open with an SLA timer (``sla_next_at``) spread over the
next day; ``--due`` of them are due now and get fully evaluated (timeline read,
clocks computed, reminders enqueued). The baseline in the same run is a full
scan of the same table without the index, to show what the index buys.
"""

from __future__ import annotations

import argparse
import statistics
import time

from sqlalchemy import insert, text

from bench.core import scratch_db
from bridge.desk import Desk
from bridge.sla_runner import SlaRunner
from bridge.slack.api import SlackApi, make_client
from bridge.slack.roster import Roster
from bridge.store import desk as store
from bridge.store.db import Database
from bridge.store.migrate import upgrade
from bridge.store.tables import Conversation, InboundEvent
from bridge.toml_config import FileConfig, SlaConfig

FILE = FileConfig(sla=[SlaConfig(name="standard", first_response="2h", warn_before="15m")])


def populate(db: Database, n: int, due: int, now: float) -> None:
    rows = [
        dict(
            platform="x",
            account="acme_help",
            remote_id=f"c{i}",
            customer_id=str(i),
            customer_name=f"Customer {i}",
            channel="C0INBOX",
            thread_ts=f"{now:.0f}.{i:06d}",
            status="open",
            priority="normal",
            created_at=now - 600,
            last_inbound_at=now - 600,
            sla_next_at=(now - 1) if i < due else now + 60 + (i % 86_400),
        )
        for i in range(n)
    ]
    with db.engine.begin() as conn:
        for start in range(0, n, 10_000):
            conn.execute(insert(Conversation), rows[start : start + 10_000])
        ids = [r[0] for r in conn.execute(text("SELECT id FROM conversation ORDER BY id LIMIT :n"), {"n": due})]
        conn.execute(
            insert(InboundEvent),
            [
                dict(
                    platform="x",
                    account="acme_help",
                    remote_id=f"m{i}",
                    conversation_id=cid,
                    from_brand=False,
                    text="hello",
                    sent_at=now - 600,
                    stored_at=now - 600,
                )
                for i, cid in enumerate(ids)
            ],
        )
        if db.engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE conversation"))
        else:
            conn.execute(text("ANALYZE"))


def timed(fn: object, repeat: int = 7) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def run(url: str, n: int, due: int) -> dict[str, float]:
    db = Database(url)
    upgrade(db)
    now = time.time()
    populate(db, n, due, now)

    def due_query() -> None:
        with db.session() as s:
            assert len(store.sla_due(s, now)) == min(due, 500)

    def full_scan() -> None:  # the baseline: the same question without the index
        with db.engine.connect() as conn:
            conn.execute(
                text("SELECT id FROM conversation WHERE status != 'resolved' AND (sla_next_at + 0) <= :now"),
                {"now": now},
            ).all()

    slack = SlackApi(make_client("xoxb-unused", "http://127.0.0.1:9/api/"))
    desk = Desk(file=FILE, roster=Roster(slack, None), limits=lambda: {}, link=slack.thread_link)
    runner = SlaRunner(db, desk, FILE.policies(), lambda: now)
    figures = {"due query (ms)": timed(due_query), "full scan baseline (ms)": timed(full_scan)}
    t = time.perf_counter()
    evaluated = runner.sweep()
    figures["whole sweep incl. evaluation (ms)"] = (time.perf_counter() - t) * 1000
    figures["evaluated"] = evaluated
    figures["idle sweep after (ms)"] = timed(runner.sweep)
    db.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=200)
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    for line in report(args.conversations, args.due, None if args.no_pg else args.pg):
        print(line)


def report(conversations: int, due: int, pg_admin: str | None) -> list[str]:
    """One line per database: the sweep's figures for ``conversations`` open, ``due`` of them due now."""
    lines = []
    for kind in ("sqlite", "postgresql") if pg_admin else ("sqlite",):
        with scratch_db(kind, pg_admin) as url:
            figures = run(url, conversations, due)
        lines.append(
            f"SLA sweep, {conversations:,} open conversations, {due} due, {kind}: "
            + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())
        )
    return lines


if __name__ == "__main__":
    main()
