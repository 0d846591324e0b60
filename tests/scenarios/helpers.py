"""What scenario tests share: finding a customer's thread, and proving the bridge ran past a moment.

A test that asserts something did *not* happen first waits for the loop, poll or job that would have done
it to run once more, start to finish, after the moment in question; only then is the absence meaningful.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any, Protocol

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import text

from bridge.app import Bridge
from bridge.loops import Loop
from bridge.sandbox.harness import CHANNEL, Sandbox, wait_for
from bridge.sandbox.x import XEmulator
from bridge.store.db import Database


class BoxFactory(Protocol):
    """``make_box(**options)``: a started sandbox (``start_sandbox``'s options), closed after the test."""

    def __call__(self, database_url: str | None = None, **options: Any) -> Sandbox: ...


def thread_with(box: Sandbox, text: str, channel: str = CHANNEL) -> str:
    """The ts of the thread in which ``text`` is shown (waiting for it to appear)."""
    return box.thread_with(text, channel)


def customer_posts(box: Sandbox, ts: str) -> list[dict[str, Any]]:
    """The messages the bridge posted in a thread under a customer's (or the brand's) name."""
    return [m for m in box.slack.thread(CHANNEL, ts)[1:] if m.get("bot_id") and m.get("username")]


def loops_ran(on: Sandbox | Bridge | Iterable[Sandbox | Bridge], *names: str, timeout: float = 15.0) -> None:
    """Wake each named loop (``slack-events``, ``slack-delivery``, ``platform-delivery``, ``sla``), in the
    order given, and wait until it finished a step that began after this call: two more finished steps."""
    bridges = [on] if isinstance(on, Sandbox | Bridge) else list(on)
    for name in names:
        for target in bridges:
            bridge = target.bridge if isinstance(target, Sandbox) else target
            loop = next(lp for lp in bridge.loops if lp.name == name)
            goal = loop.steps + 2

            def done(loop: Loop = loop, goal: int = goal) -> bool:
                if loop.steps >= goal:
                    return True
                loop.wake.set()  # not left asleep for a long delay between the two steps
                return False

            wait_for(done, timeout=timeout, what=f"two more {name} steps")


def dm_reads(x: XEmulator) -> int:
    """How many times X's DM events were read (polls and reconciliation passes)."""
    return sum(1 for method, path, _ in list(x.requests) if method == "GET" and path == "/2/dm_events")


def polls_ran(x: XEmulator, timeout: float = 15.0) -> None:
    """Wait until X's DM events were read twice more: the first of those polls has been stored by then
    (a poller reads again only after storing what it read)."""
    goal = dm_reads(x) + 2
    wait_for(lambda: dm_reads(x) >= goal, timeout=timeout, what="two more polls of X")


class JobRuns:
    """Counts the scheduler's finished runs per job id (``poll:x``, ``recover``, …) from now on."""

    def __init__(self, scheduler: BaseScheduler) -> None:
        self.runs: Counter[str] = Counter()
        self._lock = threading.Lock()
        scheduler.add_listener(self._ran, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)

    def _ran(self, event: JobExecutionEvent) -> None:
        with self._lock:
            self.runs[event.job_id] += 1

    def count(self, prefix: str) -> int:
        with self._lock:
            return sum(n for job, n in self.runs.items() if job.startswith(prefix))

    def wait(self, prefix: str, more: int, timeout: float = 15.0) -> None:
        """Wait for ``more`` further finished runs of the jobs whose id starts with ``prefix``."""
        goal = self.count(prefix) + more
        wait_for(lambda: self.count(prefix) >= goal, timeout=timeout, what=f"{more} more {prefix} runs")


def store_is_settled(db: Database) -> bool:
    """Nothing left to do in ``db``: no outbox row pending or in flight, no Slack event unprocessed; whatever
    the running bridges do next starts from new input only."""
    with db.read() as s:
        busy = s.execute(text("SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')")).scalar()
        unprocessed = s.execute(text("SELECT count(*) FROM slack_event WHERE processed_at IS NULL")).scalar()
    return busy == 0 and unprocessed == 0


def wait_settled(db: Database | str, timeout: float = 30.0) -> None:
    """Wait until ``db`` (or the database at that URL) is settled (``store_is_settled``)."""
    target = Database(db) if isinstance(db, str) else db
    try:
        wait_for(lambda: store_is_settled(target), timeout=timeout, what="every outbox row and Slack event handled")
    finally:
        if isinstance(db, str):
            target.dispose()
