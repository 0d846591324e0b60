"""The engine's metrics: failed Slack events, and how old the oldest queued delivery is per target.

Registered on the registry ``bridge.app`` builds; every query here reads an
index range (pending rows only), never the history of sent rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlmodel import Session, select

from bridge.store import outbox
from bridge.store.db import Database
from bridge.store.tables import Outbox

TARGETS = ("slack", "platform")


class _OldestPending(Collector):
    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self.db, self.clock = db, clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily("dmbridge_outbox_oldest_pending_seconds",
                              "Age of the oldest pending (or in-flight) outbox row, by target", labels=["target"])
        now = self.clock()
        with self.db.read() as s:
            for target, oldest in oldest_pending(s):
                g.add_metric([target], max(0.0, now - oldest))
        yield g


def oldest_pending(s: Session) -> list[tuple[str, float]]:
    """(target, created_at of its oldest row still pending or sending)."""
    found = []
    for target in TARGETS:  # one index range each: a GROUP BY, or min() over an IN, walked the whole table
        ages = [s.exec(select(func.min(Outbox.created_at)).where(Outbox.target == target, Outbox.state == state)).one()
                for state in (outbox.PENDING, outbox.SENDING)]
        known = [a for a in ages if a is not None]
        if known:
            found.append((target, float(min(known))))
    return found


def register(registry: CollectorRegistry, db: Database, clock: Callable[[], float]) -> Callable[[], None]:
    """Add the engine's metrics; returns what counts one failed Slack event."""
    failed = Counter("dmbridge_slack_events_failed", "Stored Slack events whose processing raised (skipped)",
                     registry=registry)
    failed.inc(0)
    registry.register(_OldestPending(db, clock))
    return failed.inc
