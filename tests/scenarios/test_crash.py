"""SIGKILL a real ``serve`` process at random moments during bursts in both directions; nothing is lost or doubled.

The CI run is sized to stay quick (``DMBRIDGE_CRASH_MESSAGES`` messages per
direction, default 200, and ``DMBRIDGE_CRASH_KILLS`` kills, default 5); set
``DMBRIDGE_CRASH_MESSAGES=1000`` for the full run.
"""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from bridge.sandbox.harness import wait_for
from bridge.sandbox.process import ServeProcess, serve_env, start_world
from bridge.store.db import Database
from tests.scenarios.helpers import polls_ran, wait_settled
from tests.scenarios.traffic import Traffic

MESSAGES = int(os.environ.get("DMBRIDGE_CRASH_MESSAGES", "200"))
KILLS = int(os.environ.get("DMBRIDGE_CRASH_KILLS", "5"))
CONVERSATIONS = 50


def _undelivered(url: str) -> list[tuple[object, ...]]:
    engine = Database(url).engine
    try:
        with engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    text(
                        "SELECT id, dedupe_key, state, attempts, uncertain, claimed_by, last_error FROM outbox "
                        "WHERE state != 'sent' ORDER BY id LIMIT 20"
                    )
                )
            ]
    finally:
        engine.dispose()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_random_sigkills_lose_nothing_and_double_nothing(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}" if database == "sqlite" else str(request.getfixturevalue("pg_url"))
    world = start_world(customers=CONVERSATIONS)
    proc = ServeProcess(serve_env(world, url, X_POLL_SECONDS="0.3"), workdir=tmp_path)
    rng = random.Random(2026)
    kills: list[float] = []
    try:
        proc.start()
        # the first poll's high-water mark is committed just after the answer, so before the second read
        wait_for(
            lambda: sum(r[1] == "/2/dm_events" and r[2] == 200 for r in list(world.x.requests)) >= 2, what="two polls"
        )
        traffic = Traffic(world, [proc.events_url], rng=random.Random(1))
        for cid in world.customers:
            traffic.customer_says(cid, f"{cid[-2:]} opens")
        wait_for(lambda: all(traffic.thread_of(c) for c in world.customers), timeout=60, what="50 threads")

        stop = threading.Event()

        def killer() -> None:
            while not stop.is_set() or len(kills) < KILLS:
                time.sleep(rng.uniform(0.3, 1.5))
                proc.kill()
                kills.append(time.monotonic())
                proc.start(wait=False)
                proc.wait_ready(timeout=60)

        chaos = threading.Thread(target=killer, daemon=True)
        chaos.start()
        for i in range(MESSAGES):
            traffic.customer_says(rng.choice(world.customers), f"in {i}")
            traffic.agent_replies(rng.choice(world.customers), f"out {i}")
            time.sleep(0.01)
        stop.set()
        chaos.join(timeout=120)
        assert not chaos.is_alive()

        try:
            wait_for(traffic.all_arrived, timeout=120, what="every delivery after the last restart")
        except TimeoutError:
            raise AssertionError(f"{traffic.problems()}\nundelivered: {_undelivered(url)}\n{proc.log_tail()}") from None
        polls_ran(world.x, timeout=60)  # a poll after the last delivery, and all it and the rest left to do
        wait_settled(url, timeout=60)
        assert len(kills) >= KILLS
        assert traffic.acknowledged == MESSAGES  # every Slack event was acknowledged (after retries)
        assert traffic.problems() == [], proc.log_tail()
    finally:
        proc.stop()
        world.close()
