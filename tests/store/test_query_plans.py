"""The hot queries read an index, never the whole outbox (which grows with history).

Each query is captured as the real code issues it, then explained on the same
database: ``EXPLAIN QUERY PLAN`` on SQLite (no ``SCAN outbox``), ``EXPLAIN``
on PostgreSQL with sequential scans disabled (no ``Seq Scan on outbox``:
with ``enable_seqscan`` off the planner still picks one only when no index
can serve the query). SQLite's check is the strict one: PostgreSQL can use a
non-leading index column as an index condition, so a query served only by a
whole-index walk can still pass there.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event, insert
from sqlmodel import Session

from bridge import metrics, thread_messages
from bridge.metrics import OutboxCollector
from bridge.processor import _thread_not_known_yet
from bridge.store import events, outbox
from bridge.store.db import Database
from bridge.store.migrate import upgrade
from bridge.store.tables import Outbox, SlackEvent
from tests.databases import pg_copy

HOT: dict[str, Callable[[Session], Any]] = {
    "due": lambda s: outbox.due(s, "platform", 1e12),
    "next_due_at": lambda s: outbox.next_due_at(s, "slack"),
    "attempted_with_text": lambda s: outbox.attempted_with_text(
        s, platform="x", account="acme", remote_conversation="42-7", text="hi"
    ),
    "claim_owners": outbox.claim_owners,
    "recover_stale": lambda s: outbox.recover_stale(s, 1e12),
    "own_stale_claims": lambda s: outbox.release_claims(s, "me", older_than=1e12),
    "card_unsettled": lambda s: _thread_not_known_yet(s, thread_messages.Relay("C1", "1.2", "1.3", "U1", "x")),
    "oldest_pending": metrics.oldest_pending,
    "unprocessed_events": events.unprocessed_slack_events,
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def history(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """One database per backend for the module, with history: the queries below read it (and change nothing
    of it: every row is sent or processed)."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("plans") / "dmbridge.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        db = _with_history(f"sqlite:///{path}")
        yield db
        db.dispose()
        return
    with pg_copy(request.getfixturevalue("pg_admin_url"), request.getfixturevalue("pg_template")) as url:
        db = _with_history(url)
        yield db
        db.dispose()


def _with_history(url: str) -> Database:
    """A database with some sent history and statistics on it: the planner then costs the plans it would
    choose on a long-running install (without statistics SQLite and PostgreSQL guess)."""
    db = Database(url)
    upgrade(db)
    with db.session() as s:
        s.execute(
            insert(Outbox),
            [
                dict(
                    dedupe_key=f"old:{i}",
                    target=("slack", "platform")[i % 2],
                    lane=f"l:{i % 50}",
                    kind=("mirror", "dm")[i % 2],
                    payload="{}",
                    state="sent",
                    attempts=1,
                    next_attempt_at=0.0,
                    created_at=float(i),
                    waiting_shown=False,
                    uncertain=False,
                )
                for i in range(3000)
            ],
        )
        s.execute(
            insert(SlackEvent),
            [
                dict(dedupe_key=f"e{i}", kind="message", payload="{}", received_at=float(i), processed_at=float(i))
                for i in range(1000)
            ],
        )
    with db.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    return db


def _captured(db: Database, run: Callable[[Session], Any]) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if "outbox" in statement or "slack_event" in statement:
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", grab)
    try:
        with db.session() as s:
            run(s)
    finally:
        event.remove(db.engine, "before_cursor_execute", grab)
    return seen


TABLES = ("outbox", "slack_event")


def _plan(db: Database, statement: str, parameters: Any) -> str:
    """One line per table access: ``SCAN``/``SEARCH`` lines on SQLite, plan nodes on PostgreSQL."""
    with db.engine.connect() as conn:
        if db.engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")
            [[plan]] = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).all()
            return "\n".join(_pg_nodes(plan[0]["Plan"]))
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        return "\n".join(str(r[-1]) for r in rows)


def _pg_nodes(node: dict[str, Any]) -> list[str]:
    lines = []
    if node.get("Relation Name") in TABLES or node.get("Node Type") == "Bitmap Index Scan":
        cond = node.get("Index Cond")
        lines.append(
            f"{node['Node Type']} on {node.get('Relation Name') or node.get('Index Name')}"
            + (f" [{cond}]" if cond else " [no index condition]")
        )
    for child in node.get("Plans", []):
        lines += _pg_nodes(child)
    return lines


def _full_scans(plan: str) -> list[str]:
    """SQLite's ``SCAN t`` (with or without an index) reads every row; so does PostgreSQL's Seq Scan, and an
    index scan with no index condition."""
    return [
        line
        for line in plan.splitlines()
        if line.strip().startswith(tuple(f"SCAN {t}" for t in TABLES))
        or line.strip() in (f"SEARCH {t}" for t in TABLES)  # SQLite's "search" with no index: every row
        or line.startswith("Seq Scan")
        or ("Index" in line and "[no index condition]" in line and any(f"on {t}" in line for t in TABLES))
    ]


@pytest.mark.parametrize("name", sorted(HOT))
def test_hot_queries_use_an_index(history: Database, name: str) -> None:
    db = history
    captured = _captured(db, HOT[name])
    assert captured, f"{name} issued no query on outbox or slack_event"
    for statement, parameters in captured:
        plan = _plan(db, statement, parameters)
        assert not _full_scans(plan), f"{name} scans a whole table:\n{statement}\n{plan}"


def test_metrics_count_without_reading_the_sent_history(history: Database) -> None:
    db = history
    captured = _captured(db, lambda _s: list(OutboxCollector(db).collect()))
    for statement, parameters in captured:
        plan = _plan(db, statement, parameters)
        assert not _full_scans(plan), f"/metrics scans a whole table:\n{statement}\n{plan}"
