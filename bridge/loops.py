"""The loop machinery: backoff, credential pauses, and the thread that runs a loop's ``step``."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
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


class Loop(threading.Thread):
    """Runs ``step`` until stopped; sleeps for what it returns or until woken.

    ``steps`` counts the steps finished, failed ones too: once it has grown by two since some moment, one
    whole step ran after that moment."""

    def __init__(self, name: str, step: Callable[[], float], wake: threading.Event, stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.step_fn, self.wake, self.stop_event = step, wake, stop
        self.steps: int = 0

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                delay = self.step_fn()
            except Exception:
                log.exception("%s step failed", self.name)
                delay = 1.0
            self.steps += 1
            if delay > 0:
                self.wake.wait(delay)
            self.wake.clear()
