"""The loop machinery: backoff, credential pauses, and the thread that runs a loop's ``step``."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)

AUTH_PAUSE_MIN, AUTH_PAUSE_MAX = 5.0, 300.0


def backoff(attempts: int, jitter: float | None = None) -> float:
    """Exponential backoff, capped at five minutes, times a jitter factor (drawn from 0.75–1.25 unless given)."""
    factor = 0.75 + random.random() / 2 if jitter is None else jitter
    return float(min(300.0, 2.0 ** min(attempts, 9)) * factor)


def auth_pause(failures: int) -> float:
    """How long to leave a refused credential alone: 5 s, 10 s, 20 s … up to five minutes."""
    return min(AUTH_PAUSE_MAX, AUTH_PAUSE_MIN * 2.0 ** max(0, min(failures - 1, 10)))


@dataclass
class AuthState:
    """One credential that was refused: we pause its deliveries and probe with one call per pause."""

    failures: int = 0
    since: float = 0.0
    paused_until: float = 0.0

    def refused(self, now: float) -> bool:
        """Record a refusal; True for the first of an incident (the one to report)."""
        self.failures += 1
        first = self.failures == 1
        if first:
            self.since = now
        self.paused_until = now + auth_pause(self.failures)
        return first

    def works(self) -> float | None:
        """Record success; the incident's start when one just ended."""
        ended = self.since if self.failures else None
        self.failures, self.since, self.paused_until = 0, 0.0, 0.0
        return ended


class EdgeFirst:
    """Requests being answered come before background work. Slack retries an event it has no answer for
    within 3 s (and disables an app that keeps failing), while the loops' work is stored and can wait: under
    load the loops and the HTTP edge share one interpreter, and each request's answer waited behind their steps.
    Each loop now gives way before a step while a webhook or Slack request is in flight, for at most
    ``max_wait`` seconds; a loop that waited that long without a quiet moment then runs freely for ``free``
    seconds, so a stream of requests that never pauses (a flood of forged ones included) cannot stop the
    deliveries, only slow them."""

    def __init__(self, max_wait: float = 0.05, free: float = 0.01, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_wait, self.free, self.clock = max_wait, free, clock
        self._busy = 0
        self._quiet = threading.Condition()
        self._free_until = threading.local()  # per loop thread: after a full wait, when it must wait again
        self.waiting = 0  # loops giving way right now

    @contextmanager
    def request(self) -> Iterator[None]:
        """Around answering one request (never waits: safe on the event loop)."""
        with self._quiet:
            self._busy += 1
        try:
            yield
        finally:
            with self._quiet:
                self._busy -= 1
                if not self._busy:
                    self._quiet.notify_all()

    @property
    def busy(self) -> bool:
        return self._busy > 0

    def give_way(self) -> None:
        """Before a loop's step: wait until no request is in flight, or ``max_wait``."""
        if self.clock() < getattr(self._free_until, "at", 0.0):
            return
        with self._quiet:
            if self._busy:
                self.waiting += 1
                try:
                    quiet = self._quiet.wait_for(lambda: not self._busy, self.max_wait)
                finally:
                    self.waiting -= 1
                if not quiet:
                    self._free_until.at = self.clock() + self.free


class Loop(threading.Thread):
    """Runs ``step`` until stopped; sleeps for what it returns or until woken.

    ``steps`` counts the steps finished, failed ones too: once it has grown by two since some moment, one
    whole step ran after that moment."""

    def __init__(
        self,
        name: str,
        step: Callable[[], float],
        wake: threading.Event,
        stop: threading.Event,
        give_way: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.step_fn, self.wake, self.stop_event, self.give_way = step, wake, stop, give_way
        self.steps: int = 0

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.give_way()
                delay = self.step_fn()
            except Exception:
                log.exception("%s step failed", self.name)
                delay = 1.0
            self.steps += 1
            if delay > 0:
                self.wake.wait(delay)
            self.wake.clear()
