"""``/metrics``: read-only, index-bounded collectors, cached so a scrape storm costs one query set; the
engine's own metrics (failed Slack events, the age of the oldest queued delivery per target).

Every query here reads an index range (rows not yet sent), never the history of sent rows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlmodel import Session, select

from bridge.store import outbox
from bridge.store.db import Database
from bridge.store.tables import Outbox, SlackEvent
from connectors.base import WebhookReceiver

CACHE_SECONDS = 15.0


class Cached(Collector):
    """What ``inner`` collected, reused for ``seconds`` (``clock`` injectable); one refresh at a time."""

    def __init__(
        self, inner: Collector, seconds: float = CACHE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
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


class RefusedCollector(Collector):
    """Webhook requests answered without storing (the receivers' ``refused`` counters, e.g. X deliveries
    for another account, CRC tokens not of X's shape)."""

    def __init__(self, receivers: Mapping[str, WebhookReceiver]) -> None:
        self.receivers = receivers

    def collect(self) -> Iterator[CounterMetricFamily]:
        c = CounterMetricFamily(
            "dmbridge_webhook_refused", "Webhook requests refused or not stored", labels=["route", "reason"]
        )
        for route, receiver in self.receivers.items():
            for reason, n in dict(getattr(receiver, "refused", {})).items():
                c.add_metric([route, reason], float(n))
        yield c


class OutboxCollector(Collector):
    """Read-only (no write lock on SQLite); each count is a range of an index, never a table scan. Sent
    rows are history and are not counted."""

    TARGETS = ("slack", "platform")
    STATES = ("pending", "sending", "failed")

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily(
            "dmbridge_outbox_rows", "Outbox rows not yet sent, by target and state", labels=["target", "state"]
        )
        e = GaugeMetricFamily("dmbridge_slack_events_unprocessed", "Stored Slack events not yet processed")
        with self.db.read() as s:
            for target in self.TARGETS:
                for state in self.STATES:
                    n = s.exec(
                        select(func.count()).select_from(Outbox).where(Outbox.target == target, Outbox.state == state)
                    ).one()
                    g.add_metric([target, state], float(n))
            n = s.exec(select(func.count()).select_from(SlackEvent).where(SlackEvent.processed_at == None)).one()  # noqa: E711
        e.add_metric([], float(n))
        yield g
        yield e


TARGETS = ("slack", "platform")


class _OldestPending(Collector):
    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self.db, self.clock = db, clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily(
            "dmbridge_outbox_oldest_pending_seconds",
            "Age of the oldest pending (or in-flight) outbox row, by target",
            labels=["target"],
        )
        now = self.clock()
        with self.db.read() as s:
            for target, oldest in oldest_pending(s):
                g.add_metric([target], max(0.0, now - oldest))
        yield g


def oldest_pending(s: Session) -> list[tuple[str, float]]:
    """(target, created_at of its oldest row still pending or sending)."""
    found = []
    for target in TARGETS:  # one index range each: a GROUP BY, or min() over an IN, walked the whole table
        ages = [
            s.exec(select(func.min(Outbox.created_at)).where(Outbox.target == target, Outbox.state == state)).one()
            for state in (outbox.PENDING, outbox.SENDING)
        ]
        known = [a for a in ages if a is not None]
        if known:
            found.append((target, float(min(known))))
    return found


def register(
    registry: CollectorRegistry, db: Database, clock: Callable[[], float], receivers: Mapping[str, WebhookReceiver]
) -> Callable[[], None]:
    """Add the bridge's metrics to ``registry``; returns what counts one failed Slack event."""
    registry.register(Cached(OutboxCollector(db), clock=clock))
    registry.register(RefusedCollector(receivers))
    failed = Counter(
        "dmbridge_slack_events_failed", "Stored Slack events whose processing raised (skipped)", registry=registry
    )
    failed.inc(0)
    registry.register(Cached(_OldestPending(db, clock), clock=clock))
    return failed.inc
