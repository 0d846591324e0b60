"""``/metrics`` collectors: read-only, index-bounded counts, cached so a scrape storm costs one query set."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

CACHE_SECONDS = 15.0


class Cached(Collector):
    """What ``inner`` collected, reused for ``seconds`` (``clock`` injectable); one refresh at a time."""

    def __init__(self, inner: Collector, seconds: float = CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner, self.seconds, self.clock = inner, seconds, clock
        self._lock = threading.Lock()
        self._at: float | None = None
        self._families: list[Metric] = []

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            now = self.clock()
            if self._at is None or now - self._at >= self.seconds:
                self._families = list(self.inner.collect())
                self._at = now
            families = self._families
        yield from families
