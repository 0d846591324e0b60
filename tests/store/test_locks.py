"""Claims and locks between processes: SKIP LOCKED on PostgreSQL, the lane re-check, process locks, dead owners."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from bridge.config import Settings
from bridge.deliveries import ChannelNotice
from bridge.store import outbox
from bridge.store.db import Database
from bridge.store.locks import ProcessLock
from bridge.store.tables import Outbox
from tests.store.test_store import fresh


def _enqueue(db: Database, *keys_lanes: tuple[str, str]) -> list[int]:
    with db.session() as s:
        for key, lane in keys_lanes:
            outbox.enqueue(s, ChannelNotice(key, None, lane, key), 0.0)  # lane c:{lane}
    with db.read() as s:
        return [r.id for r in outbox.due(s, "slack", 1.0, limit=100) if r.id is not None]


def test_postgresql_claims_skip_rows_another_worker_is_claiming(pg_url: str) -> None:
    db = fresh(pg_url)
    ids = _enqueue(db, ("a", "L1"), ("b", "L2"))
    other = db.engine.connect()
    tx = other.begin()
    other.execute(update(Outbox).where(col(Outbox.id) == ids[0]).values(last_error="held"))  # row lock held
    started = time.monotonic()
    with db.session() as s:
        got = outbox.claim_many(s, ids, 1.0, "me")
    assert time.monotonic() - started < 2  # did not wait for the other transaction
    assert [r.dedupe_key for r in got] == ["b"]  # the locked row was skipped, not waited for
    tx.rollback()
    other.close()
    with db.session() as s:
        assert [r.dedupe_key for r in outbox.claim_many(s, ids, 2.0, "me")] == ["a"]
    db.dispose()


def test_a_claim_rechecks_the_lane_so_a_stale_list_cannot_break_order(db_url: str) -> None:
    db = fresh(db_url)
    _enqueue(db, ("first", "L"))
    with db.session() as s:
        outbox.enqueue(s, ChannelNotice("second", None, "L", "second"), 0.0)
        second = s.exec(select(Outbox.id).where(Outbox.dedupe_key == "second")).one()
    with db.session() as s:  # a worker holding an old list tries the second row while the first is pending
        assert outbox.claim_many(s, [second], 1.0, "me") == []
    db.dispose()


def test_process_locks_are_exclusive_and_freed_on_release(db_url: str) -> None:
    db = fresh(db_url)
    first, second = ProcessLock(db, "poll:x"), ProcessLock(db, "poll:x")
    assert first.try_acquire()
    assert first.try_acquire()  # ours already
    assert not second.try_acquire()
    first.release()
    assert second.try_acquire()
    second.release()
    db.dispose()


def test_rows_of_a_dead_owner_come_back_uncertain_and_a_live_owners_stay(db_url: str) -> None:
    from bridge.claims import recover
    from bridge.context import Context

    db = fresh(db_url)
    ids = _enqueue(db, ("dead", "L1"), ("alive", "L2"))
    alive = ProcessLock(db, "instance:alive-one")
    assert alive.try_acquire()
    with db.session() as s:
        assert outbox.claim(s, ids[0], 1.0, "dead-one")
        assert outbox.claim(s, ids[1], 1.0, "alive-one")
    ctx = Context.__new__(Context)  # only what recover() reads
    ctx.db, ctx.instance_id, ctx.clock, ctx.settings = db, "me", time.time, Settings()
    ctx.wake_slack, ctx.wake_platform = threading.Event(), threading.Event()
    assert recover(ctx) == 1
    with db.read() as s:
        rows = {r.dedupe_key: r for r in s.exec(select(Outbox)).all()}
    assert (rows["dead"].state, rows["dead"].uncertain, rows["dead"].claimed_by) == ("pending", True, None)
    assert (rows["alive"].state, rows["alive"].claimed_by) == ("sending", "alive-one")
    alive.release(forget=True)
    db.dispose()


@pytest.mark.parametrize("n", [3])
def test_concurrent_claimers_never_share_a_row(db_url: str, n: int) -> None:
    db = fresh(db_url)
    ids = _enqueue(db, *[(f"k{i}", f"L{i}") for i in range(60)])
    won: list[list[str]] = [[] for _ in range(n)]

    def worker(i: int) -> None:
        for row_id in ids:
            with db.session() as s:
                won[i] += [r.dedupe_key for r in outbox.claim_many(s, [row_id], 1.0, f"w{i}")]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [k for w in won for k in w]
    assert sorted(claimed) == sorted(f"k{i}" for i in range(60))  # each row exactly once
    db.dispose()
