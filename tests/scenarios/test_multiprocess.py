"""Three ``serve`` processes on one PostgreSQL: no duplicates, order kept, one poller at a time."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from bridge.sandbox.harness import wait_for
from bridge.sandbox.process import ServeProcess, World, serve_env, start_world
from bridge.store.locks import lock_key
from tests.scenarios.helpers import polls_ran, wait_settled
from tests.scenarios.test_crash import _undelivered
from tests.scenarios.traffic import Traffic

POLL_SECONDS = 0.5


@pytest.fixture
def world() -> Iterator[World]:
    w = start_world(customers=8)
    try:
        yield w
    finally:
        w.close()


def _poll_leader(pg_url: str) -> str | None:
    """The application_name of the process holding the X poller's advisory lock in this database, if any
    (advisory locks are per database; other test runs may share the server)."""
    key = lock_key("poll:x") & 0xFFFFFFFFFFFFFFFF
    engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :hi AND l.objid = :lo "
                    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                {"hi": key >> 32, "lo": key & 0xFFFFFFFF},
            ).first()
            return None if row is None else str(row[0])
    finally:
        engine.dispose()


def _advisory_locks(pg_url: str) -> list[tuple[object, ...]]:
    engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    text(
                        "SELECT l.classid, l.objid, l.objsubid, l.granted, l.database, a.application_name, a.datname "
                        "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
                        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                    )
                )
            ]
    finally:
        engine.dispose()


def test_three_processes_deliver_everything_once_in_order_with_one_poller(world: World, pg_url: str) -> None:
    base = serve_env(world, pg_url, X_POLL_SECONDS=str(POLL_SECONDS))
    subprocess.run([sys.executable, "-m", "bridge", "migrate"], env=base, check=True, capture_output=True)
    procs = {
        f"serve{i}": ServeProcess(dict(base, DATABASE_URL=f"{pg_url}?application_name=serve{i}"), name=f"serve{i}")
        for i in range(3)
    }
    try:
        for p in procs.values():
            p.start(wait=False)
        for p in procs.values():
            p.wait_ready()
        try:
            leader = wait_for(lambda: _poll_leader(pg_url), what="a poll leader")
        except TimeoutError:
            raise AssertionError(_advisory_locks(pg_url)) from None
        traffic = Traffic(world, [p.events_url for p in procs.values()])
        for cid in world.customers:
            traffic.customer_says(cid, f"{cid[-2:]} hello")
        wait_for(lambda: all(traffic.thread_of(c) for c in world.customers), timeout=30, what="threads")
        for round_ in range(6):
            for cid in world.customers:
                traffic.customer_says(cid, f"{cid[-2:]} in {round_}")
                traffic.agent_replies(cid, f"{cid[-2:]} out {round_}", deliveries=2)

        # kill the poll leader: another process takes over within one poll interval
        procs[leader].kill()
        killed_at = time.monotonic()
        successor = wait_for(
            lambda: (lambda n: n if n and n != leader else None)(_poll_leader(pg_url)),
            timeout=10,
            what="a new poll leader",
        )
        took = time.monotonic() - killed_at
        assert successor in procs and successor != leader
        assert took <= POLL_SECONDS + 0.5, f"new leader after {took:.2f} s"
        traffic.targets = [p.events_url for n, p in procs.items() if n != leader]
        for cid in world.customers:
            traffic.customer_says(cid, f"{cid[-2:]} after failover")
            traffic.agent_replies(cid, f"{cid[-2:]} answer after failover")

        try:
            wait_for(traffic.all_arrived, timeout=60, what="every delivery")
        except TimeoutError:
            logs = "\n".join(p.log_tail(15) for p in procs.values())
            raise AssertionError(f"{traffic.problems()}\nundelivered: {_undelivered(pg_url)}\n{logs}") from None
        polls_ran(world.x, timeout=30)  # a poll after the last delivery, and all it and the rest left to do
        wait_settled(pg_url)
        assert traffic.problems() == []
        reads = [r for r in world.x.requests if r[1] == "/2/dm_events"]
        assert reads, "nobody polled"
    finally:
        for p in procs.values():
            p.close()
