"""SIGKILL a real ``serve`` process at random moments during bursts in both directions; nothing is lost or doubled.

A share of the customers (``CHATS`` of the ``CONVERSATIONS``) write by X Chat: their encrypted messages come by
webhook and reconciliation, and they must read every reply, decrypted, once and in order. Legacy DMs come by
webhook and reconciliation too. A delivery X sends while the process is dead is lost, and found by the next
reconciliation pass; a message found that way is mirrored after any later one that was delivered first (the
order of arrival), so customers write again only once the restarted process has reconciled (``caught_up``).

The CI run is sized to stay quick (``DMBRIDGE_CRASH_MESSAGES`` messages per
direction, default 200, and ``DMBRIDGE_CRASH_KILLS`` kills, default 5); set
``DMBRIDGE_CRASH_MESSAGES=1000`` for the full run.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from bridge.sandbox.harness import CHANNEL, wait_for
from bridge.sandbox.process import ServeProcess, serve_env, set_up_x_chat, start_world
from bridge.sandbox.x import XEmulator
from bridge.store.db import Database
from tests.scenarios.helpers import dm_reads, wait_settled
from tests.scenarios.test_attachments import png
from tests.scenarios.traffic import Traffic

MESSAGES = int(os.environ.get("DMBRIDGE_CRASH_MESSAGES", "200"))
KILLS = int(os.environ.get("DMBRIDGE_CRASH_KILLS", "5"))
CONVERSATIONS = 50
CHATS = 10  # of the CONVERSATIONS, customers writing by X Chat
FILE_EVERY = 20  # every 20th step, an X Chat customer sends a photo and an agent sends one


def chat_reads(x: XEmulator) -> int:
    """How many X Chat reconciliation passes read X's conversations successfully."""
    return sum(1 for method, path, status in list(x.requests) if path == "/2/chat/conversations" and status == 200)


def reconciled(x: XEmulator, timeout: float = 60.0) -> None:
    """Wait until both reconciliation passes (legacy DMs, X Chat) ran and stored what they read since now."""
    dm_goal, chat_goal = dm_reads(x) + 2, chat_reads(x) + 2  # a poller reads again only after storing what it read
    wait_for(lambda: dm_reads(x) >= dm_goal and chat_reads(x) >= chat_goal, timeout=timeout, what="two more passes")


def _sealed_states(url: str) -> dict[str, int]:
    """The X Chat events stored sealed, counted by state (pending, opened, failed)."""
    engine = Database(url).engine
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT state, count(*) FROM x_chat_event GROUP BY state"))
            return {str(state): int(n) for state, n in rows}
    finally:
        engine.dispose()


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
    world = start_world(customers=CONVERSATIONS - CHATS, chat_customers=CHATS)
    env = serve_env(world, url, x_chat=True, X_POLL_SECONDS="0.3")
    set_up_x_chat(env)  # the brand's X Chat identity, made once before serving
    proc = ServeProcess(env, workdir=tmp_path)
    world.x.webhook_url = proc.x_webhook_url
    everyone = world.customers + world.chat_customers
    rng = random.Random(2026)
    kills: list[float] = []
    try:
        proc.start()
        # the first poll's high-water mark is committed just after the answer, so before the second read
        wait_for(
            lambda: sum(r[1] == "/2/dm_events" and r[2] == 200 for r in list(world.x.requests)) >= 2, what="two polls"
        )
        wait_for(lambda: chat_reads(world.x) >= 2, what="two X Chat reconciliation passes")
        traffic = Traffic(world, [proc.events_url], rng=random.Random(1))
        for cid in everyone:
            traffic.customer_says(cid, f"{cid[-2:]} opens")
        wait_for(lambda: all(traffic.thread_of(c) for c in everyone), timeout=60, what="50 threads")

        stop, caught_up = threading.Event(), threading.Event()
        caught_up.set()

        def killer() -> None:
            while not stop.is_set() or len(kills) < KILLS:
                time.sleep(rng.uniform(0.3, 1.5))
                caught_up.clear()
                proc.kill()
                kills.append(time.monotonic())
                proc.start(wait=False)
                proc.wait_ready(timeout=60)
                reconciled(world.x)  # what X failed to deliver meanwhile is stored before anything newer
                caught_up.set()

        chaos = threading.Thread(target=killer, daemon=True)
        chaos.start()
        for i in range(MESSAGES):
            # a restarted process reconciles first; Slack events sent into the dead one are still retried
            assert caught_up.wait(timeout=90), "the restarted process did not reconcile"
            traffic.customer_says(rng.choice(everyone), f"in {i}")
            traffic.agent_replies(rng.choice(everyone), f"out {i}")
            if i % FILE_EVERY == 0:  # files both ways, so kills also land in downloads and uploads
                traffic.customer_sends_file(rng.choice(world.chat_customers), f"in-{i}.png", png(60, 60))
                traffic.agent_sends_file(rng.choice(everyone), f"out-{i}.png", png(60, 60))
            time.sleep(0.01)
        stop.set()
        chaos.join(timeout=120)
        assert not chaos.is_alive()

        try:
            wait_for(traffic.all_arrived, timeout=120, what="every delivery after the last restart")
        except TimeoutError:
            raise AssertionError(f"{traffic.problems()}\nundelivered: {_undelivered(url)}\n{proc.log_tail()}") from None
        reconciled(world.x)  # passes after the last delivery, and all they and the rest left to do
        wait_for(lambda: not _sealed_states(url).get("pending"), timeout=60, what="every X Chat event opened")
        wait_settled(url, timeout=60)
        assert not _sealed_states(url).get("failed"), _sealed_states(url)
        assert len(kills) >= KILLS
        files = len(range(0, MESSAGES, FILE_EVERY))
        assert traffic.acknowledged == MESSAGES + files  # every Slack event was acknowledged (after retries)
        assert traffic.problems() == [], proc.log_tail()
    finally:
        proc.stop()
        world.close()


def test_sigkill_while_slack_completes_an_upload_leaves_one_file_in_the_thread(tmp_path: Path) -> None:
    """The process dies after Slack shared the file but before its answer arrived: the restarted process finds
    the file in the thread (the row was left uncertain) and uploads nothing again."""
    url = f"sqlite:///{tmp_path / 'upload.db'}"
    world = start_world(customers=0, chat_customers=1)
    env = serve_env(world, url, x_chat=True, X_POLL_SECONDS="0.3")
    set_up_x_chat(env)
    proc = ServeProcess(env, workdir=tmp_path)
    world.x.webhook_url = proc.x_webhook_url
    (cid,) = world.chat_customers
    try:
        proc.start()
        wait_for(lambda: chat_reads(world.x) >= 1, what="an X Chat reconciliation pass")
        world.slack.fail_next("files.completeUploadExternal", status=200, hang=30.0)
        photo = png(80, 80)
        world.x.customer_sends_file(cid, photo, "crushed-box.png", "image", "")
        # Slack has shared the file; its answer is 30 s away when the process dies
        wait_for(
            lambda: [f for r in world.slack.roots(CHANNEL) for f in world.slack.files_in_thread(CHANNEL, r["ts"])],
            timeout=30,
            what="the file shared in the thread",
        )
        proc.kill()
        proc.start()
        wait_settled(url, timeout=60)
        files = [f for r in world.slack.roots(CHANNEL) for f in world.slack.files_in_thread(CHANNEL, r["ts"])]
        assert [f["name"] for f in files] == ["crushed-box.png"]
        assert hashlib.sha256(world.slack.file_bytes(files[0]["id"])).digest() == hashlib.sha256(photo).digest()
        assert len(world.slack.calls("files.completeUploadExternal")) == 1, "the restarted process uploaded again"
        assert len(world.slack.calls("conversations.replies")) >= 1  # it looked in the thread instead
    finally:
        proc.stop()
        world.close()
